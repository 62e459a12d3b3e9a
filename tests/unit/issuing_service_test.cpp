// brokertls-service's request handling in-process, with a real brokertls-ca directory behind
// it: ACMEMS auth blocks, the /v1 API, the cache and the audit log. The HTTP layer is tested on
// its own (integration.ServiceHttp) and end to end (integration.Service).

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "brokertls/ca/authority.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/digest.hpp"
#include "brokertls/store/files.hpp"
#include "service/auth.hpp"
#include "service/issuing_service.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kBlockKey = "A1YP67armNf3cBrecyJHdb035";
constexpr const char* kClientKey = "fleet-key-0123456789abcdef";
constexpr const char* kOpsKey = "ops-key-0123456789abcdef";

std::string csr_pem(const PrivateKey& key, const std::string& cn,
                    const std::vector<std::string>& sans = {}) {
    std::vector<SubjectAltName> names;
    for (const auto& s : sans) names.push_back(classify_name(s));
    return CertificateRequest::create(key, cn, names).to_pem();
}

class IssuingServiceTest : public ::testing::Test {
  protected:
    IssuingServiceTest() {
        CaInitOptions options;
        CertificateAuthority::init_root(dir_ / "ca", options, clock_.now());
        write_file_atomic(dir_ / "block.key", std::string(kBlockKey) + "\n", kPrivateMode);
        write_file_atomic(dir_ / "fleet.key", std::string(kClientKey) + "\n", kPrivateMode);
        write_file_atomic(dir_ / "ops.key", std::string(kOpsKey) + "\n", kPrivateMode);
        write_file_atomic(dir_ / "tls.pem", "unused here", kPublicMode);
        config_ = json::parse(R"({
          "listeners": {
            "plain": {"listen": "127.0.0.1:0", "serve": ["sign"]},
            "api": {"listen": "127.0.0.1:0", "serve": ["sign", "v1"],
                    "tls": {"cert": "tls.pem", "key": "tls.pem"}}
          },
          "issuers": {"ca": {"type": "local-ca", "dir": "ca"}},
          "profiles": {
            "edge": {"issuer": "ca", "domains": ["*.devices.example.com", "mail*.example.org"],
                     "lifetime": "30d", "renew_within": "10d"},
            "device": {"issuer": "ca", "kind": "client", "domains": ["*"], "lifetime": "7d"}
          },
          "auth": [
            {"name": "office", "ip": ["192.0.2.0/24"], "domains": ["mail.example.org"],
             "profile": "edge"},
            {"name": "mail-secure", "ip": ["198.51.100.21"], "hmac_key_file": "block.key",
             "domains": ["mail?.example.org"], "profile": "edge"}
          ],
          "clients": {
            "fleet": {"key_file": "fleet.key", "profiles": ["edge", "device"],
                      "domains": ["*.devices.example.com", "dev-*"]},
            "ops": {"key_file": "ops.key", "profiles": [], "admin": true}
          },
          "devices": {"zone": "devices.example.com", "profile": "edge"}
        })");
    }

    IssuingService& service() {
        if (!service_) {
            std::ofstream(dir_ / "service.json") << config_.dump(2);
            parsed_ = load_service_config(dir_ / "service.json");
            service_ = std::make_unique<IssuingService>(parsed_, clock_, [](const std::string&) {});
        }
        return *service_;
    }

    ServerResponse call(ServerRequest req, const std::string& listener = "plain") {
        service();
        auto it = std::find_if(parsed_.listeners.begin(), parsed_.listeners.end(),
                               [&](const ServiceListener& l) { return l.name == listener; });
        auto handler = service().handler(*it);
        std::promise<ServerResponse> answer;
        auto got = answer.get_future();
        handler(std::move(req), [&](ServerResponse r) { answer.set_value(std::move(r)); });
        EXPECT_EQ(got.wait_for(30s), std::future_status::ready);
        return got.get();
    }

    ServerResponse sign(const std::string& body, const std::string& address,
                        const std::string& authentication = "") {
        ServerRequest req{"POST", "/sign", {}, body, address, {}, false};
        if (!authentication.empty()) req.headers.emplace_back("authentication", authentication);
        return call(std::move(req));
    }

    // A /v1 request signed with the request HMAC of `key_id` (none when empty).
    ServerResponse api(const std::string& method, const std::string& target,
                       const std::string& body, const std::string& key_id, const std::string& key) {
        ServerRequest req{
            method, target, {{"content-type", "application/json"}}, body, "203.0.113.5", {}, true};
        if (!key_id.empty())
            req.headers.emplace_back("authorization", sign_request_hmac(key_id, key, method, target,
                                                                        body, clock_.now()));
        return call(std::move(req), "api");
    }

    ServerResponse v1(const json& body, const std::string& key_id, const std::string& key) {
        std::string text = body.dump();
        ServerRequest req{"POST", "/v1/certificates", {{"content-type", "application/json"}},
                          text,   "203.0.113.5",      {},
                          true};
        if (!key_id.empty())
            req.headers.emplace_back(
                "authorization",
                sign_request_hmac(key_id, key, "POST", "/v1/certificates", text, clock_.now()));
        return call(std::move(req), "api");
    }

    std::vector<json> audit() {
        std::vector<json> lines;
        std::ifstream in(dir_ / "state" / "audit.jsonl");
        for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
        return lines;
    }

    test::TempDir dir_;
    FakeClock clock_{from_iso8601("2030-01-01T00:00:00Z")};
    json config_;
    ServiceConfig parsed_;
    std::unique_ptr<IssuingService> service_;
    PrivateKey key_ = PrivateKey::generate(KeyType::EcP256);
};

