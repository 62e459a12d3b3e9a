// brokertls.json's "gateway" section (brokertls-gateway's listeners).
#include <gtest/gtest.h>

#include <fstream>

#include "brokertls/error.hpp"
#include "config/config.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

class GatewayConfigTest : public ::testing::Test {
  protected:
    GatewayConfigTest() {
        for (const char* f : {"root.pem", "key.pem", "cert.pem"}) std::ofstream(tmp_ / f) << "x";
    }
    // A configuration with security profile "devices", certificate profiles "a" and "b", and
    // this "gateway" section.
    Config parse(const std::string& gateway) {
        std::string profile =
            R"({"source": "files", "files": {"key": "key.pem", "cert": "cert.pem"},
            "deploy": {"cert": "NAME.crt", "key": "NAME.key"}})";
        auto named = [&](const std::string& name) {
            std::string p = profile;
            for (auto at = p.find("NAME"); at != std::string::npos; at = p.find("NAME"))
                p.replace(at, 4, name);
            return p;
        };
        return parse_config(R"({"security_profiles": {"devices": {"trust_anchors": ["root.pem"]}},
            "certificate_profiles": {"a": )" +
                                named("a") + R"(, "b": )" + named("b") + R"(},
            "gateway": )" + gateway +
                                "}",
                            tmp_ / "brokertls.json");
    }
    std::string error_of(const std::string& gateway) {
        try {
            parse(gateway);
        } catch (const Error& e) {
            return e.what();
        }
        return "no error";
    }
    test::TempDir tmp_;
};

TEST_F(GatewayConfigTest, ParsesListenersWithDefaults) {
    Config c = parse(R"({"listeners": [
        {"name": "mqtts", "listen": "0.0.0.0:8883", "certificates": ["a", "b"],
         "security_profile": "devices", "upstream": "127.0.0.1:1883"},
        {"name": "proxied", "listen": "[::1]:0", "certificates": ["b"], "security_profile": "devices",
         "upstream": "127.0.0.1:1884", "identity": "proxy_v2", "alpn": ["mqtt", "acme-tls/1"]},
        {"name": "plain", "listen": "127.0.0.1:8884", "certificates": ["a"],
         "upstream": "127.0.0.1:1885", "identity": "none"}],
        "workers": 4, "drain_timeout": "500ms", "status": {"listen": "127.0.0.1:9100"},
        "limits": {"handshake_timeout": "5s", "first_packet_timeout": "3s", "max_connect_size": 4096,
                   "max_connections": 50, "per_address": 5}})");
    ASSERT_TRUE(c.gateway);
    const auto& g = *c.gateway;
    ASSERT_EQ(g.listeners.size(), 3u);
    const auto& l = g.listeners[0];
    EXPECT_EQ(l.name, "mqtts");
    EXPECT_EQ(l.listen, "0.0.0.0:8883");
    EXPECT_EQ(l.certificates, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(l.security_profile, "devices");
    EXPECT_EQ(l.identity, GatewayListenerConfig::Identity::ConnectRewrite);
    EXPECT_FALSE(l.pass_password);
    EXPECT_FALSE(l.client_id_must_match);
    EXPECT_EQ(l.alpn, std::vector<std::string>{"mqtt"});
    EXPECT_EQ(g.listeners[1].identity, GatewayListenerConfig::Identity::ProxyV2);
    EXPECT_EQ(g.listeners[1].alpn, (std::vector<std::string>{"mqtt", "acme-tls/1"}));
    EXPECT_EQ(g.listeners[2].identity, GatewayListenerConfig::Identity::None);
    EXPECT_EQ(g.workers, 4);
    EXPECT_EQ(g.drain_timeout, std::chrono::milliseconds(500));
    EXPECT_EQ(g.status_listen, "127.0.0.1:9100");
    EXPECT_EQ(g.limits.handshake_timeout, std::chrono::seconds(5));
    EXPECT_EQ(g.limits.first_packet_timeout, std::chrono::seconds(3));
    EXPECT_EQ(g.limits.max_connect_size, 4096u);
    EXPECT_EQ(g.limits.max_connections, 50);
    EXPECT_EQ(g.limits.per_address, 5);

    Config d = parse(R"({"listeners": [{"name": "m", "listen": "127.0.0.1:8883",
        "certificates": ["a"], "security_profile": "devices", "upstream": "127.0.0.1:1883",
        "password": "pass", "client_id_must_match": false}]})");
    EXPECT_TRUE(d.gateway->listeners[0].pass_password);
    EXPECT_EQ(d.gateway->listeners[0].client_id_must_match, false);
    EXPECT_EQ(d.gateway->workers, 2);
    EXPECT_EQ(d.gateway->limits.max_connect_size, 16u * 1024);
    EXPECT_TRUE(d.gateway->status_listen.empty());
    EXPECT_FALSE(parse_config(R"({"certificate_profiles": {}, "security_profiles": {"d":
        {"trust_anchors": ["root.pem"]}}})",
                              tmp_ / "brokertls.json")
                     .gateway);
}

