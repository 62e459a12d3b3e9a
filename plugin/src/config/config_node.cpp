#include "config/config_node.hpp"

#include <charconv>
#include <set>

namespace brokertls {
namespace fs = std::filesystem;
using nlohmann::json;
using Node = ConfigNode;

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

}  // namespace

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
    } catch (const json::exception& e) {
        // A number beyond a double ("1e5555"): nlohmann says out_of_range, with no position.
        std::string what = e.what();
        auto bracket = what.find("] ");
        fail(ErrorKind::Input, file.filename().string(),
             "not valid JSON: " + (bracket == std::string::npos ? what : what.substr(bracket + 2)));
    }
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
std::string endpoint_field(const Node& node, bool port_required, bool allow_any_port) {
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
    if (ec != std::errc() || end != port.data() + port.size() ||
        number < (allow_any_port ? 0 : 1) || number > 65535)
        node.error(allow_any_port ? "port must be a number from 0 (any free port) to 65535"
                                  : "port must be a number from 1 to 65535");
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

}  // namespace brokertls
