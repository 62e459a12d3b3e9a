#include "config/config.hpp"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A JSON node with the path that leads to it, so every error can say where it is.
class Node {
  public:
    Node(const json& value, std::string path, const fs::path& file)
        : value_(value), path_(std::move(path)), file_(file) {}

    [[noreturn]] void error(const std::string& reason) const {
        fail(ErrorKind::Input,
             file_.filename().string() + ": " + (path_.empty() ? "(top level)" : path_), reason);
    }
    const json& value() const { return value_; }
    const std::string& path() const { return path_; }

    Node field(const std::string& key) const { return Node(value_.at(key), join(key), file_); }
    bool has(const std::string& key) const { return value_.contains(key); }

    // Rejects unknown keys: a typo ("trust_anchor") must not silently disable a setting.
    void only_keys(std::initializer_list<const char*> keys) const {
        expect_object();
        for (const auto& item : value_.items()) {
            // Not a structured binding: clang 14 (the fuzz build) cannot capture one.
            const std::string& k = item.key();
            if (std::find_if(keys.begin(), keys.end(), [&](const char* a) { return k == a; }) ==
                keys.end())
                Node(item.value(), join(k), file_).error("unknown field");
        }
    }
    void expect_object() const {
        if (!value_.is_object()) error("must be an object");
    }
    std::string string() const {
        if (!value_.is_string()) error("must be a string");
        return value_.get<std::string>();
    }
    bool boolean() const {
        if (!value_.is_boolean()) error("must be true or false");
        return value_.get<bool>();
    }
    int integer(int min, int max) const {
        if (!value_.is_number_integer() || value_.get<long long>() < min ||
            value_.get<long long>() > max)
            error("must be a whole number from " + std::to_string(min) + " to " +
                  std::to_string(max));
        return value_.get<int>();
    }
    std::vector<Node> array() const {
        if (!value_.is_array()) error("must be an array");
        std::vector<Node> items;
        for (size_t i = 0; i < value_.size(); ++i)
            items.emplace_back(value_[i], path_ + "[" + std::to_string(i) + "]", file_);
        return items;
    }
    std::vector<std::pair<std::string, Node>> members() const {
        expect_object();
        std::vector<std::pair<std::string, Node>> out;
        for (const auto& [k, v] : value_.items()) out.emplace_back(k, Node(v, join(k), file_));
        return out;
    }
    fs::path path_value(bool must_exist) const {
        std::string text = string();
        if (text.empty()) error("must not be empty");
        fs::path p = text;
        if (p.is_relative()) p = file_.parent_path() / p;
        if (must_exist && !fs::exists(p)) error("file not found (" + p.string() + ")");
        return p;
    }

  private:
    std::string join(const std::string& key) const {
        return path_.empty() ? key : path_ + "." + key;
    }
    const json& value_;
    std::string path_;
    const fs::path& file_;
};

// The file a path names (fs::weakly_canonical), for comparing deploy paths. Ten thousand
// profiles deploy into a few directories: each directory is resolved once.
class CanonicalPaths {
  public:
    fs::path of(const fs::path& path) {
        std::error_code ec;
        fs::path name = path.filename();
        if (name.empty() || name == "." || name == ".." || fs::is_symlink(path, ec))
            return fs::weakly_canonical(path);
        auto [it, added] =
            directories_.try_emplace(path.has_parent_path() ? path.parent_path() : fs::path("."));
        if (added) it->second = fs::weakly_canonical(it->first);
        return it->second / name;
    }

  private:
    std::map<fs::path, fs::path> directories_;
};

