// brokertls-service with an ACME issuer, against a real Pebble: http-01 answered on the
// service's own acme-challenge listener (ACMEMS's forwarding), dns-01 for enrolled devices
// through RFC 2136 UPDATEs to BIND, and the CA going away and coming back.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/time.hpp"
#include "brokertls/store/files.hpp"
#include "fleet/request_hmac.hpp"
#include "named_fixture.hpp"
#include "pebble_fixture.hpp"
#include "service_fixture.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::PebbleFixture;
using test::PebbleOptions;
using test::verifies;
using namespace std::chrono_literals;

constexpr const char* kOpsKey = "ops-key-0123456789abcdef";

// The HTTP status (last line) and the rest of curl's output made with -w "\n%{http_code}".
std::pair<std::string, std::string> split_status(const std::string& out) {
    auto at = out.rfind('\n');
    if (at == std::string::npos) return {out, ""};
    return {out.substr(at + 1), out.substr(0, at)};
}

class ServiceAcme : public ::testing::Test {
  protected:
    void start(const json& config) {
        service_ = std::make_unique<test::ServiceProcess>(dir_.path(), config);
    }
    std::string url(const std::string& listener, const std::string& scheme) const {
        return service_->url(listener, scheme);
    }
    std::string log() const { return service_ ? service_->log() : ""; }

    // A P-256 key NAME.key and a CSR NAME.csr for `dns` (CN and SAN).
    void make_csr(const std::string& name, const std::string& dns) {
        auto r = test::run(
            {"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", (dir_ / (name + ".key")).string(), "-subj", "/CN=" + dns,
             "-addext", "subjectAltName=DNS:" + dns, "-out", (dir_ / (name + ".csr")).string()},
            "", 30s);
        ASSERT_EQ(r.exit_code, 0) << test::describe(r);
    }

    // POST /sign with NAME.csr by curl; the answer is saved to NAME.pem. Returns the status.
    std::string sign(const std::string& name, std::string* headers = nullptr) {
        auto r = test::run(
            {"curl", "-sS", "--max-time", "120", "--data-binary",
             "@" + (dir_ / (name + ".csr")).string(), "-D", (dir_ / (name + ".headers")).string(),
             "-o", (dir_ / (name + ".pem")).string(), "-w", "%{http_code}",
             url("sign", "http") + "/sign"},
            "", 130s);
        if (headers) *headers = read_file(dir_ / (name + ".headers"));
        return r.out;
    }

    std::size_t cached_entries() const {
        std::size_t n = 0;
        if (fs::exists(dir_ / "state" / "cache"))
            for (const auto& e : fs::recursive_directory_iterator(dir_ / "state" / "cache"))
                n += e.is_regular_file() && e.path().extension() == ".pem";
        return n;
    }

    // A service that asks Pebble for http-01 and answers it on its "challenge" listener, the
    // port Pebble validates on; "lan" lets 127.0.0.1 sign any name under example.test.
    json http01_config(const PebbleFixture& pebble, int challenge_port) {
        return {{"listeners",
                 {{"sign", {{"listen", "127.0.0.1:0"}, {"serve", {"sign"}}}},
                  {"challenge",
                   {{"listen", "127.0.0.1:" + std::to_string(challenge_port)},
                    {"serve", {"acme-challenge"}}}}}},
                {"issuers", {{"pebble", pebble.issuer_json({{"type", "http-01"}})}}},
                {"profiles", {{"web", {{"issuer", "pebble"}, {"domains", {"*.example.test"}}}}}},
                {"auth",
                 {{{"name", "lan"},
                   {"ip", {"127.0.0.1"}},
                   {"domains", {"*.example.test"}},
                   {"profile", "web"}}}}};
    }

    test::TempDir dir_;
    std::unique_ptr<test::ServiceProcess> service_;
};

