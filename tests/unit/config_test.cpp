#include <gtest/gtest.h>

#include <fstream>

#include "brokertls/error.hpp"
#include "config/config.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
  protected:
    ConfigTest() { std::ofstream(tmp_ / "root.pem") << "x"; }
    Config parse(const std::string& text) { return parse_config(text, tmp_ / "brokertls.json"); }
    std::string error_of(const std::string& text) {
        try {
            parse(text);
        } catch (const Error& e) {
            return e.what();
        }
        return "no error";
    }
    test::TempDir tmp_;
};

TEST_F(ConfigTest, ParsesASecurityProfileWithDefaultsAndRelativePaths) {
    Config c = parse(
        R"({"security_profiles": {"devices": {"trust_anchors": ["root.pem"], "identity": "san_uri",
        "deny_fingerprints": ["AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"]}}})");
    const auto& p = c.security_profiles.at("devices");
    EXPECT_EQ(p.trust_anchors.at(0), tmp_ / "root.pem");
    EXPECT_TRUE(p.require_client_certificate);
    EXPECT_EQ(p.required_eku, "clientAuth");
    EXPECT_EQ(p.max_chain_depth, 4);
    EXPECT_EQ(p.identity, IdentitySource::SanUri);
    EXPECT_EQ(p.deny_fingerprints.at(0),
              "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
}

TEST_F(ConfigTest, ErrorsNameFileJsonPathAndReason) {
    EXPECT_EQ(
        error_of(
            R"({"security_profiles": {"devices": {"trust_anchors": ["root.pem"], "crls": ["nope.pem"]}}})"),
        "brokertls.json: security_profiles.devices.crls[0]: file not found (" +
            (tmp_ / "nope.pem").string() + ")");
    EXPECT_EQ(
        error_of(
            R"({"security_profiles": {"devices": {"trust_anchors": ["root.pem"], "identity": "serial"}}})"),
        "brokertls.json: security_profiles.devices.identity: must be one of cn, san_dns, san_uri, "
        "san_email, subject_dn, fingerprint");
    EXPECT_EQ(error_of(R"({"security_profiles": {"devices": {"trust_anchor": ["root.pem"]}}})"),
              "brokertls.json: security_profiles.devices.trust_anchor: unknown field");
    EXPECT_EQ(
        error_of(
            R"({"security_profiles": {"devices": {"trust_anchors": ["root.pem"], "max_chain_depth": 0}}})"),
        "brokertls.json: security_profiles.devices.max_chain_depth: must be a whole number from 1 "
        "to 16");
    EXPECT_EQ(
        error_of(
            R"({"security_profiles": {"devices": {"trust_anchors": ["root.pem"], "allow_fingerprints": ["abc"]}}})"),
        "brokertls.json: security_profiles.devices.allow_fingerprints[0]: not a SHA-256 "
        "fingerprint (64 hex digits, colons allowed)");
    EXPECT_EQ(error_of(R"({"security_profiles": {"devices": {}}})"),
              "brokertls.json: security_profiles.devices: require_client_certificate is true but "
              "trust_anchors is empty");
    EXPECT_EQ(error_of("{not json").rfind("brokertls.json: line 1, column 3: not valid JSON: ", 0),
              0u)
        << error_of("{not json");
    EXPECT_EQ(
        error_of("{}"),
        "brokertls.json: (top level): defines no security_profiles and no certificate_profiles");
}

TEST_F(ConfigTest, ParsesCertificateProfiles) {
    fs::create_directories(tmp_ / "ca");
    Config c = parse(R"({"certificate_profiles": {
        "broker": {"source": "local-ca", "local_ca": {"dir": "ca", "lifetime": "2h"}, "renew_before": "30m",
                   "names": ["broker.local", "10.0.0.5"], "key_type": "ecdsa-p384",
                   "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}},
        "files": {"source": "files", "files": {"key": "root.pem", "cert": "root.pem"},
                  "deploy": {"cert": "live/f.crt", "key": "live/f.key"}}}})");
    const auto& b = c.certificate_profiles.at("broker");
    EXPECT_EQ(b.source, CertificateSource::LocalCa);
    EXPECT_EQ(b.lifetime, std::chrono::hours(2));
    EXPECT_EQ(b.renew_before, std::chrono::minutes(30));
    EXPECT_EQ(b.names.size(), 2u);
    EXPECT_EQ(b.names[1].type, SubjectAltName::Type::Ip);
    EXPECT_EQ(b.key_type, KeyType::EcP384);
    EXPECT_EQ(b.deploy_cert, tmp_ / "live/broker.crt");
    EXPECT_EQ(c.certificate_profiles.at("files").source, CertificateSource::Files);

    EXPECT_EQ(
        error_of(
            R"({"certificate_profiles": {"b": {"source": "acme", "deploy": {"cert": "a", "key": "b"}}}})"),
        "brokertls.json: certificate_profiles.b: source \"acme\" needs \"acme\": {\"issuer\"}");
    EXPECT_EQ(
        error_of(
            R"({"certificate_profiles": {"b": {"source": "local-ca", "local_ca": {"dir": "ca"}, "names": ["bad name!"],
              "deploy": {"cert": "a", "key": "b"}}}})"),
        "brokertls.json: certificate_profiles.b.names[0]: bad name!: not a DNS name, IP address, "
        "URI or email address");
}