TEST_F(IssuingServiceTest, AnAddressBlockSignsItsDomainsAndAnswersTheChainInPem) {
    auto r = sign(csr_pem(key_, "mail.example.org"), "192.0.2.7");
    ASSERT_EQ(r.status, 200) << r.body;
    auto chain = Certificate::parse_chain(r.body, "answer");
    ASSERT_EQ(chain.size(), 1u);  // a root-only CA: the leaf is the whole chain
    EXPECT_TRUE(chain[0].matches_key(key_));
    EXPECT_EQ(chain[0].subject_alt_names(),
              (std::vector<SubjectAltName>{{SubjectAltName::Type::Dns, "mail.example.org"}}));
    EXPECT_EQ(chain[0].not_after() - chain[0].not_before(), 30 * 24h + 1min);
    auto lines = audit();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0]["event"], "issued");
    EXPECT_EQ(lines[0]["client"], "office");
    EXPECT_EQ(lines[0]["serial"], chain[0].serial_hex());
    EXPECT_EQ(lines[0]["address"], "192.0.2.7");
}

TEST_F(IssuingServiceTest, EveryMethodOfABlockMustPassAndOnlyItsDomains) {
    std::string body = csr_pem(key_, "mail2.example.org");
    std::string good = "hmac name=sha256, hash=" + hmac_hex("SHA256", kBlockKey, body);
    EXPECT_EQ(sign(body, "198.51.100.21", good).status, 200);
    // Right HMAC, wrong address; right address, no or wrong HMAC; a name outside the block.
    EXPECT_EQ(sign(body, "198.51.100.22", good).status, 403);
    EXPECT_EQ(sign(body, "198.51.100.21").status, 403);
    EXPECT_EQ(sign(body, "198.51.100.21",
                   "hmac name=sha256, hash=" + hmac_hex("SHA256", "another key", body))
                  .status,
              403);
    EXPECT_EQ(sign(body, "198.51.100.21", "hmac name=sha256").status, 403);
    std::string other = csr_pem(key_, "mail.example.com");
    EXPECT_EQ(sign(other, "198.51.100.21",
                   "hmac name=sha256, hash=" + hmac_hex("SHA256", kBlockKey, other))
                  .status,
              403);
    auto lines = audit();
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_EQ(lines[1]["event"], "refused");
    EXPECT_NE(lines[1]["reason"].get<std::string>().find("block mail-secure: address not allowed"),
              std::string::npos)
        << lines[1];
    EXPECT_NE(lines[3]["reason"].get<std::string>().find("HMAC does not match"), std::string::npos)
        << lines[3];
}