SecurityProfile parse_security_profile(const std::string& name, const Node& node) {
    node.only_keys({"require_client_certificate", "trust_anchors", "intermediates", "crls",
                    "required_eku", "max_chain_depth", "allow_fingerprints", "deny_fingerprints",
                    "identity", "identity_allow_slash", "client_id_must_match_identity",
                    "comment"});
    SecurityProfile p;
    p.name = name;
    if (node.has("require_client_certificate"))
        p.require_client_certificate = node.field("require_client_certificate").boolean();
    if (node.has("trust_anchors"))
        for (const auto& item : node.field("trust_anchors").array())
            p.trust_anchors.push_back(item.path_value(true));
    if (node.has("intermediates"))
        for (const auto& item : node.field("intermediates").array())
            p.intermediates.push_back(item.path_value(true));
    if (node.has("crls"))
        for (const auto& item : node.field("crls").array()) p.crls.push_back(item.path_value(true));
    if (node.has("required_eku")) {
        Node eku = node.field("required_eku");
        // Compared with Certificate::extended_key_usage(), so spelled the way it names them.
        auto known = eku.string().empty() ? std::optional<std::string>("")
                                          : canonical_eku_name(eku.string());
        if (!known)
            eku.error("unknown extended key usage; use one of " + std::string(eku_names()) +
                      ", a dotted OID, or \"\" for any");
        p.required_eku = *known;
    }
    if (node.has("max_chain_depth"))
        p.max_chain_depth = node.field("max_chain_depth").integer(1, 16);
    for (auto [key, target] : {std::pair{"allow_fingerprints", &p.allow_fingerprints},
                               {"deny_fingerprints", &p.deny_fingerprints}}) {
        if (!node.has(key)) continue;
        for (const auto& item : node.field(key).array()) {
            auto fp = normalize_fingerprint(item.string());
            if (!fp) item.error("not a SHA-256 fingerprint (64 hex digits, colons allowed)");
            target->push_back(*fp);
        }
    }
    if (node.has("identity")) {
        Node id = node.field("identity");
        auto source = parse_identity_source(id.string());
        if (!source) id.error("must be one of " + std::string(identity_source_names()));
        p.identity = *source;
    }
    if (node.has("identity_allow_slash"))
        p.identity_allow_slash = node.field("identity_allow_slash").boolean();
    // On by default where every client has a certificate: otherwise any valid device can take
    // over another device's session by connecting with its client id.
    p.client_id_must_match_identity = node.has("client_id_must_match_identity")
                                          ? node.field("client_id_must_match_identity").boolean()
                                          : p.require_client_certificate;
    if (p.require_client_certificate && p.trust_anchors.empty())
        node.error("require_client_certificate is true but trust_anchors is empty");
    return p;
}

std::chrono::seconds duration_field(const Node& node) {
    if (node.value().is_number_integer())
        return std::chrono::seconds(node.integer(1, 20 * 365 * 86400));
    auto d = parse_duration(node.string());
    if (!d) node.error("must be a duration such as \"90d\", \"12h\", \"30m\", \"45s\"");
    return *d;
}

std::chrono::milliseconds duration_ms_field(const Node& node) {
    if (node.value().is_string() && node.value().get<std::string>().ends_with("ms")) {
        auto text = node.string();
        long n = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size() - 2, n);
        if (ec != std::errc() || end != text.data() + text.size() - 2 || n <= 0)
            node.error("must be a duration such as \"500ms\" or \"2s\"");
        return std::chrono::milliseconds(n);
    }
    return duration_field(node);
}

// "host:port", "[v6]:port" or a bare host (when the port may default).
std::string endpoint_field(const Node& node, bool port_required) {
    std::string text = node.string();
    if (text.empty()) node.error("must not be empty");
    std::string port;
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos) node.error("unterminated [IPv6 address]");
        if (close + 1 < text.size()) {
            if (text[close + 1] != ':') node.error("expected \":PORT\" after \"]\"");
            port = text.substr(close + 2);
        }
    } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
        if (text.find(':') != colon) node.error("an IPv6 address needs brackets: \"[::1]:53\"");
        port = text.substr(colon + 1);
    }
    if (port.empty()) {
        if (port_required) node.error("must be \"ADDRESS:PORT\" (for example \"0.0.0.0:80\")");
        return text;
    }
    long number = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535)
        node.error("port must be a number from 1 to 65535");
    return text;
}