TEST(Duration, ParsesUnits) {
    EXPECT_EQ(parse_duration("90d"), std::chrono::hours(24 * 90));
    EXPECT_EQ(parse_duration("12h"), std::chrono::hours(12));
    EXPECT_EQ(parse_duration("30m"), std::chrono::minutes(30));
    EXPECT_EQ(parse_duration("45s"), std::chrono::seconds(45));
    EXPECT_EQ(parse_duration("45"), std::chrono::seconds(45));
    EXPECT_FALSE(parse_duration("").has_value());
    EXPECT_FALSE(parse_duration("-5m").has_value());
    EXPECT_FALSE(parse_duration("5 weeks").has_value());
}

}  // namespace
}  // namespace brokertls

namespace brokertls {
namespace {

class ConfigStrictTest : public ConfigTest {};

// nlohmann keeps the last of two equal keys: a second "crls" would silently drop the first.
TEST_F(ConfigStrictTest, DuplicateKeysAreRefusedWithTheirPath) {
    EXPECT_EQ(error_of(R"({"security_profiles": {"devices": {"trust_anchors": ["root.pem"],
        "crls": [], "crls": []}}})"),
              "brokertls.json: security_profiles.devices.crls: duplicate key (each key may appear "
              "once in an object)");
    EXPECT_EQ(error_of(R"({"control": {}, "control": {}})"),
              "brokertls.json: control: duplicate key (each key may appear once in an object)");
    // The same key in two different objects is fine.
    EXPECT_NO_THROW(parse(R"({"security_profiles": {"a": {"trust_anchors": ["root.pem"]},
        "b": {"trust_anchors": ["root.pem"]}}})"));
}

TEST_F(ConfigStrictTest, SyntaxErrorsNameLineAndColumn) {
    std::string error = error_of("{\n  \"security_profiles\": {\n    \"devices\": [1, 2,, 3]\n}}");
    EXPECT_EQ(error.rfind("brokertls.json: line 3, column 22: not valid JSON: ", 0), 0u) << error;
    EXPECT_NE(error.find("syntax error"), std::string::npos) << error;
}

TEST_F(ConfigStrictTest, DeployPathsMustBeDistinct) {
    auto profile = [](const std::string& name, const std::string& cert, const std::string& key) {
        return "\"" + name +
               R"(": {"source": "files", "files": {"key": "root.pem", "cert": "root.pem"},
                 "deploy": {"cert": ")" +
               cert + R"(", "key": ")" + key + "\"}}";
    };
    EXPECT_EQ(
        error_of(R"({"certificate_profiles": {)" + profile("a", "live/x.pem", "live/x.pem") + "}}"),
        "brokertls.json: certificate_profiles.a.deploy: \"cert\" and \"key\" name the same file (" +
            (tmp_ / "live/x.pem").string() + "): the key would be overwritten by the certificate");
    EXPECT_EQ(error_of(R"({"certificate_profiles": {)" + profile("a", "live/a.crt", "live/a.key") +
                       "," + profile("b", "live/b.crt", "live/a.key") + "}}"),
              "brokertls.json: certificate_profiles.b.deploy: " + (tmp_ / "live/a.key").string() +
                  " is also deployed by certificate profile 'a'");
}

TEST_F(ConfigStrictTest, ControlAllowTakesIdentitiesBoundToSecurityProfiles) {
    Config c = parse(R"({"security_profiles": {"ops": {"trust_anchors": ["root.pem"]}},
        "control": {"allow": ["admin", {"identity": "root-op", "security_profile": "ops"}]}})");
    ASSERT_EQ(c.control_allow.size(), 2u);
    EXPECT_EQ(c.control_allow[0].identity, "admin");
    EXPECT_EQ(c.control_allow[0].security_profile, "");
    EXPECT_EQ(c.control_allow[1].identity, "root-op");
    EXPECT_EQ(c.control_allow[1].security_profile, "ops");
    EXPECT_EQ(error_of(R"({"security_profiles": {"ops": {"trust_anchors": ["root.pem"]}},
        "control": {"allow": [{"identity": "x", "security_profile": "nope"}]}})"),
              "brokertls.json: control.allow[0].security_profile: no security profile 'nope'");
    EXPECT_EQ(error_of(R"({"security_profiles": {"ops": {"trust_anchors": ["root.pem"]}},
        "control": {"allow": [""]}})"),
              "brokertls.json: control.allow[0]: an identity must not be empty");
}

// Mosquitto 2.1's global_plugin: listener ports mapped to security profiles.
TEST_F(ConfigStrictTest, ListenersMapPortsToSecurityProfiles) {
    const std::string profiles =
        R"("security_profiles": {"devices": {"trust_anchors": ["root.pem"]}})";
    Config c = parse("{" + profiles + R"(, "listeners": {"8884": "devices", "1": "devices"}})");
    EXPECT_EQ(c.listeners, (std::map<int, std::string>{{1, "devices"}, {8884, "devices"}}));
    EXPECT_TRUE(parse("{" + profiles + "}").listeners.empty());
    for (const char* port : {"0", "65536", "08884", "88a4", "-1", " 8884", ""})
        EXPECT_EQ(
            error_of("{" + profiles + R"(, "listeners": {")" + port + R"(": "devices"}})"),
            std::string("brokertls.json: listeners.") + port + ": not a port number (1 to 65535)")
            << port;
    EXPECT_EQ(error_of("{" + profiles + R"(, "listeners": {"8884": "nope"}})"),
              "brokertls.json: listeners.8884: no security profile 'nope'");
    EXPECT_NE(error_of("{" + profiles + R"(, "listeners": {"8884": 5}})").find("listeners.8884"),
              std::string::npos);
}

}  // namespace
}  // namespace brokertls