TEST_F(IssuingServiceTest, BadRequestsGetAcmemsStatusCodes) {
    EXPECT_EQ(sign("not a CSR", "192.0.2.7").status, 415);
    std::string pem = csr_pem(key_, "mail.example.org");
    std::string broken = pem;
    broken[broken.size() / 2] = broken[broken.size() / 2] == 'A' ? 'B' : 'A';
    EXPECT_EQ(sign(broken, "192.0.2.7").status, 415);
    auto get = call(ServerRequest{"GET", "/sign", {}, "", "192.0.2.7", {}, false});
    EXPECT_EQ(get.status, 405);
    auto unknown = call(ServerRequest{"POST", "/other", {}, pem, "192.0.2.7", {}, false});
    EXPECT_EQ(unknown.status, 404);
}

TEST_F(IssuingServiceTest, TheSameCsrGetsTheSameCertificateUntilItIsDueForRenewal) {
    std::string body = csr_pem(key_, "mail.example.org");
    auto first = Certificate::parse_chain(sign(body, "192.0.2.7").body, "first");
    auto again = Certificate::parse_chain(sign(body, "192.0.2.7").body, "again");
    EXPECT_EQ(again[0].serial_hex(), first[0].serial_hex());
    // The same key in a new CSR is a new request.
    auto fresh =
        Certificate::parse_chain(sign(csr_pem(key_, "mail.example.org"), "192.0.2.7").body, "new");
    EXPECT_NE(fresh[0].serial_hex(), first[0].serial_hex());
    // 30-day certificates, renew_within 10 days: after 20 days the cached one is not handed out.
    clock_.advance(20 * 24h + 2min);
    auto renewed = Certificate::parse_chain(sign(body, "192.0.2.7").body, "renewed");
    EXPECT_NE(renewed[0].serial_hex(), first[0].serial_hex());
    auto lines = audit();
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[1]["event"], "cached");
    EXPECT_EQ(lines[3]["event"], "issued");
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "state").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// The store checks each directory once; one removed meanwhile (an operator clearing the cache)
// is made again, and the cache works on.
TEST_F(IssuingServiceTest, TheCacheSurvivesItsDirectoryBeingRemoved) {
    sign(csr_pem(key_, "mail.example.org"), "192.0.2.7");
    ASSERT_TRUE(std::filesystem::is_directory(dir_ / "state" / "cache"));
    std::filesystem::remove_all(dir_ / "state" / "cache");
    std::string body = csr_pem(key_, "mail.example.org");
    auto first = Certificate::parse_chain(sign(body, "192.0.2.7").body, "first");
    auto again = Certificate::parse_chain(sign(body, "192.0.2.7").body, "again");
    EXPECT_EQ(again[0].serial_hex(), first[0].serial_hex());
    EXPECT_EQ(audit().back()["event"], "cached");
}

TEST_F(IssuingServiceTest, V1SignsForAClientWithItsRequestHmacOnce) {
    json body = {{"csr", csr_pem(key_, "x7k2p.devices.example.com")}, {"profile", "edge"}};
    std::string text = body.dump();
    ServerRequest req{"POST", "/v1/certificates", {{"content-type", "application/json"}},
                      text,   "203.0.113.5",      {},
                      true};
    req.headers.emplace_back(
        "authorization",
        sign_request_hmac("fleet", kClientKey, "POST", "/v1/certificates", text, clock_.now()));
    auto r = call(req, "api");
    ASSERT_EQ(r.status, 200) << r.body;
    auto answer = json::parse(r.body);
    auto chain = Certificate::parse_chain(answer["certificate"].get<std::string>(), "answer");
    EXPECT_EQ(answer["serial"], chain[0].serial_hex());
    EXPECT_EQ(answer["not_after"], to_iso8601(chain[0].not_after()));
    EXPECT_EQ(answer["renew_at"], to_iso8601(chain[0].not_after() -
                                             (chain[0].not_after() - chain[0].not_before()) / 3));
    // The very same request again (a recorded one) is refused.
    auto replayed = call(req, "api");
    EXPECT_EQ(replayed.status, 401);
    EXPECT_NE(replayed.body.find("sent before"), std::string::npos) << replayed.body;
}