// Pebble issues after fetching the key authorization from the service's acme-challenge
// listener, which says 404 for any other token (what ACMEMS's nginx forwarding relies on:
// proxy_next_upstream http_404).
TEST_F(ServiceAcme, Http01IsAnsweredOnTheServicesChallengeListener) {
    int challenge_port = test::free_port();
    PebbleOptions options;
    options.challtestsrv_http01 = false;  // only the service answers on that port
    options.http01_port = challenge_port;
    PebbleFixture pebble(options);
    ASSERT_NO_FATAL_FAILURE(start(http01_config(pebble, challenge_port)));
    ASSERT_NO_FATAL_FAILURE(make_csr("web", "web.example.test"));

    ASSERT_EQ(sign("web"), "200") << read_file(dir_ / "web.pem") << log() << pebble.pebble_log();
    auto chain = Certificate::load_chain(dir_ / "web.pem");
    EXPECT_TRUE(verifies(chain, pebble.roots_pem()));
    EXPECT_TRUE(chain.front().matches_key(PrivateKey::load(dir_ / "web.key")));
    EXPECT_EQ(chain.front().subject_alt_names(),
              (std::vector<SubjectAltName>{{SubjectAltName::Type::Dns, "web.example.test"}}));
    auto unknown = test::run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              url("challenge", "http") + "/.well-known/acme-challenge/no-such"},
                             "", 30s);
    EXPECT_EQ(unknown.out, "404");
    // The challenge listener serves nothing else, /sign included.
    auto other = test::run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                            "@" + (dir_ / "web.csr").string(), url("challenge", "http") + "/sign"},
                           "", 30s);
    EXPECT_EQ(other.out, "404");
}

// A device enrolled with brokertls-enroll gets a certificate for its own name from Pebble,
// proven by a TXT record the service puts in BIND with an RFC 2136 UPDATE and takes out again.
TEST_F(ServiceAcme, ADeviceGetsItsNameThroughDns01InBind) {
    test::Named named;
    PebbleOptions options;
    options.dns_server = named.server();  // Pebble looks the TXT up in BIND itself
    PebbleFixture pebble(options);

    // The service's own HTTPS certificate (for /v1), from a brokertls-ca of the test's.
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {test::ca_binary(), "init", "--dir", (dir_ / "ca").string()},
             {test::ca_binary(), "issue", "server", "127.0.0.1", "localhost", "--dir",
              (dir_ / "ca").string(), "--out", (dir_ / "tls").string()}}) {
        auto r = test::run(argv, "", 30s);
        ASSERT_EQ(r.exit_code, 0) << test::describe(r);
    }
    write_file_atomic(dir_ / "ops.key", std::string(kOpsKey) + "\n", kPrivateMode);
    json dns01{{"type", "dns-01"},
               {"provider", "rfc2136"},
               {"server", named.server()},
               {"tsig_key_file", named.key_file().string()},
               {"resolver", named.server()},
               {"propagation_servers", {named.server()}},
               {"propagation_interval", "200ms"},
               {"propagation_timeout", "10s"}};
    ASSERT_NO_FATAL_FAILURE(start(
        {{"listeners",
          {{"api",
            {{"listen", "127.0.0.1:0"},
             {"serve", {"v1"}},
             {"tls", {{"cert", "tls/127.0.0.1.chain.pem"}, {"key", "tls/127.0.0.1.key"}}}}}}},
         {"issuers", {{"pebble", pebble.issuer_json(dns01)}}},
         {"profiles", {{"device", {{"issuer", "pebble"}, {"domains", {"*.example.test"}}}}}},
         {"clients",
          {{"ops", {{"key_file", "ops.key"}, {"profiles", {"device"}}, {"admin", true}}}}},
         {"devices",
          {{"zone", "example.test"},
           {"profile", "device"},
           {"dns", {{"server", named.server()}, {"tsig_key_file", named.key_file().string()}}}}}}));

    std::string body = R"({"count": 1})";
    std::string auth = sign_request_hmac("ops", kOpsKey, "POST", "/v1/enrollment-tokens", body,
                                         SystemClock::now());
    std::string ca = (dir_ / "ca" / "root.crt").string();
    auto made = test::run({"curl", "-sS", "--cacert", ca, "-H", "content-type: application/json",
                           "-H", "authorization: " + auth, "--data-binary", body, "-w",
                           "\n%{http_code}", url("api", "https") + "/v1/enrollment-tokens"},
                          "", 30s);
    auto [status, answer] = split_status(made.out);
    ASSERT_EQ(status, "200") << test::describe(made) << log();
    std::string token = json::parse(answer)["tokens"][0];

    auto enroll = [&](std::vector<std::string> args) {
        args.insert(args.begin(), test::enroll_binary());
        args.insert(args.end(), {"--service", url("api", "https"), "--ca", ca, "--credentials",
                                 (dir_ / "device.json").string()});
        return test::run(args, "", 120s);
    };
    auto registered = enroll({"register", "--token", token});
    ASSERT_EQ(registered.exit_code, 0) << test::describe(registered) << log();
    std::string name = json::parse(read_file(dir_ / "device.json"))["name"];

    auto got = enroll({"certificate", "--out-cert", (dir_ / "device.crt").string(), "--out-key",
                       (dir_ / "device.key").string()});
    ASSERT_EQ(got.exit_code, 0) << test::describe(got) << log() << pebble.pebble_log();
    auto chain = Certificate::load_chain(dir_ / "device.crt");
    EXPECT_TRUE(verifies(chain, pebble.roots_pem()));
    EXPECT_EQ(chain.front().subject_alt_names(),
              (std::vector<SubjectAltName>{{SubjectAltName::Type::Dns, name}}));
    EXPECT_TRUE(chain.front().matches_key(PrivateKey::load(dir_ / "device.key")));
    std::string record = "_acme-challenge." + name;
    EXPECT_NE(log().find("rfc2136: added TXT " + record + "."), std::string::npos) << log();
    EXPECT_NE(log().find("rfc2136: removed TXT " + record + "."), std::string::npos) << log();
    auto dig = test::run({"dig", "@127.0.0.1", "-p", std::to_string(named.port()), "+norecurse",
                          "+short", record, "TXT"},
                         "", 30s);
    EXPECT_EQ(dig.exit_code, 0) << test::describe(dig);
    EXPECT_EQ(dig.out, "") << "the challenge record is still in BIND";
}

