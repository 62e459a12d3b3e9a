#include <gtest/gtest.h>

#include "acme/client.hpp"
#include "acme_fake_ca.hpp"
#include "brokertls/crypto/signing.hpp"
#include "expect_error.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;
using test::answer;
using test::DecodedJws;
using test::json;
using test::kAccountUrl;
using test::kDirectoryUrl;
using test::kNonceUrl;
using test::kOrderUrl;

const std::string kKid = "https://ca.test/acct/1";

std::string body_of(const HttpRequest& request) {
    return test::decode_jws(request.body).payload;
}

class AcmeClientTest : public ::testing::Test {
  protected:
    void expect_directory(const json& dir = test::directory_json()) {
        http.expect("GET", kDirectoryUrl, answer(200, dir, ""));
    }
    void expect_head_nonce(const std::string& nonce) {
        http.expect("HEAD", kNonceUrl, answer(200, nullptr, nonce));
    }
    static json order_json(const std::string& status, const std::string& certificate = "") {
        json o{{"status", status},
               {"identifiers", {{{"type", "dns"}, {"value", "a.example"}}}},
               {"authorizations", {"https://ca.test/authz/1"}},
               {"finalize", "https://ca.test/order/1/finalize"}};
        if (!certificate.empty()) o["certificate"] = certificate;
        return o;
    }
    static json authz_json(const std::string& status, json challenges = json::array()) {
        return {{"status", status},
                {"identifier", {{"type", "dns"}, {"value", "a.example"}}},
                {"challenges", challenges}};
    }

    test::ScriptedTransport http;
    test::RecordingSleeper sleeps;
    // Pinned far from the wall clock: a Retry-After or deadline read against the system clock
    // gives other waits than these tests expect.
    FakeClock clock{from_iso8601("2030-01-01T00:00:00Z")};
    AcmeClient client{http, kDirectoryUrl, clock, sleeps.sleeper()};
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
};

// Most tests start with a registered account: directory, then a HEAD for the first nonce.
class AcmeAccountClientTest : public AcmeClientTest {
  protected:
    AcmeAccountClientTest() {
        client.use_account(key, kKid);
        expect_directory();
        expect_head_nonce("n0");
    }
};

TEST_F(AcmeClientTest, FetchesTheDirectoryOnce) {
    expect_directory(test::directory_json(true));
    const AcmeDirectory& dir = client.directory();
    EXPECT_EQ(dir.new_nonce, kNonceUrl);
    EXPECT_EQ(dir.new_account, kAccountUrl);
    EXPECT_EQ(dir.new_order, kOrderUrl);
    EXPECT_EQ(dir.revoke_cert, test::kRevokeUrl);
    EXPECT_EQ(dir.renewal_info, test::kRenewalUrl);
    EXPECT_EQ(dir.terms_of_service, "https://ca.test/tos");
    EXPECT_TRUE(dir.external_account_required);
    EXPECT_EQ(dir.profiles, (std::vector<std::string>{"classic", "shortlived"}));
    client.directory();
    EXPECT_EQ(http.requests.size(), 1u);
}

TEST_F(AcmeClientTest, DirectoryErrorsNameTheUrl) {
    HttpResponse html{404, {}, "<html>Not Found</html>"};
    http.expect("GET", kDirectoryUrl, html);
    auto message = test::error_of([&] { client.directory(); }, ErrorKind::State);
    EXPECT_EQ(message,
              "acme directory https://ca.test/dir: error: unexpected answer: <html>Not "
              "Found</html> (HTTP 404)");

    AcmeClient other(http, kDirectoryUrl, clock, sleeps.sleeper());
    http.expect("GET", kDirectoryUrl, answer(200, {{"newAccount", "x"}}, ""));
    EXPECT_EQ(test::error_of([&] { other.directory(); }, ErrorKind::Input),
              "acme directory https://ca.test/dir: no newNonce");
}

TEST_F(AcmeAccountClientTest, NonceFromHeadThenFromEachAnswer) {
    http.expect_post(kOrderUrl, [&](const DecodedJws& jws) {
        EXPECT_EQ(jws.header["nonce"], "n0");
        EXPECT_EQ(jws.header["kid"], kKid);
        EXPECT_EQ(jws.header["url"], kOrderUrl);
        return answer(201, order_json("pending"), "n1", {{"location", "https://ca.test/order/1"}});
    });
    http.expect_post("https://ca.test/order/1", [&](const DecodedJws& jws) {
        EXPECT_EQ(jws.header["nonce"], "n1");  // no HEAD in between
        EXPECT_EQ(jws.payload, "");            // POST-as-GET
        return answer(200, order_json("ready"), "n2");
    });
    AcmeOrder order = client.new_order({{{"dns", "a.example"}}, "", ""});
    EXPECT_EQ(order.url, "https://ca.test/order/1");
    EXPECT_EQ(order.status, "pending");
    EXPECT_EQ(order.authorizations, std::vector<std::string>{"https://ca.test/authz/1"});
    EXPECT_EQ(order.finalize, "https://ca.test/order/1/finalize");
    EXPECT_EQ(client.get_order(order.url).status, "ready");
    EXPECT_EQ(http.remaining(), 0u);
    for (const auto& request : http.requests) {
        if (request.method != "POST") continue;
        EXPECT_TRUE(test::verify_jws(test::decode_jws(request.body), key.get()));
        EXPECT_EQ(request.headers.front(),
                  (std::pair<std::string, std::string>{"content-type", "application/jose+json"}));
    }
}

