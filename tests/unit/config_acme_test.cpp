#include <gtest/gtest.h>

#include <fstream>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "config/config.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

class ConfigAcmeTest : public ::testing::Test {
  protected:
    ConfigAcmeTest() {
        std::ofstream(tmp_ / "tsig.key") << "key";
        std::ofstream(tmp_ / "hook.sh") << "#!/bin/sh\n";
    }
    // A configuration with one issuer (`issuer` is its JSON) and one acme profile.
    std::string document(const std::string& issuer, const std::string& names = R"(["a.example"])",
                         const std::string& extra = "") {
        return R"({"issuers": {"ca": )" + issuer +
               R"(}, "certificate_profiles": {"web": {"source": "acme", "acme": {"issuer": "ca"},
               "names": )" +
               names + R"(, "deploy": {"cert": "c.pem", "key": "k.pem"}}})" + extra + "}";
    }
    Config parse(const std::string& text) { return parse_config(text, tmp_ / "brokertls.json"); }
    std::string error_of(const std::string& text) {
        try {
            parse(text);
        } catch (const Error& e) {
            return e.what();
        }
        return "no error";
    }
    static constexpr const char* http01 =
        R"({"type": "acme", "directory": "https://acme.example/dir", "challenge": {"type": "http-01"}})";
    test::TempDir tmp_;
};

TEST_F(ConfigAcmeTest, AnAcmeProfileWithDefaults) {
    Config c = parse(document(http01));
    const auto& issuer = c.issuers.at("ca");
    EXPECT_EQ(issuer.directory, "https://acme.example/dir");
    EXPECT_EQ(issuer.challenge.type, ChallengeConfig::Type::Http01);
    EXPECT_EQ(issuer.challenge.listen, "0.0.0.0:80");
    EXPECT_EQ(issuer.account_key_type, KeyType::EcP256);
    const auto& p = c.certificate_profiles.at("web");
    EXPECT_EQ(p.source, CertificateSource::Acme);
    EXPECT_EQ(p.issuer, "ca");
    EXPECT_EQ(c.state_dir, tmp_ / "state");
    EXPECT_EQ(c.renewal.check_interval, std::chrono::hours(12));
    EXPECT_EQ(c.renewal.max_concurrent_orders, 4);
    EXPECT_EQ(c.events.mqtt_topic, "$SYS/broker/brokertls/events");
}

TEST_F(ConfigAcmeTest, EveryIssuerAndRenewalFieldIsRead) {
    Config c = parse(document(
        R"({"type": "acme", "directory": "https://acme.example/dir", "email": "ops@example.com",
            "eab": {"key_id": "kid-1", "hmac_key": "c2VjcmV0"}, "ca_bundle": "tsig.key",
            "account_key_type": "rsa2048",
            "challenge": {"type": "dns-01", "provider": "rfc2136", "server": "[::1]:5353",
              "tsig_key_file": "tsig.key", "zone": "example.", "resolver": "127.0.0.1:53",
              "propagation_servers": ["127.0.0.1:5353"], "propagation_timeout": "30s",
              "propagation_interval": "250ms", "ttl": 30,
              "challenge_domains": {"a.example": "a.acme.example.net"}}})",
        R"(["a.example", "*.a.example"])",
        R"(, "renewal": {"check_interval": "6h", "max_concurrent_orders": 8,
            "expiring_threshold": "3d", "order_timeout": "5m"},
            "events": {"mqtt_topic": "ops/certs", "exec": "hook.sh",
            "webhook": "https://hooks.example/x", "timeout": "5s"}, "state_dir": "/var/lib/x")"));
    const auto& i = c.issuers.at("ca");
    EXPECT_EQ(i.email, "ops@example.com");
    EXPECT_EQ(*i.eab_key_id, "kid-1");
    EXPECT_EQ(*i.eab_hmac_key, "c2VjcmV0");
    EXPECT_EQ(i.account_key_type, KeyType::Rsa2048);
    EXPECT_EQ(i.challenge.provider, ChallengeConfig::DnsProvider::Rfc2136);
    EXPECT_EQ(i.challenge.dns_server, "[::1]:5353");
    EXPECT_EQ(i.challenge.tsig_key_file, tmp_ / "tsig.key");
    EXPECT_EQ(i.challenge.propagation_interval, std::chrono::milliseconds(250));
    EXPECT_EQ(i.challenge.propagation_timeout, std::chrono::seconds(30));
    EXPECT_EQ(i.challenge.ttl, std::chrono::seconds(30));
    EXPECT_EQ(i.challenge.challenge_domains.at("a.example"), "a.acme.example.net");
    EXPECT_EQ(c.renewal.max_concurrent_orders, 8);
    EXPECT_EQ(c.renewal.expiring_threshold, std::chrono::hours(72));
    EXPECT_EQ(c.events.mqtt_topic, "ops/certs");
    EXPECT_EQ(c.events.exec, tmp_ / "hook.sh");
    EXPECT_EQ(c.state_dir, "/var/lib/x");
}