// With Pebble down a request is answered 503 with why and when to come back, and the failure
// is not cached: after Pebble is back (a new Pebble that forgot the service's account) the
// same CSR gets its certificate.
TEST_F(ServiceAcme, AnUnavailableCaIsA503AndNothingIsCached) {
    int challenge_port = test::free_port();
    PebbleOptions options;
    options.challtestsrv_http01 = false;
    options.http01_port = challenge_port;
    PebbleFixture pebble(options);
    ASSERT_NO_FATAL_FAILURE(start(http01_config(pebble, challenge_port)));
    ASSERT_NO_FATAL_FAILURE(make_csr("first", "first.example.test"));
    ASSERT_NO_FATAL_FAILURE(make_csr("second", "second.example.test"));
    ASSERT_EQ(sign("first"), "200") << read_file(dir_ / "first.pem") << log();
    ASSERT_EQ(cached_entries(), 1u);

    pebble.stop_pebble();
    std::string headers;
    EXPECT_EQ(sign("second", &headers), "503") << log();
    std::string reason = read_file(dir_ / "second.pem");
    EXPECT_NE(reason.find("unavailable"), std::string::npos) << reason;
    EXPECT_NE(ascii_lower(headers).find("retry-after: 60"), std::string::npos) << headers;
    EXPECT_EQ(cached_entries(), 1u);

    pebble.restart();
    ASSERT_EQ(sign("second"), "200") << read_file(dir_ / "second.pem") << log();
    auto chain = Certificate::load_chain(dir_ / "second.pem");
    EXPECT_TRUE(verifies(chain, pebble.roots_pem()));
    EXPECT_TRUE(chain.front().matches_key(PrivateKey::load(dir_ / "second.key")));
    // The new Pebble knows no accounts: the stored key is registered again.
    EXPECT_NE(log().find("the CA no longer knows account"), std::string::npos) << log();
    EXPECT_EQ(cached_entries(), 2u);
}

}  // namespace
}  // namespace brokertls
