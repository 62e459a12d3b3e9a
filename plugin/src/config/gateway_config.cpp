// brokertls.json's `gateway` section: the listeners of brokertls-gateway.
#include <set>

#include "config/config.hpp"
#include "config/config_node.hpp"

namespace brokertls {

namespace {

using Node = ConfigNode;

GatewayListenerConfig parse_listener(const Node& node, const Config& config) {
    node.only_keys({"name", "listen", "certificates", "security_profile", "upstream", "identity",
                    "password", "client_id_must_match", "alpn", "comment"});
    GatewayListenerConfig l;
    for (const char* key : {"name", "listen", "certificates", "upstream"})
        if (!node.has(key)) node.error(std::string("needs \"") + key + "\"");
    l.name = node.field("name").string();
    if (l.name.empty() || l.name.find_first_of(" \t\r\n") != std::string::npos)
        node.field("name").error("must be a non-empty word");
    l.listen = endpoint_field(node.field("listen"), true, true);
    l.upstream = endpoint_field(node.field("upstream"), true);
    for (const auto& item : node.field("certificates").array()) {
        std::string name = item.string();
        if (!config.certificate_profiles.count(name))
            item.error("no certificate profile '" + name + "'");
        l.certificates.push_back(std::move(name));
    }
    if (l.certificates.empty()) node.field("certificates").error("must name at least one");
    if (node.has("security_profile")) {
        Node profile = node.field("security_profile");
        l.security_profile = profile.string();
        if (!config.security_profiles.count(l.security_profile))
            profile.error("no security profile '" + l.security_profile + "'");
    }
    if (node.has("identity")) {
        Node id = node.field("identity");
        std::string s = id.string();
        if (s == "connect_rewrite")
            l.identity = GatewayListenerConfig::Identity::ConnectRewrite;
        else if (s == "proxy_v2")
            l.identity = GatewayListenerConfig::Identity::ProxyV2;
        else if (s == "none")
            l.identity = GatewayListenerConfig::Identity::None;
        else
            id.error("must be \"connect_rewrite\", \"proxy_v2\" or \"none\"");
    }
    // The broker trusts whatever username it is handed: without a security profile there is no
    // identity to hand it, and the client's own username must never pass.
    if (l.identity != GatewayListenerConfig::Identity::None && l.security_profile.empty())
        node.error("identity \"connect_rewrite\" and \"proxy_v2\" need a \"security_profile\"");
    if (node.has("password")) {
        Node pw = node.field("password");
        std::string s = pw.string();
        if (s != "pass" && s != "drop") pw.error("must be \"pass\" or \"drop\"");
        l.pass_password = s == "pass";
        if (l.identity != GatewayListenerConfig::Identity::ConnectRewrite)
            pw.error("applies to identity \"connect_rewrite\" only");
    }
    if (node.has("client_id_must_match")) {
        l.client_id_must_match = node.field("client_id_must_match").boolean();
        if (l.identity != GatewayListenerConfig::Identity::ConnectRewrite)
            node.field("client_id_must_match")
                .error(
                    "applies to identity \"connect_rewrite\" only (the gateway reads no "
                    "other CONNECT)");
    }
    if (node.has("alpn")) {
        l.alpn.clear();
        for (const auto& item : node.field("alpn").array()) {
            std::string p = item.string();
            if (p.empty() || p.size() > 255) item.error("must be 1 to 255 bytes");
            l.alpn.push_back(std::move(p));
        }
    }
    return l;
}

}  // namespace

GatewayConfig parse_gateway(const Node& node, const Config& config) {
    node.only_keys({"listeners", "workers", "limits", "status", "drain_timeout", "comment"});
    GatewayConfig g;
    if (!node.has("listeners")) node.error("needs \"listeners\"");
    std::set<std::string> names;
    for (const auto& item : node.field("listeners").array()) {
        auto listener = parse_listener(item, config);
        if (!names.insert(listener.name).second)
            item.field("name").error("another listener is named '" + listener.name + "'");
        g.listeners.push_back(std::move(listener));
    }
    if (g.listeners.empty()) node.field("listeners").error("must hold at least one listener");
    if (node.has("workers")) g.workers = node.field("workers").integer(1, 256);
    if (node.has("drain_timeout")) g.drain_timeout = duration_ms_field(node.field("drain_timeout"));
    if (node.has("status")) {
        Node status = node.field("status");
        status.only_keys({"listen", "comment"});
        if (status.has("listen"))
            g.status_listen = endpoint_field(status.field("listen"), true, true);
    }
    if (node.has("limits")) {
        Node limits = node.field("limits");
        limits.only_keys({"handshake_timeout", "first_packet_timeout", "max_connect_size",
                          "max_connections", "per_address", "comment"});
        auto& l = g.limits;
        if (limits.has("handshake_timeout"))
            l.handshake_timeout = duration_ms_field(limits.field("handshake_timeout"));
        if (limits.has("first_packet_timeout"))
            l.first_packet_timeout = duration_ms_field(limits.field("first_packet_timeout"));
        if (limits.has("max_connect_size"))
            l.max_connect_size =
                static_cast<std::size_t>(limits.field("max_connect_size").integer(64, 1 << 20));
        if (limits.has("max_connections"))
            l.max_connections = limits.field("max_connections").integer(1, 1000000);
        if (limits.has("per_address"))
            l.per_address = limits.field("per_address").integer(1, 1000000);
    }
    return g;
}

}  // namespace brokertls