ChallengeConfig parse_challenge(const Node& node) {
    node.expect_object();
    if (!node.has("type")) node.error("needs \"type\": \"http-01\", \"dns-01\" or \"tls-alpn-01\"");
    ChallengeConfig c;
    std::string type = node.field("type").string();
    if (type == "http-01") {
        node.only_keys({"type", "listen", "webroot", "comment"});
        c.type = ChallengeConfig::Type::Http01;
        c.listen = node.has("listen") ? endpoint_field(node.field("listen"), true) : "0.0.0.0:80";
        if (node.has("webroot")) c.webroot = node.field("webroot").path_value(true);
        return c;
    }
    if (type == "tls-alpn-01") {
        node.only_keys({"type", "listen", "comment"});
        c.type = ChallengeConfig::Type::TlsAlpn01;
        c.listen = node.has("listen") ? endpoint_field(node.field("listen"), true) : "0.0.0.0:443";
        return c;
    }
    if (type != "dns-01")
        node.field("type").error("must be \"http-01\", \"dns-01\" or \"tls-alpn-01\"");
    c.type = ChallengeConfig::Type::Dns01;
    if (!node.has("provider"))
        node.error("dns-01 needs \"provider\": \"rfc2136\", \"exec\" or \"manual\"");
    std::string provider = node.field("provider").string();
    if (provider == "rfc2136") {
        node.only_keys({"type", "provider", "server", "tsig_key_file", "zone", "resolver",
                        "propagation_servers", "challenge_domains", "propagation_timeout",
                        "propagation_interval", "ttl", "comment"});
        c.provider = ChallengeConfig::DnsProvider::Rfc2136;
        if (!node.has("server") || !node.has("tsig_key_file"))
            node.error("rfc2136 needs \"server\" and \"tsig_key_file\"");
        c.dns_server = endpoint_field(node.field("server"), false);
        c.tsig_key_file = node.field("tsig_key_file").path_value(true);
        if (node.has("zone")) c.zone = node.field("zone").string();
        if (node.has("resolver")) c.resolver = endpoint_field(node.field("resolver"), false);
        if (node.has("propagation_servers"))
            for (const auto& item : node.field("propagation_servers").array())
                c.propagation_servers.push_back(endpoint_field(item, false));
        if (node.has("propagation_timeout"))
            c.propagation_timeout = duration_field(node.field("propagation_timeout"));
        if (node.has("propagation_interval"))
            c.propagation_interval = duration_ms_field(node.field("propagation_interval"));
        if (node.has("ttl")) c.ttl = std::chrono::seconds(node.field("ttl").integer(1, 86400));
    } else if (provider == "exec") {
        node.only_keys({"type", "provider", "command", "timeout", "challenge_domains", "comment"});
        c.provider = ChallengeConfig::DnsProvider::Exec;
        if (!node.has("command")) node.error("exec needs \"command\" (the hook to run)");
        c.command = node.field("command").path_value(true);
        if (node.has("timeout")) c.timeout = duration_field(node.field("timeout"));
    } else if (provider == "manual") {
        node.only_keys({"type", "provider", "timeout", "challenge_domains", "comment"});
        c.provider = ChallengeConfig::DnsProvider::Manual;
        c.timeout = node.has("timeout") ? duration_field(node.field("timeout"))
                                        : std::chrono::seconds(24 * 3600);
    } else {
        node.field("provider").error("must be \"rfc2136\", \"exec\" or \"manual\"");
    }
    if (node.has("challenge_domains"))
        for (const auto& [name, target] : node.field("challenge_domains").members()) {
            std::string record = target.string();
            if (!is_valid_dns_name(record, false)) target.error("not a DNS name");
            c.challenge_domains.emplace(name, record);
        }
    return c;
}