TEST_F(ConfigAcmeTest, ChallengeKinds) {
    auto challenge = [&](const std::string& json) {
        return parse(document(R"({"type": "acme", "directory": "https://x/d", "challenge": )" +
                              json + "}"))
            .issuers.at("ca")
            .challenge;
    };
    EXPECT_EQ(challenge(R"({"type": "tls-alpn-01"})").listen, "0.0.0.0:443");
    EXPECT_EQ(challenge(R"({"type": "http-01", "webroot": "."})").webroot, tmp_ / ".");
    auto exec = challenge(R"({"type": "dns-01", "provider": "exec", "command": "hook.sh"})");
    EXPECT_EQ(exec.provider, ChallengeConfig::DnsProvider::Exec);
    EXPECT_EQ(exec.timeout, std::chrono::seconds(60));
    auto manual = challenge(R"({"type": "dns-01", "provider": "manual"})");
    EXPECT_EQ(manual.provider, ChallengeConfig::DnsProvider::Manual);
    EXPECT_EQ(manual.timeout, std::chrono::hours(24));
}

TEST_F(ConfigAcmeTest, ErrorsNameThePathAndReason) {
    EXPECT_EQ(
        error_of(R"({"certificate_profiles": {"web": {"source": "acme", "acme": {"issuer": "x"},
        "names": ["a.example"], "deploy": {"cert": "c", "key": "k"}}}})"),
        "brokertls.json: certificate_profiles.web.acme.issuer: no issuer \"x\" in \"issuers\"");
    EXPECT_EQ(error_of(document(http01, R"(["*.a.example"])")),
              "brokertls.json: certificate_profiles.web.names[0]: a wildcard needs an issuer with "
              "a dns-01 challenge");
    EXPECT_EQ(error_of(document(http01, R"(["ops@example.com"])")),
              "brokertls.json: certificate_profiles.web.names[0]: ACME certificates hold DNS "
              "names and IP addresses only");
    EXPECT_EQ(
        error_of(document(
            R"({"type": "acme", "directory": "https://x/d", "challenge": {"type": "dns-01", "provider": "manual"}})",
            R"(["10.0.0.5"])")),
        "brokertls.json: certificate_profiles.web.names[0]: an IP address cannot be proven "
        "by dns-01 (use http-01 or tls-alpn-01)");
    EXPECT_EQ(error_of(document(
                  R"({"type": "acme", "directory": "ftp://x", "challenge": {"type": "http-01"}})")),
              "brokertls.json: issuers.ca.directory: must be an https:// URL (http:// only to "
              "127.0.0.1, localhost or [::1])");
    EXPECT_NE(
        error_of(document(
            R"({"type": "acme", "directory": "http://localhost.evil.example/dir", "challenge": {"type": "http-01"}})")),
        "no error");
    EXPECT_EQ(
        error_of(document(
            R"({"type": "acme", "directory": "http://127.0.0.1:14000/dir", "challenge": {"type": "http-01"}})")),
        "no error");
    EXPECT_EQ(
        error_of(document(
            R"({"type": "acme", "directory": "https://x/d", "challenge": {"type": "http-01", "listen": "80"}})")),
        "brokertls.json: issuers.ca.challenge.listen: must be \"ADDRESS:PORT\" (for example "
        "\"0.0.0.0:80\")");
    EXPECT_EQ(
        error_of(document(
            R"({"type": "acme", "directory": "https://x/d", "challenge": {"type": "http-01", "listen": "::1:80"}})")),
        "brokertls.json: issuers.ca.challenge.listen: an IPv6 address needs brackets: "
        "\"[::1]:53\"");
    EXPECT_EQ(
        error_of(document(
            R"({"type": "acme", "directory": "https://x/d", "challenge": {"type": "dns-01", "provider": "rfc2136", "server": "ns:53"}})")),
        "brokertls.json: issuers.ca.challenge: rfc2136 needs \"server\" and \"tsig_key_file\"");
    EXPECT_EQ(
        error_of(document(
            R"({"type": "acme", "directory": "https://x/d", "challenge": {"type": "dns-01", "provider": "route53"}})")),
        "brokertls.json: issuers.ca.challenge.provider: must be \"rfc2136\", \"exec\" or "
        "\"manual\"");
    EXPECT_EQ(error_of(document(http01, R"(["a.example"])",
                                R"(, "renewal": {"max_concurrent_orders": 0})")),
              "brokertls.json: renewal.max_concurrent_orders: must be a whole number from 1 to 64");
    EXPECT_EQ(
        error_of(document(http01, R"(["a.example"])", R"(, "events": {"mqtt_topic": "a/#"})")),
        "brokertls.json: events.mqtt_topic: must not contain wildcards (+ or #)");
    EXPECT_EQ(
        error_of(document(
            R"({"type": "acme", "directory": "https://x/d", "eab": {"key_id": "k"}, "challenge": {"type": "http-01"}})")),
        "brokertls.json: issuers.ca.eab: needs \"key_id\" and \"hmac_key\"");
}

TEST_F(ConfigAcmeTest, TheCommentedExampleParses) {
    auto example = std::filesystem::path(__FILE__).parent_path() /
                   "../../examples/mosquitto/brokertls-acme.json";
    Config c = parse(read_file(example));
    EXPECT_EQ(c.certificate_profiles.at("broker").issuer, "letsencrypt");
    EXPECT_EQ(c.issuers.at("letsencrypt").challenge.listen, "0.0.0.0:80");
    EXPECT_EQ(c.state_dir, tmp_ / "state");
}

}  // namespace
}  // namespace brokertls