TEST_F(IssuingServiceTest, V1RefusesWhatTheClientMayNotAsk) {
    auto csr = csr_pem(key_, "x7k2p.devices.example.com");
    EXPECT_EQ(v1({{"csr", csr}, {"profile", "edge"}}, "", "").status, 401);
    EXPECT_EQ(v1({{"csr", csr}, {"profile", "edge"}}, "fleet", "wrong-key-0123456789").status, 401);
    EXPECT_EQ(v1({{"csr", csr}, {"profile", "edge"}}, "nobody", kClientKey).status, 401);
    EXPECT_EQ(v1({{"csr", csr}, {"profile", "nothing"}}, "fleet", kClientKey).status, 404);
    EXPECT_EQ(v1({{"csr", csr}, {"profile", "edge"}, {"x", 1}}, "fleet", kClientKey).status, 400);
    EXPECT_EQ(
        v1({{"csr", csr_pem(key_, "mail.example.org")}, {"profile", "edge"}}, "fleet", kClientKey)
            .status,
        403);
    // Client certificates carry identities: no topic wildcards.
    EXPECT_EQ(
        v1({{"csr", csr_pem(key_, "dev-+")}, {"profile", "device"}}, "fleet", kClientKey).status,
        403);
    auto device =
        v1({{"csr", csr_pem(key_, "dev-17")}, {"profile", "device"}}, "fleet", kClientKey);
    ASSERT_EQ(device.status, 200) << device.body;
    auto leaf = Certificate::parse_chain(json::parse(device.body)["certificate"].get<std::string>(),
                                         "device");
    EXPECT_EQ(leaf[0].common_name(), "dev-17");
    EXPECT_EQ(leaf[0].extended_key_usage(), std::vector<std::string>{"clientAuth"});
}

TEST_F(IssuingServiceTest, V1RenewsWithTheCurrentClientCertificateForExactlyItsNames) {
    auto first = v1({{"csr", csr_pem(key_, "dev-17")}, {"profile", "device"}}, "fleet", kClientKey);
    ASSERT_EQ(first.status, 200);
    auto current = Certificate::parse_chain(
        json::parse(first.body)["certificate"].get<std::string>(), "current");
    auto renew = [&](const std::string& cn) {
        json body = {{"csr", csr_pem(PrivateKey::generate(KeyType::EcP256), cn)},
                     {"profile", "device"}};
        return call(ServerRequest{"POST",
                                  "/v1/certificates",
                                  {{"content-type", "application/json"}},
                                  body.dump(),
                                  "203.0.113.5",
                                  current,
                                  true},
                    "api");
    };
    auto renewed = renew("dev-17");
    ASSERT_EQ(renewed.status, 200) << renewed.body;
    EXPECT_NE(json::parse(renewed.body)["serial"], json::parse(first.body)["serial"]);
    EXPECT_EQ(renew("dev-18").status, 403);
}