IssuerConfig parse_issuer(const std::string& name, const Node& node) {
    node.only_keys({"type", "directory", "email", "eab", "ca_bundle", "account_key_type",
                    "challenge", "comment"});
    IssuerConfig c;
    c.name = name;
    if (!node.has("type") || node.field("type").string() != "acme")
        node.error("needs \"type\": \"acme\"");
    if (!node.has("directory")) node.error("needs \"directory\" (the ACME directory URL)");
    Node directory = node.field("directory");
    c.directory = directory.string();
    // RFC 8555 6.1: HTTPS only; plain HTTP is allowed to a test CA on this host.
    bool loopback = false;
    for (std::string host : {"http://127.0.0.1", "http://localhost", "http://[::1]"})
        if (c.directory.starts_with(host)) {
            char next = c.directory.size() > host.size() ? c.directory[host.size()] : '/';
            loopback = loopback || next == ':' || next == '/';
        }
    if (!c.directory.starts_with("https://") && !loopback)
        directory.error("must be an https:// URL (http:// only to 127.0.0.1, localhost or [::1])");
    if (node.has("email")) {
        c.email = node.field("email").string();
        if (c.email.find('@') == std::string::npos)
            node.field("email").error("not an email address");
    }
    if (node.has("eab")) {
        Node eab = node.field("eab");
        eab.only_keys({"key_id", "hmac_key"});
        if (!eab.has("key_id") || !eab.has("hmac_key"))
            eab.error("needs \"key_id\" and \"hmac_key\"");
        c.eab_key_id = eab.field("key_id").string();
        c.eab_hmac_key = eab.field("hmac_key").string();
    }
    if (node.has("ca_bundle")) c.ca_bundle = node.field("ca_bundle").path_value(true);
    if (node.has("account_key_type")) {
        Node kt = node.field("account_key_type");
        auto type = parse_key_type(kt.string());
        if (!type || *type == KeyType::Ed25519)
            kt.error("must be ecdsa-p256, ecdsa-p384 or an rsa type");
        c.account_key_type = *type;
    }
    if (!node.has("challenge")) node.error("needs \"challenge\" (how names are proven)");
    c.challenge = parse_challenge(node.field("challenge"));
    return c;
}

CertificateProfileConfig parse_certificate_profile(const std::string& name, const Node& node) {
    node.only_keys({"source", "files", "local_ca", "acme", "names", "key_type", "renew_before",
                    "deploy", "comment"});
    CertificateProfileConfig c;
    c.name = name;
    if (!node.has("source")) node.error("needs \"source\": \"files\" or \"local-ca\"");
    Node source = node.field("source");
    std::string s = source.string();
    if (s == "files") {
        c.source = CertificateSource::Files;
        if (!node.has("files")) node.error("source \"files\" needs \"files\": {\"key\", \"cert\"}");
        Node files = node.field("files");
        files.only_keys({"key", "cert", "chain"});
        if (!files.has("key") || !files.has("cert")) files.error("needs \"key\" and \"cert\"");
        c.key_file = files.field("key").path_value(true);
        c.cert_file = files.field("cert").path_value(true);
        if (files.has("chain")) c.chain_file = files.field("chain").path_value(true);
    } else if (s == "local-ca") {
        c.source = CertificateSource::LocalCa;
        if (!node.has("local_ca")) node.error("source \"local-ca\" needs \"local_ca\": {\"dir\"}");
        Node ca = node.field("local_ca");
        ca.only_keys({"dir", "lifetime", "passphrase_file", "allow_client_trust_anchor"});
        if (!ca.has("dir")) ca.error("needs \"dir\" (a brokertls-ca directory)");
        c.ca_dir = ca.field("dir").path_value(true);
        if (ca.has("lifetime")) c.lifetime = duration_field(ca.field("lifetime"));
        if (ca.has("passphrase_file"))
            c.ca_passphrase_file = ca.field("passphrase_file").path_value(true);
        if (ca.has("allow_client_trust_anchor"))
            c.allow_client_trust_anchor = ca.field("allow_client_trust_anchor").boolean();
    } else if (s == "acme") {
        c.source = CertificateSource::Acme;
        if (!node.has("acme")) node.error("source \"acme\" needs \"acme\": {\"issuer\"}");
        Node acme = node.field("acme");
        acme.only_keys({"issuer", "preferred_chain", "profile"});
        if (!acme.has("issuer")) acme.error("needs \"issuer\" (a key of \"issuers\")");
        c.issuer = acme.field("issuer").string();
        if (acme.has("preferred_chain")) c.preferred_chain = acme.field("preferred_chain").string();
        if (acme.has("profile")) c.acme_profile = acme.field("profile").string();
    } else {
        source.error("must be \"files\", \"local-ca\" or \"acme\"");
    }
    if (node.has("names"))
        for (const auto& item : node.field("names").array()) {
            try {
                c.names.push_back(classify_name(item.string()));
            } catch (const Error& e) {
                item.error(e.what());
            }
        }
    if (c.source != CertificateSource::Files && c.names.empty())
        node.error("source \"" + s + "\" needs \"names\"");
    if (node.has("key_type")) {
        Node kt = node.field("key_type");
        auto type = parse_key_type(kt.string());
        if (!type) kt.error("must be one of " + std::string(key_type_names()));
        c.key_type = *type;
    }
    if (node.has("renew_before")) c.renew_before = duration_field(node.field("renew_before"));
    if (c.renew_before >= c.lifetime && c.source == CertificateSource::LocalCa)
        node.field("renew_before").error("must be shorter than local_ca.lifetime");
    if (!node.has("deploy"))
        node.error("needs \"deploy\": {\"cert\", \"key\"} (the paths the broker listener reads)");
    Node deploy = node.field("deploy");
    deploy.only_keys({"cert", "key"});
    if (!deploy.has("cert") || !deploy.has("key")) deploy.error("needs \"cert\" and \"key\"");
    c.deploy_cert = deploy.field("cert").path_value(false);
    c.deploy_key = deploy.field("key").path_value(false);
    return c;
}

