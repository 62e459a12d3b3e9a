#include "service/service_config.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "brokertls/store/files.hpp"
#include "config/config_node.hpp"

namespace brokertls {
namespace fs = std::filesystem;
using Node = ConfigNode;

namespace {

// A secret in a file of its own: refused when others may read it.
HmacKey hmac_key_field(const Node& node) {
    HmacKey key;
    key.file = node.path_value(true);
    struct stat st {};
    if (::stat(key.file.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
        node.error(key.file.string() + " is readable by others (mode 0" +
                   std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
                   std::to_string(st.st_mode & 7) + "): chmod 600 it");
    std::string text = read_file(key.file);
    key.key = text.substr(0, text.find('\n'));
    if (!key.key.empty() && key.key.back() == '\r') key.key.pop_back();
    if (key.key.size() < 16)
        node.error(key.file.string() +
                   ": the key must be at least 16 characters (openssl rand "
                   "-hex 32 makes a good one)");
    return key;
}

std::vector<std::string> domain_globs(const Node& node) {
    std::vector<std::string> globs;
    for (const auto& item : node.array()) {
        std::string glob = item.string();
        if (glob.empty() || std::any_of(glob.begin(), glob.end(),
                                        [](unsigned char c) { return c <= ' ' || c >= 0x7f; }))
            item.error("must be a name or glob without blanks or control characters");
        globs.push_back(glob);
    }
    if (globs.empty()) node.error("must name at least one domain glob (\"*\" allows any)");
    return globs;
}

std::set<Endpoint> endpoints_field(const Node& node) {
    std::set<Endpoint> serve;
    for (const auto& item : node.array()) {
        std::string name = item.string();
        if (name == "sign")
            serve.insert(Endpoint::Sign);
        else if (name == "v1")
            serve.insert(Endpoint::V1);
        else if (name == "acme-challenge")
            serve.insert(Endpoint::AcmeChallenge);
        else if (name == "est")
            serve.insert(Endpoint::Est);
        else
            item.error("must be \"sign\", \"v1\", \"est\" or \"acme-challenge\"");
    }
    if (serve.empty()) node.error("must name what the listener serves");
    return serve;
}

ServiceListener parse_listener(const std::string& name, const Node& node) {
    node.only_keys({"listen", "serve", "tls", "comment"});
    ServiceListener l;
    l.name = name;
    if (!node.has("listen") || !node.has("serve")) node.error("needs \"listen\" and \"serve\"");
    l.listen = endpoint_field(node.field("listen"), true, true);
    l.serve = endpoints_field(node.field("serve"));
    if (node.has("tls")) {
        Node tls = node.field("tls");
        tls.only_keys({"cert", "key", "client_ca", "comment"});
        if (!tls.has("cert") || !tls.has("key")) tls.error("needs \"cert\" and \"key\"");
        HttpTlsConfig t;
        t.cert = tls.field("cert").path_value(true);
        t.key = tls.field("key").path_value(true);
        if (tls.has("client_ca")) t.client_ca = tls.field("client_ca").path_value(true);
        l.tls = t;
    } else if (l.serve.count(Endpoint::V1) || l.serve.count(Endpoint::Est)) {
        // Credentials and certificates would cross the network in clear text (RFC 7030 §3.3
        // requires TLS for EST).
        node.field("serve").error("\"v1\" and \"est\" are served only over TLS: add \"tls\"");
    }
    return l;
}

ServiceIssuer parse_service_issuer(const std::string& name, const Node& node) {
    node.expect_object();
    if (!node.has("type")) node.error("needs \"type\": \"acme\" or \"local-ca\"");
    std::string type = node.field("type").string();
    ServiceIssuer issuer;
    issuer.name = name;
    if (type == "acme") {
        issuer.type = ServiceIssuer::Type::Acme;
        // brokertls.json's issuer fields, plus the service's own.
        nlohmann::json common = node.value();
        for (const char* key : {"max_concurrent_orders", "order_timeout", "rate_limits"})
            common.erase(key);
        issuer.acme = parse_issuer(name, Node(common, node.path(), node.file()));
        if (node.has("max_concurrent_orders"))
            issuer.max_concurrent_orders = node.field("max_concurrent_orders").integer(1, 64);
        if (node.has("order_timeout"))
            issuer.order_timeout = duration_field(node.field("order_timeout"));
        if (node.has("rate_limits")) {
            // Let's Encrypt's published limits unless the CA grants others.
            Node limits = node.field("rate_limits");
            limits.only_keys({"orders_per_3h", "certificates_per_domain_per_week",
                              "certificates_per_name_set_per_week", "public_suffixes", "comment"});
            auto& r = issuer.rate_limits;
            if (limits.has("orders_per_3h"))
                r.orders_per_window = limits.field("orders_per_3h").integer(1, 1'000'000);
            if (limits.has("certificates_per_domain_per_week"))
                r.certificates_per_domain =
                    limits.field("certificates_per_domain_per_week").integer(1, 1'000'000);
            if (limits.has("certificates_per_name_set_per_week"))
                r.certificates_per_name_set =
                    limits.field("certificates_per_name_set_per_week").integer(1, 1'000'000);
            if (limits.has("public_suffixes"))
                for (const auto& item : limits.field("public_suffixes").array()) {
                    std::string suffix = item.string();
                    if (!is_valid_dns_name(suffix, false)) item.error("not a DNS name");
                    r.public_suffixes.push_back(suffix);
                }
        }
        Node challenge = node.field("challenge");
        if (issuer.acme.challenge.type == ChallengeConfig::Type::Http01 &&
            (challenge.has("listen") || challenge.has("webroot")))
            challenge.error(
                "brokertls-service answers http-01 on its \"acme-challenge\" "
                "listeners (forward /.well-known/acme-challenge/ to one): remove "
                "\"listen\" and \"webroot\"");
    } else if (type == "local-ca") {
        node.only_keys({"type", "dir", "passphrase_file", "comment"});
        issuer.type = ServiceIssuer::Type::LocalCa;
        if (!node.has("dir")) node.error("needs \"dir\" (a brokertls-ca directory)");
        issuer.ca_dir = node.field("dir").path_value(true);
        if (node.has("passphrase_file"))
            issuer.ca_passphrase_file = node.field("passphrase_file").path_value(true);
    } else {
        node.field("type").error("must be \"acme\" or \"local-ca\"");
    }
    return issuer;
}

ServiceProfile parse_profile(const std::string& name, const Node& node,
                             const std::map<std::string, ServiceIssuer>& issuers) {
    node.only_keys({"issuer", "kind", "lifetime", "domains", "renew_within", "comment"});
    ServiceProfile p;
    p.name = name;
    if (!node.has("issuer") || !node.has("domains")) node.error("needs \"issuer\" and \"domains\"");
    Node issuer = node.field("issuer");
    p.issuer = issuer.string();
    auto found = issuers.find(p.issuer);
    if (found == issuers.end()) issuer.error("no issuer '" + p.issuer + "'");
    if (node.has("kind")) {
        Node kind = node.field("kind");
        std::string k = kind.string();
        if (k == "client")
            p.kind = CertificateProfile::Client;
        else if (k != "server")
            kind.error("must be \"server\" or \"client\"");
    }
    // Let's Encrypt no longer issues clientAuth certificates: device identities come from a
    // CA of our own.
    if (p.kind == CertificateProfile::Client && found->second.type == ServiceIssuer::Type::Acme)
        node.field("kind").error("client certificates come from a local-ca issuer, not ACME");
    if (node.has("lifetime")) {
        if (found->second.type == ServiceIssuer::Type::Acme)
            node.field("lifetime").error("an ACME CA decides the lifetime; remove it");
        p.lifetime = duration_field(node.field("lifetime"));
    }
    p.domains = domain_globs(node.field("domains"));
    if (node.has("renew_within")) p.renew_within = duration_field(node.field("renew_within"));
    return p;
}

// Whether a name just under `zone` ("x." + zone) matches one of `globs`.
bool all_match_glob(const std::string& zone, const std::vector<std::string>& globs) {
    return std::any_of(globs.begin(), globs.end(),
                       [&](const std::string& g) { return glob_match(g, "x7k2p." + zone); });
}

void check_profile_name(const Node& node, const std::map<std::string, ServiceProfile>& profiles) {
    std::string name = node.string();
    if (!profiles.count(name)) node.error("no profile '" + name + "'");
}

}  // namespace

ServiceConfig parse_service_config(const std::string& text, const fs::path& file) {
    auto root = parse_json_strictly(text, file);
    Node top(root, "", file);
    top.only_keys({"state_dir", "threads", "listeners", "limits", "replay_window", "issuers",
                   "profiles", "auth", "clients", "devices", "est", "audit_file",
                   "secrets_key_file", "comment"});
    ServiceConfig c;
    c.file = file;
    c.state_dir = top.has("state_dir") ? top.field("state_dir").path_value(false)
                                       : file.parent_path() / "state";
    if (top.has("threads")) c.threads = top.field("threads").integer(1, 64);
    if (!top.has("listeners")) top.error("needs \"listeners\"");
    for (const auto& [name, node] : top.field("listeners").members())
        c.listeners.push_back(parse_listener(name, node));
    if (c.listeners.empty()) top.field("listeners").error("needs at least one listener");
    if (top.has("limits")) {
        Node limits = top.field("limits");
        limits.only_keys({"max_body", "header_timeout", "body_timeout", "idle_timeout",
                          "response_timeout", "max_connections", "max_connections_per_address",
                          "requests_per_minute_per_address", "requests_per_minute_per_client",
                          "comment"});
        if (limits.has("requests_per_minute_per_address"))
            c.requests_per_minute_per_address =
                limits.field("requests_per_minute_per_address").integer(0, 1'000'000);
        if (limits.has("requests_per_minute_per_client"))
            c.requests_per_minute_per_client =
                limits.field("requests_per_minute_per_client").integer(0, 1'000'000);
        auto& l = c.limits;
        if (limits.has("max_body"))
            l.max_body_bytes =
                static_cast<std::size_t>(limits.field("max_body").integer(256, 1 << 20));
        for (auto [key, target] : {std::pair{"header_timeout", &l.header_timeout},
                                   {"body_timeout", &l.body_timeout},
                                   {"idle_timeout", &l.idle_timeout},
                                   {"response_timeout", &l.response_timeout}})
            if (limits.has(key)) *target = duration_ms_field(limits.field(key));
        if (limits.has("max_connections"))
            l.max_connections =
                static_cast<std::size_t>(limits.field("max_connections").integer(1, 1'000'000));
        if (limits.has("max_connections_per_address"))
            l.max_connections_per_address = static_cast<std::size_t>(
                limits.field("max_connections_per_address").integer(1, 1'000'000));
    } else {
        c.limits.max_body_bytes = 4096;  // ACMEMS's max-size default
    }
    if (top.has("replay_window")) c.replay_window = duration_field(top.field("replay_window"));
    if (!top.has("issuers")) top.error("needs \"issuers\"");
    for (const auto& [name, node] : top.field("issuers").members())
        c.issuers.emplace(name, parse_service_issuer(name, node));
    if (!top.has("profiles")) top.error("needs \"profiles\"");
    for (const auto& [name, node] : top.field("profiles").members())
        c.profiles.emplace(name, parse_profile(name, node, c.issuers));
    if (top.has("auth"))
        for (const auto& node : top.field("auth").array()) {
            node.only_keys({"name", "ip", "hmac_key_file", "domains", "profile", "comment"});
            AuthBlock block;
            if (!node.has("name") || !node.has("domains") || !node.has("profile"))
                node.error("needs \"name\", \"domains\" and \"profile\"");
            block.name = node.field("name").string();
            if (node.has("ip"))
                for (const auto& item : node.field("ip").array()) {
                    auto range = AddressRange::parse(item.string());
                    if (!range) item.error("not an IP address or network (\"192.0.2.0/24\")");
                    block.ip.push_back(*range);
                }
            if (node.has("hmac_key_file")) block.hmac = hmac_key_field(node.field("hmac_key_file"));
            if (block.ip.empty() && !block.hmac)
                node.error("names no method (\"ip\" or \"hmac_key_file\"): it would let anyone in");
            block.domains = domain_globs(node.field("domains"));
            check_profile_name(node.field("profile"), c.profiles);
            block.profile = node.field("profile").string();
            c.auth.push_back(std::move(block));
        }
    if (top.has("clients"))
        for (const auto& [name, node] : top.field("clients").members()) {
            node.only_keys({"key_file", "profiles", "domains", "admin", "comment"});
            ServiceClient client;
            client.name = name;
            if (!node.has("key_file") || !node.has("profiles"))
                node.error("needs \"key_file\" and \"profiles\"");
            client.key = hmac_key_field(node.field("key_file"));
            for (const auto& item : node.field("profiles").array()) {
                check_profile_name(item, c.profiles);
                client.profiles.push_back(item.string());
            }
            if (node.has("domains")) client.domains = domain_globs(node.field("domains"));
            if (node.has("admin")) client.admin = node.field("admin").boolean();
            c.clients.emplace(name, std::move(client));
        }
    if (top.has("devices")) {
        Node node = top.field("devices");
        node.only_keys({"zone", "profile", "label_length", "dns", "comment"});
        if (!node.has("zone") || !node.has("profile")) node.error("needs \"zone\" and \"profile\"");
        DevicesConfig d;
        d.zone = node.field("zone").string();
        if (!d.zone.empty() && d.zone.back() == '.') d.zone.pop_back();
        if (!is_valid_dns_name(d.zone, false)) node.field("zone").error("not a DNS name");
        check_profile_name(node.field("profile"), c.profiles);
        d.profile = node.field("profile").string();
        if (!all_match_glob(d.zone, c.profiles.at(d.profile).domains))
            node.field("profile").error("profile " + d.profile + " does not allow names under " +
                                        d.zone + " (add \"*." + d.zone + "\" to its domains)");
        if (node.has("label_length")) d.label_length = node.field("label_length").integer(4, 32);
        if (node.has("dns")) {
            Node dns = node.field("dns");
            dns.only_keys({"server", "tsig_key_file", "zone", "ttl", "comment"});
            if (!dns.has("server") || !dns.has("tsig_key_file"))
                dns.error("needs \"server\" and \"tsig_key_file\"");
            d.dns_server = endpoint_field(dns.field("server"), false);
            d.tsig_key_file = dns.field("tsig_key_file").path_value(true);
            d.dns_zone = dns.has("zone") ? dns.field("zone").string() : d.zone;
            if (dns.has("ttl")) d.ttl = std::chrono::seconds(dns.field("ttl").integer(1, 86400));
        }
        c.devices = d;
    }
    if (top.has("est")) {
        Node est = top.field("est");
        est.only_keys({"profile", "labels", "comment"});
        auto add = [&](const std::string& label, const Node& item) {
            check_profile_name(item, c.profiles);
            const ServiceProfile& p = c.profiles.at(item.string());
            if (c.issuers.at(p.issuer).type != ServiceIssuer::Type::LocalCa)
                item.error("EST enrolls from a local-ca issuer; profile " + p.name + " is not one");
            c.est_profiles[label] = p.name;
        };
        if (est.has("profile")) add("", est.field("profile"));
        if (est.has("labels"))
            for (const auto& [label, item] : est.field("labels").members()) {
                if (label.empty() || label.size() > 64 ||
                    label.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                            "0123456789._-") != std::string::npos)
                    item.error("a CA label is 1 to 64 of A-Z a-z 0-9 . _ -");
                add(label, item);
            }
        if (c.est_profiles.empty()) est.error("needs \"profile\" or \"labels\"");
    }
    bool answers_http01 = std::any_of(c.listeners.begin(), c.listeners.end(), [](const auto& l) {
        return l.serve.count(Endpoint::AcmeChallenge) > 0;
    });
    for (const auto& [name, issuer] : c.issuers)
        if (issuer.type == ServiceIssuer::Type::Acme &&
            issuer.acme.challenge.type == ChallengeConfig::Type::Http01 && !answers_http01)
            top.field("issuers").field(name).error(
                "uses http-01, but no listener serves \"acme-challenge\"");
    c.audit_file = top.has("audit_file") ? top.field("audit_file").path_value(false)
                                         : c.state_dir / "audit.jsonl";
    if (top.has("secrets_key_file"))
        c.secrets_key_file = top.field("secrets_key_file").path_value(true);
    return c;
}

ServiceConfig load_service_config(const fs::path& file) {
    return parse_service_config(read_file(file), file);
}

}  // namespace brokertls
