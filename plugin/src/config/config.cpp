#include "config/config.hpp"

#include "config/config_node.hpp"

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

using Node = ConfigNode;

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

CertificateProfileConfig parse_certificate_profile(const std::string& name, const Node& node) {
    node.only_keys({"source", "files", "local_ca", "acme", "service", "names", "key_type",
                    "renew_before", "deploy", "comment"});
    CertificateProfileConfig c;
    c.name = name;
    if (!node.has("source"))
        node.error("needs \"source\": \"files\", \"local-ca\", \"acme\" or \"service\"");
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
    } else if (s == "service") {
        c.source = CertificateSource::Service;
        if (!node.has("service"))
            node.error("source \"service\" needs \"service\": {\"url\", \"credentials\"}");
        Node service = node.field("service");
        service.only_keys(
            {"url", "ca_bundle", "credentials", "key_id", "profile", "address_update", "comment"});
        if (!service.has("url") || !service.has("credentials"))
            service.error("needs \"url\" and \"credentials\"");
        c.service_url = service.field("url").string();
        if (!c.service_url.starts_with("https://"))
            service.field("url").error("must be an https:// URL (brokertls-service's v1 listener)");
        if (service.has("ca_bundle"))
            c.service_ca_bundle = service.field("ca_bundle").path_value(true);
        c.service_credentials = service.field("credentials").path_value(true);
        if (service.has("key_id")) c.service_key_id = service.field("key_id").string();
        if (service.has("profile")) c.service_profile = service.field("profile").string();
        if (service.has("address_update"))
            for (const auto& item : service.field("address_update").array()) {
                std::string a = item.string();
                if (a != "auto" && classify_name(a).type != SubjectAltName::Type::Ip)
                    item.error("must be an IP address or \"auto\"");
                c.address_update.push_back(a);
            }
    } else {
        source.error("must be \"files\", \"local-ca\", \"acme\" or \"service\"");
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

namespace {}  // namespace

Config parse_config(const std::string& text, const fs::path& file) {
    json root = parse_json_strictly(text, file);
    Node top(root, "", file);
    top.only_keys({"security_profiles", "certificate_profiles", "issuers", "renewal", "events",
                   "state_dir", "capath", "control", "listeners", "gateway", "comment"});
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
    if (top.has("gateway")) config.gateway = parse_gateway(top.field("gateway"), config);
    if (config.security_profiles.empty() && config.certificate_profiles.empty())
        top.error("defines no security_profiles and no certificate_profiles");
    return config;
}

Config load_config(const fs::path& file) {
    return parse_config(read_file(file), file);
}

}  // namespace brokertls