TEST_F(GatewayConfigTest, ErrorsNameTheJsonPath) {
    const std::string ok =
        R"("name": "m", "listen": "127.0.0.1:8883", "upstream": "127.0.0.1:1883")";
    EXPECT_EQ(error_of(R"({"listeners": [{)" + ok +
                       R"(, "certificates": ["c"], "security_profile": "devices"}]})"),
              "brokertls.json: gateway.listeners[0].certificates[0]: no certificate profile 'c'");
    EXPECT_EQ(error_of(R"({"listeners": [{)" + ok +
                       R"(, "certificates": [], "security_profile": "devices"}]})"),
              "brokertls.json: gateway.listeners[0].certificates: must name at least one");
    EXPECT_EQ(error_of(R"({"listeners": [{)" + ok +
                       R"(, "certificates": ["a"], "security_profile": "x"}]})"),
              "brokertls.json: gateway.listeners[0].security_profile: no security profile 'x'");
    // The broker must never get a username the client chose: no identity without a profile.
    EXPECT_EQ(error_of(R"({"listeners": [{)" + ok + R"(, "certificates": ["a"]}]})"),
              "brokertls.json: gateway.listeners[0]: identity \"connect_rewrite\" and "
              "\"proxy_v2\" need a \"security_profile\"");
    EXPECT_EQ(
        error_of(
            R"({"listeners": [{)" + ok +
            R"(, "certificates": ["a"], "security_profile": "devices", "identity": "username"}]})"),
        "brokertls.json: gateway.listeners[0].identity: must be \"connect_rewrite\", "
        "\"proxy_v2\" or \"none\"");
    EXPECT_EQ(
        error_of(
            R"({"listeners": [{)" + ok +
            R"(, "certificates": ["a"], "security_profile": "devices", "identity": "proxy_v2", "password": "pass"}]})"),
        "brokertls.json: gateway.listeners[0].password: applies to identity "
        "\"connect_rewrite\" only");
    EXPECT_EQ(
        error_of(
            R"({"listeners": [{)" + ok +
            R"(, "certificates": ["a"], "security_profile": "devices", "password": "keep"}]})"),
        "brokertls.json: gateway.listeners[0].password: must be \"pass\" or \"drop\"");
    EXPECT_EQ(
        error_of(
            R"({"listeners": [{"name": "m", "listen": "127.0.0.1", "upstream": "127.0.0.1:1883", "certificates": ["a"], "identity": "none"}]})"),
        "brokertls.json: gateway.listeners[0].listen: must be \"ADDRESS:PORT\" (for example "
        "\"0.0.0.0:80\")");
    EXPECT_EQ(error_of(R"({"listeners": [{)" + ok +
                       R"(, "certificates": ["a"], "identity": "none", "upstrem": "x"}]})"),
              "brokertls.json: gateway.listeners[0].upstrem: unknown field");
    EXPECT_EQ(
        error_of(R"({"listeners": [{)" + ok + R"(, "certificates": ["a"], "identity": "none"}, {)" +
                 ok + R"(, "certificates": ["a"], "identity": "none"}]})"),
        "brokertls.json: gateway.listeners[1].name: another listener is named 'm'");
    EXPECT_EQ(error_of(R"({"listeners": []})"),
              "brokertls.json: gateway.listeners: must hold at least one listener");
    EXPECT_EQ(
        error_of(
            R"({"listeners": [{)" + ok +
            R"(, "certificates": ["a"], "identity": "none"}], "limits": {"max_connect_size": 10}})"),
        "brokertls.json: gateway.limits.max_connect_size: must be a whole number from 64 to "
        "1048576");
    EXPECT_EQ(error_of(R"({"listeners": [{)" + ok +
                       R"(, "certificates": ["a"], "identity": "none"}], "workers": 0})"),
              "brokertls.json: gateway.workers: must be a whole number from 1 to 256");
}

}  // namespace
}  // namespace brokertls