TEST_F(IssuingServiceTest, DevicesRegisterWithATokenOnceAndGetCertificatesForTheirOwnNameOnly) {
    // Only an admin makes tokens; a token registers one device.
    EXPECT_EQ(api("POST", "/v1/enrollment-tokens", "{}", "fleet", kClientKey).status, 403);
    auto made =
        api("POST", "/v1/enrollment-tokens", R"({"count": 2, "valid_for": "1h"})", "ops", kOpsKey);
    ASSERT_EQ(made.status, 200) << made.body;
    auto tokens = json::parse(made.body)["tokens"];
    ASSERT_EQ(tokens.size(), 2u);
    auto with_token = [&](const std::string& token) {
        return call(ServerRequest{"POST",
                                  "/v1/devices",
                                  {{"authorization", "Bearer " + token}},
                                  "",
                                  "198.51.100.9",
                                  {},
                                  true},
                    "api");
    };
    // A malformed body is refused before the token is spent.
    auto malformed =
        call(ServerRequest{"POST",
                           "/v1/devices",
                           {{"authorization", "Bearer " + tokens[0].get<std::string>()},
                            {"content-type", "application/json"}},
                           R"({"addresses": ["not an address"]})",
                           "198.51.100.9",
                           {},
                           true},
             "api");
    EXPECT_EQ(malformed.status, 400) << malformed.body;
    auto registered = with_token(tokens[0]);
    ASSERT_EQ(registered.status, 201) << registered.body;
    EXPECT_EQ(with_token(tokens[0]).status, 401);  // spent
    auto device = json::parse(registered.body);
    std::string id = device["id"].get<std::string>();
    std::string name = device["name"].get<std::string>();
    std::string key = device["key"].get<std::string>();
    EXPECT_EQ(name, id + ".devices.example.com");
    EXPECT_EQ(device["key_id"], id);
    EXPECT_EQ(key.size(), 64u);
    // The stored device is private to the service, and its key is sealed under the secrets
    // key (made at the first start, 0600): the record alone does not give it away.
    struct stat st {};
    fs::path record = dir_ / "state" / "devices" / (id + ".json");
    ASSERT_EQ(::stat(record.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(read_file(record).find(key), std::string::npos);
    ASSERT_EQ(::stat((dir_ / "state" / "secrets.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // An expired token is refused.
    clock_.advance(2h);
    EXPECT_EQ(with_token(tokens[1]).status, 401);

    // Its own name, with the devices' profile (the default for a device): yes. Anything else: no.
    auto own =
        api("POST", "/v1/certificates", json({{"csr", csr_pem(key_, name)}}).dump(), id, key);
    ASSERT_EQ(own.status, 200) << own.body;
    EXPECT_EQ(
        Certificate::parse_chain(json::parse(own.body)["certificate"].get<std::string>(), "own")[0]
            .subject_alt_names(),
        (std::vector<SubjectAltName>{{SubjectAltName::Type::Dns, name}}));
    EXPECT_EQ(api("POST", "/v1/certificates",
                  json({{"csr", csr_pem(key_, "other.devices.example.com")}}).dump(), id, key)
                  .status,
              403);
    EXPECT_EQ(
        api("POST", "/v1/certificates",
            json({{"csr", csr_pem(key_, name, {name, "x.devices.example.com"})}}).dump(), id, key)
            .status,
        403);
    EXPECT_EQ(api("POST", "/v1/certificates",
                  json({{"csr", csr_pem(key_, "dev-1")}, {"profile", "device"}}).dump(), id, key)
                  .status,
              403);
    // No DNS configured: the address cannot be set, and says so.
    auto address =
        api("PUT", "/v1/devices/" + id + "/address", R"({"addresses": ["10.1.1.4"]})", id, key);
    EXPECT_EQ(address.status, 503) << address.body;
    // Another device's address: refused whatever the DNS.
    EXPECT_EQ(
        api("PUT", "/v1/devices/zzzzz/address", R"({"addresses": ["10.1.1.4"]})", id, key).status,
        403);
    EXPECT_EQ(
        api("PUT", "/v1/devices/" + id + "/address", R"({"addresses": ["10.1.1.4/8"]})", id, key)
            .status,
        400);

    // After a restart the same secrets key opens the device's key: it still signs in.
    service_.reset();
    EXPECT_EQ(api("POST", "/v1/certificates", json({{"csr", csr_pem(key_, name)}}).dump(), id, key)
                  .status,
              200);
    // Under another secrets key the record does not open: the device is refused, not let in.
    service_.reset();
    write_file_atomic(dir_ / "state" / "secrets.key", std::string(64, 'a') + "\n", kPrivateMode);
    auto refused =
        api("POST", "/v1/certificates", json({{"csr", csr_pem(key_, name)}}).dump(), id, key);
    EXPECT_EQ(refused.status, 500) << refused.body;
    EXPECT_NE(refused.body.find("cannot be read"), std::string::npos) << refused.body;
}

TEST_F(IssuingServiceTest, AdminsRegisterDevicesAndReadTheIssuanceLog) {
    EXPECT_EQ(api("POST", "/v1/devices", "", "fleet", kClientKey).status, 403);
    auto registered = api("POST", "/v1/devices", "", "ops", kOpsKey);
    ASSERT_EQ(registered.status, 201) << registered.body;
    EXPECT_EQ(sign(csr_pem(key_, "mail.example.org"), "192.0.2.7").status, 200);
    EXPECT_EQ(api("GET", "/v1/issuances", "", "fleet", kClientKey).status, 403);
    auto log = api("GET", "/v1/issuances", "", "ops", kOpsKey);
    ASSERT_EQ(log.status, 200) << log.body;
    auto records = json::parse(log.body)["records"];
    ASSERT_EQ(records.size(), 4u) << records;
    EXPECT_EQ(records[0]["event"], "refused");
    EXPECT_EQ(records[0]["client"], "fleet");
    EXPECT_EQ(records[1]["event"], "registered");
    EXPECT_EQ(records[1]["client"], "ops");
    EXPECT_EQ(records[2]["event"], "issued");
    EXPECT_EQ(records[2]["names"], json::array({"mail.example.org"}));
    EXPECT_EQ(records[3]["reason"], "only an admin client may do this");
}

TEST_F(IssuingServiceTest, NewOrdersBeyondTheCasLimitsQueueWith429AndTheQueueSurvivesARestart) {
    // An ACME CA that is not there (the order fails at once) that allows one new order per 3 h.
    config_["issuers"]["le"] = {
        {"type", "acme"},
        {"directory", "https://127.0.0.1:1/directory"},
        {"challenge", {{"type", "dns-01"}, {"provider", "exec"}, {"command", "/bin/true"}}},
        {"rate_limits", {{"orders_per_3h", 1}}}};
    config_["profiles"]["public"] = {{"issuer", "le"}, {"domains", {"*.example.net"}}};
    config_["auth"].push_back({{"name", "public"},
                               {"ip", {"192.0.2.0/24"}},
                               {"domains", {"*.example.net"}},
                               {"profile", "public"}});
    auto first = sign(csr_pem(key_, "a.example.net"), "192.0.2.7");
    EXPECT_EQ(first.status, 503) << first.body;  // admitted, and the CA could not be reached
    auto second = sign(csr_pem(key_, "b.example.net"), "192.0.2.7");
    ASSERT_EQ(second.status, 429) << second.body;
    EXPECT_NE(second.body.find("queued for the CA's rate limits at position 1"), std::string::npos)
        << second.body;
    auto retry = std::find_if(second.headers.begin(), second.headers.end(),
                              [](const auto& h) { return h.first == "Retry-After"; });
    ASSERT_NE(retry, second.headers.end());
    EXPECT_EQ(retry->second, "10800");  // the one order of the window leaves it in 3 h
    auto status = [&] {
        auto r = api("GET", "/v1/status", "", "ops", kOpsKey);
        EXPECT_EQ(r.status, 200) << r.body;
        return json::parse(r.body)["issuers"]["le"];
    };
    EXPECT_EQ(status()["queue_length"], 1);
    EXPECT_EQ(status()["orders_left"], 0);
    // A new service process on the same state: the queue and the window are still there.
    service_.reset();
    EXPECT_EQ(status()["queue_length"], 1);
    EXPECT_EQ(sign(csr_pem(key_, "c.example.net"), "192.0.2.7").status, 429);
}

TEST_F(IssuingServiceTest, RequestsBeyondTheRatePerAddressAndPerClientAre429) {
    config_["limits"] = {{"requests_per_minute_per_address", 2},
                         {"requests_per_minute_per_client", 1}};
    EXPECT_EQ(sign("not a CSR", "192.0.2.7").status, 415);
    EXPECT_EQ(sign("not a CSR", "192.0.2.7").status, 415);
    auto limited = sign("not a CSR", "192.0.2.7");
    EXPECT_EQ(limited.status, 429);
    EXPECT_NE(std::find(limited.headers.begin(), limited.headers.end(),
                        std::pair<std::string, std::string>{"Retry-After", "30"}),
              limited.headers.end());
    // One per minute for the client, whatever address it comes from.
    auto csr = csr_pem(key_, "x7k2p.devices.example.com");
    EXPECT_EQ(v1({{"csr", csr}, {"profile", "edge"}}, "fleet", kClientKey).status, 200);
    EXPECT_EQ(v1({{"csr", csr}, {"profile", "edge"}}, "fleet", kClientKey).status, 429);
    clock_.advance(60s);
    EXPECT_EQ(v1({{"csr", csr}, {"profile", "edge"}}, "fleet", kClientKey).status, 200);
}

}  // namespace
}  // namespace brokertls