// The names an acme profile asks for must be ones its issuer's challenge can prove.
void check_acme_profile(const CertificateProfileConfig& profile,
                        const std::map<std::string, IssuerConfig>& issuers, const Node& node) {
    auto issuer = issuers.find(profile.issuer);
    if (issuer == issuers.end())
        node.field("acme").field("issuer").error("no issuer \"" + profile.issuer +
                                                 "\" in \"issuers\"");
    bool dns01 = issuer->second.challenge.type == ChallengeConfig::Type::Dns01;
    auto names = node.field("names").array();
    for (size_t i = 0; i < profile.names.size(); ++i) {
        const auto& name = profile.names[i];
        if (name.type != SubjectAltName::Type::Dns && name.type != SubjectAltName::Type::Ip)
            names[i].error("ACME certificates hold DNS names and IP addresses only");
        if (name.type == SubjectAltName::Type::Dns && name.value.starts_with("*.") && !dns01)
            names[i].error("a wildcard needs an issuer with a dns-01 challenge");
        if (name.type == SubjectAltName::Type::Ip && dns01)
            names[i].error("an IP address cannot be proven by dns-01 (use http-01 or tls-alpn-01)");
    }
}

RenewalConfig parse_renewal(const Node& node) {
    node.only_keys({"check_interval", "max_concurrent_orders", "expiring_threshold",
                    "order_timeout", "forced_interval", "comment"});
    RenewalConfig r;
    if (node.has("check_interval")) r.check_interval = duration_field(node.field("check_interval"));
    if (node.has("max_concurrent_orders"))
        r.max_concurrent_orders = node.field("max_concurrent_orders").integer(1, 64);
    if (node.has("expiring_threshold"))
        r.expiring_threshold = duration_field(node.field("expiring_threshold"));
    if (node.has("order_timeout")) r.order_timeout = duration_field(node.field("order_timeout"));
    if (node.has("forced_interval"))
        r.forced_interval = duration_field(node.field("forced_interval"));
    return r;
}

EventsConfig parse_events(const Node& node) {
    node.only_keys({"mqtt_topic", "exec", "webhook", "timeout", "comment"});
    EventsConfig e;
    if (node.has("mqtt_topic")) {
        e.mqtt_topic = node.field("mqtt_topic").string();
        if (e.mqtt_topic.find_first_of("+#") != std::string::npos)
            node.field("mqtt_topic").error("must not contain wildcards (+ or #)");
    }
    if (node.has("exec")) e.exec = node.field("exec").path_value(true);
    if (node.has("webhook")) {
        e.webhook = node.field("webhook").string();
        if (!e.webhook.starts_with("https://") && !e.webhook.starts_with("http://"))
            node.field("webhook").error("must be an http(s) URL");
    }
    if (node.has("timeout")) e.timeout = duration_field(node.field("timeout"));
    return e;
}

}  // namespace