TEST_F(AcmeAccountClientTest, BadNonceIsRetriedWithTheNonceOfTheErrorAnswer) {
    http.expect_post(kOrderUrl, [](const DecodedJws& jws) {
        EXPECT_EQ(jws.header["nonce"], "n0");
        return test::problem(400, "badNonce", "JWS has an invalid anti-replay nonce", "n1");
    });
    http.expect_post(kOrderUrl, [](const DecodedJws& jws) {
        EXPECT_EQ(jws.header["nonce"], "n1");
        return test::problem(400, "badNonce", "JWS has an invalid anti-replay nonce", "n2");
    });
    http.expect_post(kOrderUrl, [&](const DecodedJws& jws) {
        EXPECT_EQ(jws.header["nonce"], "n2");
        return answer(201, order_json("pending"), "n3", {{"location", "https://ca.test/order/1"}});
    });
    EXPECT_EQ(client.new_order({{{"dns", "a.example"}}, "", ""}).url, "https://ca.test/order/1");
    EXPECT_EQ(http.remaining(), 0u);
}

TEST_F(AcmeAccountClientTest, BadNonceGivesUpAfterTheRetryLimit) {
    for (int i = 0; i <= AcmeClient::bad_nonce_retries; ++i)
        http.expect_post(kOrderUrl, [i](const DecodedJws&) {
            return test::problem(400, "badNonce", "bad nonce", "n" + std::to_string(i + 1));
        });
    try {
        client.new_order({{{"dns", "a.example"}}, "", ""});
        FAIL() << "no error";
    } catch (const AcmeError& e) {
        EXPECT_EQ(e.problem().short_type(), "badNonce");
        EXPECT_EQ(std::string(e.what()),
                  "acme newOrder https://ca.test/order: badNonce: bad nonce (HTTP 400)");
    }
    EXPECT_EQ(http.requests.size(), 2u + 1u + AcmeClient::bad_nonce_retries);
    EXPECT_EQ(http.remaining(), 0u);
}

TEST_F(AcmeAccountClientTest, ErrorAnswerWithoutNonceFallsBackToHead) {
    http.expect_post(kOrderUrl, [](const DecodedJws&) {
        return test::problem(400, "badNonce", "bad nonce", "");
    });
    expect_head_nonce("h1");
    http.expect_post(kOrderUrl, [&](const DecodedJws& jws) {
        EXPECT_EQ(jws.header["nonce"], "h1");
        return answer(201, order_json("pending"), "", {{"location", "https://ca.test/order/1"}});
    });
    client.new_order({{{"dns", "a.example"}}, "", ""});
    EXPECT_EQ(http.remaining(), 0u);
}

TEST_F(AcmeClientTest, CreatesAnAccountWithJwkContactAndTerms) {
    expect_directory();
    expect_head_nonce("n0");
    http.expect_post(kAccountUrl, [&](const DecodedJws& jws) {
        EXPECT_FALSE(jws.header.contains("kid"));
        EXPECT_EQ(jws.header["jwk"], json::parse(jwk_json(key)));
        EXPECT_EQ(json::parse(jws.payload),
                  json({{"contact", {"mailto:ops@example.com"}}, {"termsOfServiceAgreed", true}}));
        return answer(201, {{"status", "valid"}}, "n1", {{"location", kKid}});
    });
    AccountRequest request;
    request.contact = {"mailto:ops@example.com"};
    EXPECT_EQ(client.account(key, request), kKid);
    EXPECT_EQ(client.account_url(), kKid);
    EXPECT_TRUE(test::verify_jws(test::decode_jws(http.requests.back().body), key.get()));

    // Later requests are signed with the kid.
    http.expect_post("https://ca.test/order/1", [&](const DecodedJws& jws) {
        EXPECT_EQ(jws.header["kid"], kKid);
        EXPECT_FALSE(jws.header.contains("jwk"));
        EXPECT_EQ(jws.header["nonce"], "n1");
        return answer(200, order_json("pending"), "n2");
    });
    client.get_order("https://ca.test/order/1");
}

