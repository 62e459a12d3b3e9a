// brokertls-service.json: what it accepts and how it names what it refuses.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "brokertls/ca/authority.hpp"
#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "service/service_config.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using nlohmann::json;

class ServiceConfigTest : public ::testing::Test {
  protected:
    ServiceConfigTest() {
        std::filesystem::create_directory(dir_ / "ca");
        write_file_atomic(dir_ / "key", "0123456789abcdef0123\n", kPrivateMode);
        write_file_atomic(dir_ / "open.key", "0123456789abcdef0123\n", 0644);
        write_file_atomic(dir_ / "short.key", "short\n", kPrivateMode);
        write_file_atomic(dir_ / "tls.pem", "x", kPublicMode);
        base_ = json::parse(R"({
          "listeners": {"sign": {"listen": "127.0.0.1:0", "serve": ["sign"]}},
          "issuers": {"ca": {"type": "local-ca", "dir": "ca"}},
          "profiles": {"edge": {"issuer": "ca", "domains": ["*.example.com"]}},
          "auth": [{"name": "lan", "ip": ["10.0.0.0/8"], "domains": ["*.example.com"],
                    "profile": "edge"}]
        })");
    }
    ServiceConfig parse(const json& j) {
        return parse_service_config(j.dump(), dir_ / "service.json");
    }
    std::string error(const json& j) {
        return test::error_of([&] { parse(j); }, ErrorKind::Input);
    }
    test::TempDir dir_;
    json base_;
};

TEST_F(ServiceConfigTest, TheMinimalConfigurationAndItsDefaults) {
    auto c = parse(base_);
    EXPECT_EQ(c.state_dir, dir_ / "state");
    EXPECT_EQ(c.audit_file, dir_ / "state" / "audit.jsonl");
    EXPECT_EQ(c.limits.max_body_bytes, 4096u);  // ACMEMS's max-size
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].listen, "127.0.0.1:0");
    EXPECT_EQ(c.profiles.at("edge").renew_within, std::chrono::seconds(14 * 86400));
    EXPECT_EQ(c.auth.at(0).ip.size(), 1u);
}

TEST_F(ServiceConfigTest, ErrorsNameTheFileThePathAndTheReason) {
    auto with = [&](const char* pointer, json value) {
        json j = base_;
        j[json::json_pointer(pointer)] = std::move(value);
        return error(j);
    };
    EXPECT_EQ(
        with("/listeners/sign/serve", json::array({"v1"})),
        "service.json: listeners.sign.serve: \"v1\" and \"est\" are served only over TLS: add "
        "\"tls\"");
    EXPECT_EQ(with("/listeners/sign/listen", "127.0.0.1"),
              "service.json: listeners.sign.listen: must be \"ADDRESS:PORT\" (for example "
              "\"0.0.0.0:80\")");
    EXPECT_EQ(with("/profiles/edge/issuer", "nope"),
              "service.json: profiles.edge.issuer: no issuer 'nope'");
    EXPECT_EQ(with("/auth/0/profile", "nope"), "service.json: auth[0].profile: no profile 'nope'");
    EXPECT_EQ(with("/auth/0/ip/0", "10.0.0.0/40"),
              "service.json: auth[0].ip[0]: not an IP address or network (\"192.0.2.0/24\")");
    EXPECT_EQ(with("/auth/0/typo", 1), "service.json: auth[0].typo: unknown field");
    EXPECT_EQ(with("/auth/0/hmac_key_file", "open.key"),
              "service.json: auth[0].hmac_key_file: " + (dir_ / "open.key").string() +
                  " is readable by others (mode 0644): chmod 600 it");
    EXPECT_NE(with("/auth/0/hmac_key_file", "short.key").find("at least 16 characters"),
              std::string::npos);
    json open = base_;
    open["auth"][0].erase("ip");
    EXPECT_EQ(error(open),
              "service.json: auth[0]: names no method (\"ip\" or \"hmac_key_file\"): "
              "it would let anyone in");
    EXPECT_EQ(with("/profiles/edge/kind", "both"),
              "service.json: profiles.edge.kind: must be \"server\" or \"client\"");
    json acme = base_;
    acme["issuers"]["le"] = {{"type", "acme"},
                             {"directory", "https://acme.example/dir"},
                             {"challenge", {{"type", "http-01"}, {"listen", "0.0.0.0:80"}}}};
    EXPECT_NE(error(acme).find("issuers.le.challenge: brokertls-service answers http-01 on its"),
              std::string::npos)
        << error(acme);
    acme["issuers"]["le"]["challenge"] = {{"type", "http-01"}};
    EXPECT_EQ(error(acme),
              "service.json: issuers.le: uses http-01, but no listener serves "
              "\"acme-challenge\"");
    acme["listeners"]["challenges"] = {{"listen", "127.0.0.1:0"}, {"serve", {"acme-challenge"}}};
    acme["profiles"]["client"] = {{"issuer", "le"}, {"kind", "client"}, {"domains", {"*"}}};
    EXPECT_EQ(error(acme),
              "service.json: profiles.client.kind: client certificates come from a "
              "local-ca issuer, not ACME");
    acme["profiles"].erase("client");
    acme["issuers"]["le"]["max_concurrent_orders"] = 8;
    EXPECT_EQ(parse(acme).issuers.at("le").max_concurrent_orders, 8);
}

TEST_F(ServiceConfigTest, TheCommentedExampleParses) {
    // The files it names, as an operator would have them.
    for (const char* d : {"tls", "devices-ca", "keys"})
        std::filesystem::create_directories(dir_ / d);
    for (const char* f : {"tls/service.chain.pem", "tls/service.key", "devices-ca/root.crt"})
        write_file_atomic(dir_ / f, "x", kPublicMode);
    for (const char* f : {"keys/mail.key", "keys/provisioning.key"})
        write_file_atomic(dir_ / f, "0123456789abcdef0123\n", kPrivateMode);
    for (const char* f : {"keys/acme-update.key", "keys/devices-update.key"})
        write_file_atomic(dir_ / f, "key \"k\" { algorithm hmac-sha256; secret \"AAAA\"; };\n",
                          kPrivateMode);
    std::string text = read_file(std::filesystem::path(__FILE__).parent_path() /
                                 "../../examples/service/service.json");
    auto c = parse_service_config(text, dir_ / "service.json");
    EXPECT_EQ(c.listeners.size(), 3u);
    EXPECT_EQ(c.issuers.at("le").rate_limits.public_suffixes,
              std::vector<std::string>{"devices.example.com"});
    EXPECT_EQ(c.est_profiles.at(""), "device-identity");
    EXPECT_EQ(c.devices->zone, "devices.example.com");
}

}  // namespace
}  // namespace brokertls