std::optional<std::chrono::seconds> parse_duration(const std::string& text) {
    if (text.empty()) return std::nullopt;
    long n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || n <= 0) return std::nullopt;
    std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
    if (unit.empty() || unit == "s") return std::chrono::seconds(n);
    if (unit == "m") return std::chrono::minutes(n);
    if (unit == "h") return std::chrono::hours(n);
    if (unit == "d") return std::chrono::hours(24 * n);
    return std::nullopt;
}

namespace {

// JSON text to a document. A syntax error names its line and column; a key given twice in one
// object is refused (nlohmann would keep the last one silently: a second "crls" would quietly
// replace the first).
// Refuses a key given twice in one object, naming its path. A SAX pass of its own: nlohmann's
// DOM parser with a callback walks the parent object at the end of every child object, which made
// 10,000 certificate profiles cost 50 million steps.
class DuplicateKeys : public nlohmann::json_sax<json> {
  public:
    explicit DuplicateKeys(const fs::path& file) : file_(file) {}
    bool null() override { return value(); }
    bool boolean(bool) override { return value(); }
    bool number_integer(number_integer_t) override { return value(); }
    bool number_unsigned(number_unsigned_t) override { return value(); }
    bool number_float(number_float_t, const string_t&) override { return value(); }
    bool string(string_t&) override { return value(); }
    bool binary(binary_t&) override { return value(); }
    bool start_object(std::size_t) override {
        containers_.push_back(child_path());
        objects_.push_back({containers_.back(), {}});
        pending_key_.clear();
        return true;
    }
    bool key(string_t& key) override {
        if (!objects_.back().keys.insert(key).second)
            fail(ErrorKind::Input,
                 file_.filename().string() + ": " +
                     (objects_.back().path.empty() ? key : objects_.back().path + "." + key),
                 "duplicate key (each key may appear once in an object)");
        pending_key_ = key;
        return true;
    }
    bool end_object() override {
        objects_.pop_back();
        containers_.pop_back();
        pending_key_.clear();
        return true;
    }
    bool start_array(std::size_t) override {
        containers_.push_back(child_path() + "[]");
        pending_key_.clear();
        return true;
    }
    bool end_array() override {
        containers_.pop_back();
        pending_key_.clear();
        return true;
    }
    // A syntax error: the DOM parse that follows reports it with its position.
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
        return false;
    }

  private:
    bool value() { return true; }
    std::string child_path() const {
        std::string parent = containers_.empty() ? "" : containers_.back();
        if (objects_.empty() || pending_key_.empty()) return parent;
        return parent.empty() ? pending_key_ : parent + "." + pending_key_;
    }
    struct Object {
        std::string path;
        std::set<std::string> keys;
    };
    const fs::path& file_;
    std::vector<Object> objects_;
    std::vector<std::string> containers_;  // the path of each open object or array
    std::string pending_key_;
};

json parse_json_strictly(const std::string& text, const fs::path& file) {
    DuplicateKeys duplicates(file);
    json::sax_parse(text, &duplicates, json::input_format_t::json, /*strict=*/true,
                    /*ignore_comments=*/true);
    try {
        return json::parse(text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
    } catch (const json::parse_error& e) {
        // e.byte is the 1-based offset of the last byte read.
        size_t offset = e.byte == 0 ? 0 : std::min<size_t>(e.byte - 1, text.size());
        size_t line =
            1 + static_cast<size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
        size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
        size_t column =
            line_start == std::string::npos || offset == 0 ? offset + 1 : offset - line_start;
        std::string what = e.what();
        // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error ..."
        auto colon = what.find(": ");
        std::string reason = colon == std::string::npos ? what : what.substr(colon + 2);
        fail(ErrorKind::Input,
             file.filename().string() + ": line " + std::to_string(line) + ", column " +
                 std::to_string(column),
             "not valid JSON: " + reason);
    }
}

}  // namespace