TEST_F(AcmeClientTest, FindsAnExistingAccountOrSaysItDoesNotExist) {
    expect_directory();
    expect_head_nonce("n0");
    http.expect_post(kAccountUrl, [&](const DecodedJws& jws) {
        EXPECT_EQ(json::parse(jws.payload), json({{"onlyReturnExisting", true}}));
        return answer(200, {{"status", "valid"}}, "n1", {{"location", kKid}});
    });
    AccountRequest find;
    find.only_return_existing = true;
    EXPECT_EQ(client.account(key, find), kKid);

    http.expect_post(kAccountUrl, [](const DecodedJws&) {
        return test::problem(400, "accountDoesNotExist", "No account exists with the provided key",
                             "n2");
    });
    auto other = PrivateKey::generate(KeyType::EcP384);
    try {
        client.account(other, find);
        FAIL() << "no error";
    } catch (const AcmeError& e) {
        EXPECT_EQ(e.problem().short_type(), "accountDoesNotExist");
    }
    EXPECT_EQ(test::decode_jws(http.requests.back().body).header["alg"], "ES384");
}

TEST_F(AcmeClientTest, SendsTheExternalAccountBinding) {
    expect_directory(test::directory_json(true));
    expect_head_nonce("n0");
    http.expect_post(kAccountUrl, [&](const DecodedJws& jws) {
        json payload = json::parse(jws.payload);
        auto eab = test::decode_jws(payload["externalAccountBinding"].dump());
        EXPECT_EQ(eab.header["kid"], "kid-1");
        EXPECT_EQ(eab.header["url"], kAccountUrl);
        EXPECT_EQ(eab.payload, jwk_json(key));
        return answer(201, {{"status", "valid"}}, "n1", {{"location", kKid}});
    });
    AccountRequest request;
    request.eab = ExternalAccountBinding{"kid-1", base64url("secret-mac-key-32-bytes-long....")};
    EXPECT_EQ(client.account(key, request), kKid);
}

TEST_F(AcmeClientTest, RefusesToRegisterWithoutTheBindingTheCaRequires) {
    expect_directory(test::directory_json(true));
    auto message = test::error_of([&] { client.account(key, {}); }, ErrorKind::Usage);
    EXPECT_EQ(message,
              "acme newAccount https://ca.test/acct: the CA requires External Account Binding "
              "(eab_key_id and eab_hmac_key)");
    EXPECT_EQ(http.requests.size(), 1u);  // nothing signed and sent
}

TEST_F(AcmeClientTest, RequestsWithoutAnAccountFailClearly) {
    auto message =
        test::error_of([&] { client.get_order("https://ca.test/order/1"); }, ErrorKind::State);
    EXPECT_EQ(message, "acme order: no account: call account() or use_account() first");
}