Config parse_config(const std::string& text, const fs::path& file) {
    json root = parse_json_strictly(text, file);
    Node top(root, "", file);
    top.only_keys({"security_profiles", "certificate_profiles", "issuers", "renewal", "events",
                   "state_dir", "capath", "control", "listeners", "comment"});
    Config config;
    config.file = file;
    if (top.has("security_profiles"))
        for (const auto& [name, node] : top.field("security_profiles").members())
            config.security_profiles.emplace(name, parse_security_profile(name, node));
    if (top.has("issuers"))
        for (const auto& [name, node] : top.field("issuers").members())
            config.issuers.emplace(name, parse_issuer(name, node));
    // Each deploy path once, canonical (a symlinked or ../ spelling is the same file): a map
    // lookup per path, so ten thousand profiles cost ten thousand lookups, not all the pairs.
    std::map<fs::path, std::string> deployed_by;
    CanonicalPaths canonical;
    if (top.has("certificate_profiles"))
        for (const auto& [name, node] : top.field("certificate_profiles").members()) {
            auto profile = parse_certificate_profile(name, node);
            fs::path cert = canonical.of(profile.deploy_cert);
            fs::path key = canonical.of(profile.deploy_key);
            if (cert == key)
                node.field("deploy").error("\"cert\" and \"key\" name the same file (" +
                                           profile.deploy_cert.string() +
                                           "): the key would be overwritten by the certificate");
            for (const auto& [path, target] :
                 {std::pair{&profile.deploy_cert, &cert}, std::pair{&profile.deploy_key, &key}}) {
                auto [it, added] = deployed_by.try_emplace(*target, name);
                if (!added)
                    node.field("deploy").error(path->string() +
                                               " is also deployed by certificate profile '" +
                                               it->second + "'");
            }
            if (profile.source == CertificateSource::Acme)
                check_acme_profile(profile, config.issuers, node);
            config.certificate_profiles.emplace(name, std::move(profile));
        }
    if (top.has("renewal")) config.renewal = parse_renewal(top.field("renewal"));
    if (top.has("events")) config.events = parse_events(top.field("events"));
    config.state_dir = top.has("state_dir") ? top.field("state_dir").path_value(false)
                                            : file.parent_path() / "state";
    if (top.has("capath")) config.capath = top.field("capath").path_value(false);
    if (top.has("control")) {
        Node control = top.field("control");
        control.only_keys({"allow", "comment"});
        if (control.has("allow"))
            for (const auto& item : control.field("allow").array()) {
                ControlAllow entry;
                if (item.value().is_object()) {
                    item.only_keys({"identity", "security_profile", "comment"});
                    if (!item.has("identity")) item.error("needs \"identity\"");
                    entry.identity = item.field("identity").string();
                    if (item.has("security_profile")) {
                        Node profile = item.field("security_profile");
                        entry.security_profile = profile.string();
                        if (!config.security_profiles.count(entry.security_profile))
                            profile.error("no security profile '" + entry.security_profile + "'");
                    }
                } else {
                    entry.identity = item.string();
                }
                if (entry.identity.empty()) item.error("an identity must not be empty");
                config.control_allow.push_back(std::move(entry));
            }
    }
    if (top.has("listeners"))
        for (const auto& [port, node] : top.field("listeners").members()) {
            int number = 0;
            auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
            if (ec != std::errc() || end != port.data() + port.size() || number < 1 ||
                number > 65535 || port[0] == '0')
                node.error("not a port number (1 to 65535)");
            std::string profile = node.string();
            if (!config.security_profiles.count(profile))
                node.error("no security profile '" + profile + "'");
            config.listeners.emplace(number, std::move(profile));
        }
    if (config.security_profiles.empty() && config.certificate_profiles.empty())
        top.error("defines no security_profiles and no certificate_profiles");
    return config;
}

Config load_config(const fs::path& file) {
    return parse_config(read_file(file), file);
}

}  // namespace brokertls