TEST_F(AcmeAccountClientTest, NewOrderSendsReplacesAndProfileOnlyWhenSet) {
    std::vector<json> payloads;
    for (int i = 0; i < 2; ++i)
        http.expect_post(kOrderUrl, [&, i](const DecodedJws& jws) {
            payloads.push_back(json::parse(jws.payload));
            return answer(201, order_json("pending"), "n" + std::to_string(i + 1),
                          {{"location", "https://ca.test/order/1"}});
        });
    client.new_order({{{"dns", "a.example"}, {"dns", "*.a.example"}, {"ip", "192.0.2.7"}}, "", ""});
    client.new_order({{{"dns", "a.example"}}, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", "shortlived"});
    ASSERT_EQ(payloads.size(), 2u);
    EXPECT_EQ(payloads[0], json({{"identifiers",
                                  {{{"type", "dns"}, {"value", "a.example"}},
                                   {{"type", "dns"}, {"value", "*.a.example"}},
                                   {{"type", "ip"}, {"value", "192.0.2.7"}}}}}));
    EXPECT_EQ(payloads[1]["replaces"], "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    EXPECT_EQ(payloads[1]["profile"], "shortlived");
}

// The CA's Retry-After counts from the client's clock, not the system's.
TEST_F(AcmeAccountClientTest, ARefusalsRetryAfterIsResolvedAgainstTheClientsClock) {
    http.expect_post(kOrderUrl, [&](const DecodedJws&) {
        return test::problem(429, "rateLimited", "too many new orders", "n1",
                             {{"retry-after", "Tue, 01 Jan 2030 01:00:00 GMT"}});
    });
    http.expect_post(kOrderUrl, [&](const DecodedJws&) {
        return test::problem(503, "serverInternal", "busy", "n2", {{"retry-after", "120"}});
    });
    auto refusal = [&] {
        try {
            client.new_order({{{"dns", "a.example"}}, "", ""});
        } catch (const AcmeError& e) {
            return e.problem();
        }
        ADD_FAILURE() << "no error";
        return AcmeProblem{};
    };
    EXPECT_EQ(refusal().retry_after, clock.now() + 1h);
    EXPECT_EQ(refusal().retry_after, clock.now() + 120s);
}

TEST_F(AcmeAccountClientTest, NewOrderWithoutLocationIsAnError) {
    http.expect_post(kOrderUrl,
                     [&](const DecodedJws&) { return answer(201, order_json("pending"), "n1"); });
    EXPECT_EQ(test::error_of(
                  [&] {
                      client.new_order({{{"dns", "a.example"}}, "", ""});
                  },
                  ErrorKind::Input),
              "acme newOrder https://ca.test/order: no Location header (the order URL)");
}

TEST_F(AcmeAccountClientTest, AuthorizationChallengesAndRespond) {
    json challenges = {{{"type", "http-01"},
                        {"url", "https://ca.test/chall/1"},
                        {"token", "tok1"},
                        {"status", "pending"}},
                       {{"type", "dns-01"},
                        {"url", "https://ca.test/chall/2"},
                        {"token", "tok2"},
                        {"status", "pending"}}};
    json authz = authz_json("pending", challenges);
    authz["wildcard"] = true;
    http.expect_post("https://ca.test/authz/1",
                     [&](const DecodedJws&) { return answer(200, authz, "n1"); });
    http.expect_post("https://ca.test/chall/2", [&](const DecodedJws& jws) {
        EXPECT_EQ(jws.payload, "{}");
        json c = challenges[1];
        c["status"] = "processing";
        return answer(200, c, "n2");
    });
    AcmeAuthorization a = client.get_authorization("https://ca.test/authz/1");
    EXPECT_EQ(a.identifier, (AcmeIdentifier{"dns", "a.example"}));
    EXPECT_TRUE(a.wildcard);
    ASSERT_NE(a.find("dns-01"), nullptr);
    EXPECT_EQ(a.find("dns-01")->token, "tok2");
    EXPECT_EQ(a.find("tls-alpn-01"), nullptr);
    EXPECT_EQ(client.respond(*a.find("dns-01")).status, "processing");
    EXPECT_EQ(client.key_authorization("tok2"), "tok2." + jwk_thumbprint(key));
}

TEST_F(AcmeAccountClientTest, PollingHonoursRetryAfterThenBacksOffUpToTwoSeconds) {
    const std::string url = "https://ca.test/authz/1";
    http.expect_post(url, [&](const DecodedJws&) {
        return answer(200, authz_json("pending"), "n", {{"retry-after", "3"}});
    });
    for (int i = 0; i < 9; ++i)
        http.expect_post(
            url, [&](const DecodedJws&) { return answer(200, authz_json("pending"), "n"); });
    // An HTTP date 10 s ahead of the client's clock.
    http.expect_post(url, [&](const DecodedJws&) {
        char date[64];
        time_t when = SystemClock::to_time_t(clock.now() + 10s);
        std::tm tm{};
        gmtime_r(&when, &tm);
        std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        return answer(200, authz_json("pending"), "n", {{"retry-after", date}});
    });
    http.expect_post(url, [&](const DecodedJws&) { return answer(200, authz_json("valid"), "n"); });

    EXPECT_EQ(client.wait_authorization(url, clock.now() + 1h).status, "valid");
    ASSERT_EQ(sleeps.waits.size(), 11u);
    std::vector<std::chrono::milliseconds> expected{3000ms, 150ms,  225ms,  337ms,  505ms,
                                                    757ms,  1135ms, 1702ms, 2000ms, 2000ms};
    EXPECT_EQ(std::vector(sleeps.waits.begin(), sleeps.waits.begin() + 10), expected);
    EXPECT_EQ(sleeps.waits[10], 10000ms);
}

TEST_F(AcmeAccountClientTest, InvalidAuthorizationReportsTheChallengeProblem) {
    json challenges = {{{"type", "http-01"},
                        {"url", "https://ca.test/chall/1"},
                        {"token", "tok1"},
                        {"status", "invalid"},
                        {"error",
                         {{"type", "urn:ietf:params:acme:error:unauthorized"},
                          {"detail", "The key authorization file from the server did not match"},
                          {"status", 403}}}}};
    http.expect_post("https://ca.test/authz/1", [&](const DecodedJws&) {
        return answer(200, authz_json("invalid", challenges), "n");
    });
    try {
        client.wait_authorization("https://ca.test/authz/1", clock.now() + 1h);
        FAIL() << "no error";
    } catch (const AcmeError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "acme authorization https://ca.test/authz/1 (a.example) http-01: unauthorized: "
                  "The key authorization file from the server did not match");
        EXPECT_EQ(e.problem().short_type(), "unauthorized");
    }
}

TEST_F(AcmeAccountClientTest, PollingStopsWhenTheSleeperSaysSo) {
    sleeps.keep_going = false;
    http.expect_post("https://ca.test/authz/1",
                     [&](const DecodedJws&) { return answer(200, authz_json("pending"), "n"); });
    EXPECT_EQ(test::error_of(
                  [&] { client.wait_authorization("https://ca.test/authz/1", clock.now() + 1h); },
                  ErrorKind::State),
              "acme authorization https://ca.test/authz/1 (a.example): stopped");
}

TEST_F(AcmeAccountClientTest, PollingEndsAtTheDeadline) {
    http.expect_post("https://ca.test/authz/1",
                     [&](const DecodedJws&) { return answer(200, authz_json("pending"), "n"); });
    EXPECT_EQ(test::error_of(
                  [&] { client.wait_authorization("https://ca.test/authz/1", clock.now() - 1s); },
                  ErrorKind::State),
              "acme authorization https://ca.test/authz/1 (a.example): still pending at the "
              "deadline");
    EXPECT_TRUE(sleeps.waits.empty());
}

TEST_F(AcmeAccountClientTest, FinalizeSendsTheCsrAndPollsToValid) {
    AcmeOrder ready_order;
    ready_order.url = "https://ca.test/order/1";
    ready_order.status = "ready";
    ready_order.finalize = "https://ca.test/order/1/finalize";
    const std::string der = "\x30\x82\x01\x02 not really a CSR";
    http.expect_post(ready_order.finalize, [&](const DecodedJws& jws) {
        EXPECT_EQ(json::parse(jws.payload), json({{"csr", base64url(der)}}));
        return answer(200, order_json("processing"), "n", {{"retry-after", "1"}});
    });
    http.expect_post(ready_order.url,
                     [&](const DecodedJws&) { return answer(200, order_json("processing"), "n"); });
    http.expect_post(ready_order.url, [&](const DecodedJws&) {
        return answer(200, order_json("valid", "https://ca.test/cert/1"), "n");
    });
    AcmeOrder done = client.finalize(ready_order, der, clock.now() + 1h);
    EXPECT_EQ(done.certificate, "https://ca.test/cert/1");
    EXPECT_EQ(sleeps.waits, (std::vector<std::chrono::milliseconds>{1000ms, 150ms}));
}

TEST_F(AcmeAccountClientTest, InvalidOrderAfterFinalizeReportsItsProblem) {
    AcmeOrder ready_order;
    ready_order.url = "https://ca.test/order/1";
    ready_order.status = "ready";
    ready_order.finalize = "https://ca.test/order/1/finalize";
    http.expect_post(ready_order.finalize, [&](const DecodedJws&) {
        json o = order_json("invalid");
        o["error"] = {{"type", "urn:ietf:params:acme:error:badCSR"},
                      {"detail", "CSR contains a public key of a known weak type"}};
        return answer(200, o, "n");
    });
    EXPECT_EQ(test::error_of([&] { client.finalize(ready_order, "csr", clock.now() + 1h); },
                             ErrorKind::State),
              "acme order https://ca.test/order/1: badCSR: CSR contains a public key of a known "
              "weak type");
}

// A leaf with two chains: through "Int A" (issued by "Root A") and "Int B" ("Root B").
struct TwoChains {
    PrivateKey leaf_key = PrivateKey::generate(KeyType::EcP256);
    PrivateKey int_key = PrivateKey::generate(KeyType::EcP256);
    PrivateKey root_a_key = PrivateKey::generate(KeyType::EcP256);
    PrivateKey root_b_key = PrivateKey::generate(KeyType::EcP256);
    Certificate root_a = ca("Root A", root_a_key, root_a_key, nullptr);
    Certificate root_b = ca("Root B", root_b_key, root_b_key, nullptr);
    Certificate int_a = ca("Int A", int_key, root_a_key, &root_a);
    Certificate int_b = ca("Int B", int_key, root_b_key, &root_b);
    Certificate leaf = sign_certificate({CertificateProfile::Server,
                                         "a.example",
                                         "",
                                         {{SubjectAltName::Type::Dns, "a.example"}},
                                         SystemClock::now() - Days(1),
                                         SystemClock::now() + Days(30),
                                         ""},
                                        leaf_key.get(), int_key, &int_a);
    std::string chain_a = leaf.to_pem() + int_a.to_pem();
    std::string chain_b = leaf.to_pem() + int_b.to_pem();

    static Certificate ca(const std::string& cn, const PrivateKey& key, const PrivateKey& signer,
                          const Certificate* issuer) {
        return sign_certificate(
            {issuer ? CertificateProfile::IntermediateCa : CertificateProfile::RootCa,
             cn,
             "",
             {},
             SystemClock::now() - Days(1),
             SystemClock::now() + Days(90),
             ""},
            key.get(), signer, issuer);
    }
};

TEST_F(AcmeAccountClientTest, DownloadsTheDefaultAndAlternateChains) {
    TwoChains pki;
    const std::string url = "https://ca.test/cert/1";
    http.expect("POST", url, [&](const HttpRequest& request) {
        EXPECT_NE(std::find(request.headers.begin(), request.headers.end(),
                            std::pair<std::string, std::string>{
                                "accept", "application/pem-certificate-chain"}),
                  request.headers.end());
        EXPECT_EQ(body_of(request), "");
        HttpResponse r = answer(200, nullptr, "n1",
                                {{"content-type", "application/pem-certificate-chain"},
                                 {"link", "<https://ca.test/dir>;rel=\"index\""},
                                 {"link", "<https://ca.test/cert/1/1>;rel=\"alternate\""}});
        r.body = pki.chain_a;
        return r;
    });
    http.expect("POST", "https://ca.test/cert/1/1", [&](const HttpRequest&) {
        HttpResponse r = answer(200, nullptr, "n2");
        r.body = pki.chain_b;
        return r;
    });
    auto chains = client.download_chains(url);
    EXPECT_EQ(chains, (std::vector<std::string>{pki.chain_a, pki.chain_b}));

    EXPECT_EQ(AcmeClient::pick_chain(chains, ""), pki.chain_a);
    EXPECT_EQ(AcmeClient::pick_chain(chains, "Root B"), pki.chain_b);  // issuer of the top
    EXPECT_EQ(AcmeClient::pick_chain(chains, "Int B"), pki.chain_b);   // the top itself
    EXPECT_EQ(AcmeClient::pick_chain(chains, "Root A"), pki.chain_a);
    EXPECT_EQ(AcmeClient::pick_chain(chains, "Nobody"), pki.chain_a);  // default
}

TEST_F(AcmeAccountClientTest, ADownloadThatIsNotACertificateIsAnError) {
    http.expect("POST", "https://ca.test/cert/1", [&](const HttpRequest&) {
        HttpResponse r = answer(200, nullptr, "n1");
        r.body = "hello";
        return r;
    });
    EXPECT_EQ(
        test::error_of([&] { client.download_chains("https://ca.test/cert/1"); }, ErrorKind::Input),
        "acme certificate https://ca.test/cert/1: not a PEM or DER certificate");
}

TEST_F(AcmeAccountClientTest, RevokesWithTheAccountKey) {
    TwoChains pki;
    http.expect_post(test::kRevokeUrl, [&](const DecodedJws& jws) {
        EXPECT_EQ(jws.header["kid"], kKid);
        EXPECT_EQ(json::parse(jws.payload),
                  json({{"certificate", base64url(pki.leaf.to_der())}, {"reason", 4}}));
        return answer(200, nullptr, "n1");
    });
    client.revoke(pki.leaf, 4);
    EXPECT_EQ(http.remaining(), 0u);
}

// The RFC 9773 §4.1 example: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4
// and serial 0x87654321 (DER content 00:87:65:43:21).
Certificate rfc9773_example_certificate() {
    auto key = PrivateKey::generate(KeyType::EcP256);
    Certificate base = sign_certificate({CertificateProfile::Server,
                                         "a.example",
                                         "",
                                         {},
                                         SystemClock::now() - Days(1),
                                         SystemClock::now() + Days(30),
                                         "87654321"},
                                        key.get(), key, nullptr);
    X509Ptr cert(X509_dup(base.get()));
    const unsigned char id[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                                0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
    AUTHORITY_KEYID* akid = AUTHORITY_KEYID_new();
    akid->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(akid->keyid, id, sizeof id);
    X509_add1_ext_i2d(cert.get(), NID_authority_key_identifier, akid, 0, X509V3_ADD_REPLACE);
    AUTHORITY_KEYID_free(akid);
    X509_sign(cert.get(), key.get(), EVP_sha256());
    return Certificate(std::move(cert));
}

// RFC 8555 §6.1: every URL the CA hands out must be https; nothing is sent to one that is not.
const std::string kNotHttps =
    "not an https URL (ACME needs https; http only to 127.0.0.1, localhost or [::1] when the "
    "directory is there too)";

TEST_F(AcmeClientTest, PlainHttpDirectoryEntriesAreRefusedBeforeAnyRequest) {
    json dir = test::directory_json();
    dir["newNonce"] = "http://ca.test/nonce";
    expect_directory(dir);
    client.use_account(key, kKid);
    EXPECT_EQ(test::error_of(
                  [&] {
                      client.new_order({{{"dns", "a.example"}}, "", ""});
                  },
                  ErrorKind::Input),
              "acme newNonce http://ca.test/nonce: " + kNotHttps);
    EXPECT_EQ(http.requests.size(), 1u);  // the directory only
}

TEST_F(AcmeAccountClientTest, PlainHttpUrlsFromTheCaAreRefusedBeforeAnyRequest) {
    // An order whose authorization, finalize and certificate URLs are http: the order itself
    // parses, but none of them is requested.
    http.expect_post(kOrderUrl, [&](const DecodedJws&) {
        json o = order_json("pending");
        o["authorizations"] = {"http://ca.test/authz/1"};
        return answer(201, o, "n1", {{"location", "https://ca.test/order/1"}});
    });
    AcmeOrder order = client.new_order({{{"dns", "a.example"}}, "", ""});
    EXPECT_EQ(test::error_of([&] { client.get_authorization(order.authorizations[0]); },
                             ErrorKind::Input),
              "acme authorization http://ca.test/authz/1: " + kNotHttps);
    AcmeChallenge challenge{"dns-01", "http://ca.test/chall/1", "tok", "pending", {}};
    EXPECT_EQ(test::error_of([&] { client.respond(challenge); }, ErrorKind::Input),
              "acme challenge http://ca.test/chall/1: " + kNotHttps);
    order.status = "ready";
    order.finalize = "http://ca.test/order/1/finalize";
    EXPECT_EQ(
        test::error_of([&] { client.finalize(order, "csr", clock.now() + 60s); }, ErrorKind::Input),
        "acme finalize http://ca.test/order/1/finalize: " + kNotHttps);
    EXPECT_EQ(
        test::error_of([&] { client.download_chains("http://ca.test/cert/1"); }, ErrorKind::Input),
        "acme certificate http://ca.test/cert/1: " + kNotHttps);
    EXPECT_EQ(http.remaining(), 0u);
    EXPECT_EQ(http.requests.size(), 3u);  // directory, nonce, newOrder
}

TEST_F(AcmeAccountClientTest, PlainHttpAlternateChainIsRefused) {
    TwoChains pki;
    http.expect("POST", "https://ca.test/cert/1", [&](const HttpRequest&) {
        HttpResponse r =
            answer(200, nullptr, "n1", {{"link", "<http://ca.test/cert/1/1>;rel=\"alternate\""}});
        r.body = pki.chain_a;
        return r;
    });
    EXPECT_EQ(
        test::error_of([&] { client.download_chains("https://ca.test/cert/1"); }, ErrorKind::Input),
        "acme certificate http://ca.test/cert/1/1: " + kNotHttps);
    EXPECT_EQ(http.requests.size(), 3u);  // directory, nonce, the default chain
}

TEST_F(AcmeClientTest, PlainHttpAccountLocationIsRefused) {
    expect_directory();
    expect_head_nonce("n0");
    http.expect_post(kAccountUrl, [&](const DecodedJws&) {
        return answer(201, {{"status", "valid"}}, "n1", {{"location", "http://ca.test/acct/1"}});
    });
    EXPECT_EQ(test::error_of([&] { client.account(key, {}); }, ErrorKind::Input),
              "acme newAccount Location http://ca.test/acct/1: " + kNotHttps);
}

TEST_F(AcmeAccountClientTest, HttpsUrlsOnAnotherOriginAreFollowed) {
    // RFC 8555 does not tie a CA's resources to the directory's origin.
    http.expect_post("https://authz.ca-cdn.test/authz/1",
                     [&](const DecodedJws&) { return answer(200, authz_json("valid"), "n1"); });
    EXPECT_EQ(client.get_authorization("https://authz.ca-cdn.test/authz/1").status, "valid");
}

TEST(AcmeLoopbackCa, PlainHttpOnlyToThisHostAndOnlyWhenTheDirectoryIsThere) {
    // A test CA without TLS on this host, which the configuration allows.
    const std::string base = "http://127.0.0.1:14000";
    test::ScriptedTransport http;
    test::RecordingSleeper sleeps;
    FakeClock clock{from_iso8601("2030-01-01T00:00:00Z")};
    AcmeClient client{http, base + "/dir", clock, sleeps.sleeper()};
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    client.use_account(key, base + "/acct/1");
    json dir = test::directory_json();
    dir["newNonce"] = base + "/nonce";
    http.expect("GET", base + "/dir", answer(200, dir, ""));
    http.expect("HEAD", base + "/nonce", answer(200, nullptr, "n0"));
    http.expect("POST", base + "/authz/1",
                answer(200,
                       {{"status", "valid"},
                        {"identifier", {{"type", "dns"}, {"value", "a"}}},
                        {"challenges", json::array()}},
                       "n1"));
    EXPECT_EQ(client.get_authorization(base + "/authz/1").status, "valid");
    EXPECT_EQ(test::error_of([&] { client.get_authorization("http://ca.test/authz/2"); },
                             ErrorKind::Input),
              "acme authorization http://ca.test/authz/2: " + kNotHttps);
    EXPECT_EQ(test::error_of([&] { client.get_authorization("http://127.0.0.1@ca.test/authz/3"); },
                             ErrorKind::Input),
              "acme authorization http://127.0.0.1@ca.test/authz/3: " + kNotHttps);
    EXPECT_EQ(http.remaining(), 0u);

    // An https directory never allows plain http, not even to this host.
    test::ScriptedTransport https_ca;
    AcmeClient secure{https_ca, kDirectoryUrl, clock, sleeps.sleeper()};
    secure.use_account(key, kKid);
    EXPECT_EQ(
        test::error_of([&] { secure.get_authorization(base + "/authz/1"); }, ErrorKind::Input),
        "acme authorization " + base + "/authz/1: " + kNotHttps);
    EXPECT_TRUE(https_ca.requests.empty());
}

TEST(AcmeAri, CertificateIdMatchesTheRfcExample) {
    EXPECT_EQ(AcmeClient::ari_cert_id(rfc9773_example_certificate()),
              "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

TEST(AcmeAri, CertificateWithoutAkiIsAnError) {
    auto key = PrivateKey::generate(KeyType::EcP256);
    Certificate self = sign_certificate({CertificateProfile::RootCa,
                                         "x",
                                         "",
                                         {},
                                         SystemClock::now(),
                                         SystemClock::now() + Days(1),
                                         ""},
                                        key.get(), key, nullptr);
    EXPECT_EQ(test::error_of([&] { AcmeClient::ari_cert_id(self); }, ErrorKind::Input),
              "certificate CN=x: no authority key identifier (ARI needs one)");
}

TEST_F(AcmeClientTest, RenewalInfoParsesTheWindowAndRetryAfter) {
    expect_directory();
    Certificate cert = rfc9773_example_certificate();
    http.expect(
        "GET", test::kRenewalUrl + "/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
        answer(200,
               {{"suggestedWindow",
                 {{"start", "2025-01-02T04:00:00Z"}, {"end", "2025-01-03T05:30:00.5+01:00"}}},
                {"explanationURL", "https://ca.test/docs/ari"}},
               "", {{"retry-after", "21600"}}));
    auto info = client.renewal_info(cert);
    ASSERT_TRUE(info);
    EXPECT_EQ(to_iso8601(info->window_start), "2025-01-02T04:00:00Z");
    EXPECT_EQ(info->window_end, from_iso8601("2025-01-03T04:30:00Z") + 500ms);
    EXPECT_EQ(info->explanation_url, "https://ca.test/docs/ari");
    ASSERT_TRUE(info->retry_after);
    EXPECT_EQ(*info->retry_after, clock.now() + 6h);
}

TEST_F(AcmeClientTest, RenewalInfoIsAbsentWithoutTheDirectoryEntry) {
    json dir = test::directory_json();
    dir.erase("renewalInfo");
    expect_directory(dir);
    EXPECT_FALSE(client.renewal_info(rfc9773_example_certificate()));
    EXPECT_EQ(http.requests.size(), 1u);
}

TEST_F(AcmeClientTest, MalformedRenewalInfoIsAnError) {
    expect_directory();
    http.expect("GET", test::kRenewalUrl + "/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
                answer(200, {{"suggestedWindow", {{"start", "tomorrow"}, {"end", "x"}}}}, ""));
    auto message = test::error_of([&] { client.renewal_info(rfc9773_example_certificate()); },
                                  ErrorKind::Input);
    EXPECT_NE(message.find("not an RFC 3339 time: tomorrow"), std::string::npos) << message;
}

TEST(AcmeIdentifiers, FromSubjectAltNames) {
    EXPECT_EQ(to_acme_identifier(classify_name("a.example")), (AcmeIdentifier{"dns", "a.example"}));
    EXPECT_EQ(to_acme_identifier(classify_name("*.a.example")),
              (AcmeIdentifier{"dns", "*.a.example"}));
    EXPECT_EQ(to_acme_identifier(classify_name("192.0.2.7")), (AcmeIdentifier{"ip", "192.0.2.7"}));
    EXPECT_EQ(to_acme_identifier({SubjectAltName::Type::Ip, "2001:DB8:0:0::1"}),
              (AcmeIdentifier{"ip", "2001:db8::1"}));
    EXPECT_EQ(test::error_of([] { to_acme_identifier(classify_name("ops@example.com")); },
                             ErrorKind::Usage),
              "email:ops@example.com: ACME certificates can only name DNS names and IP addresses");
}

}  // namespace
}  // namespace brokertls
