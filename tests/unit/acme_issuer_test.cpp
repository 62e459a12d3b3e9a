#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "acme_fake_ca.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "issuers/acme_issuer.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::answer;
using test::DecodedJws;
using test::json;
using test::kAccountUrl;
using test::kDirectoryUrl;
using test::kNonceUrl;
using test::kOrderUrl;

const std::string kKid = "https://ca.test/acct/1";

// Records what the order flow asks of it.
class FakeSolver : public ChallengeSolver {
  public:
    FakeSolver(std::string type, FakeClock& clock) : type_(std::move(type)), clock_(clock) {}
    std::string type() const override { return type_; }
    void present(const std::vector<ChallengeTask>& tasks) override {
        presented = tasks;
        clock_.advance(present_takes);  // an operator, DNS propagation
        if (fail_present) throw Error(ErrorKind::Io, "responder: cannot listen");
    }
    void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override {
        cleaned = tasks;
        ++cleanups;
    }
    std::vector<ChallengeTask> presented, cleaned;
    int cleanups = 0;
    bool fail_present = false;
    std::chrono::milliseconds present_takes{0};  // on the clock

  private:
    std::string type_;
    FakeClock& clock_;
};

json challenge(const std::string& type, int n, const std::string& status = "pending") {
    return {{"type", type},
            {"url", "https://ca.test/chall/" + std::to_string(n)},
            {"token", "tok" + std::to_string(n)},
            {"status", status}};
}

json authz(const std::string& name, const std::string& status, json challenges,
           bool wildcard = false) {
    json a{{"status", status},
           {"identifier", {{"type", "dns"}, {"value", name}}},
           {"challenges", challenges}};
    if (wildcard) a["wildcard"] = true;
    return a;
}

json order(const std::string& status, int authorizations, const std::string& cert = "") {
    json o{{"status", status},
           {"identifiers", json::array()},
           {"authorizations", json::array()},
           {"finalize", "https://ca.test/order/1/finalize"}};
    for (int i = 1; i <= authorizations; ++i)
        o["authorizations"].push_back("https://ca.test/authz/" + std::to_string(i));
    if (!cert.empty()) o["certificate"] = cert;
    return o;
}

class AcmeObtainTest : public ::testing::Test {
  protected:
    AcmeObtainTest() {
        client.use_account(account_key, kKid);
        http.expect("GET", kDirectoryUrl, answer(200, test::directory_json(), ""));
        http.expect("HEAD", kNonceUrl, answer(200, nullptr, "n0"));
    }

    // The CA's side of finalize and download: checks the CSR, answers with a chain for it.
    void expect_finalize_and_download(const std::vector<SubjectAltName>& names,
                                      const std::string& common_name) {
        http.expect_post("https://ca.test/order/1",
                         [](const DecodedJws&) { return answer(200, order("ready", 1), "n"); });
        http.expect_post("https://ca.test/order/1/finalize", [=, this](const DecodedJws& jws) {
            auto csr = CertificateRequest::parse(
                base64url_decode(json::parse(jws.payload)["csr"].get<std::string>(), "csr"), "csr");
            EXPECT_TRUE(csr.signature_valid());
            EXPECT_EQ(csr.common_name(), common_name);
            EXPECT_EQ(csr.subject_alt_names(), names);
            leaf_pem = sign_certificate({CertificateProfile::Server, common_name, "", names,
                                         SystemClock::now(), SystemClock::now() + Days(90), ""},
                                        csr.public_key(), ca_key, &ca)
                           .to_pem();
            return answer(200, order("valid", 1, "https://ca.test/cert/1"), "n");
        });
        http.expect("POST", "https://ca.test/cert/1", [this](const HttpRequest&) {
            HttpResponse r = answer(200, nullptr, "n");
            r.body = leaf_pem + ca.to_pem();
            return r;
        });
    }

    std::vector<Certificate> obtain(ObtainRequest request) {
        return obtain_certificate(client, solver, key, request,
                                  [this](const std::string& line) { log.push_back(line); });
    }
    bool logged(const std::string& text) const {
        for (const auto& line : log)
            if (line.find(text) != std::string::npos) return true;
        return false;
    }

    test::ScriptedTransport http;
    test::RecordingSleeper sleeps;
    FakeClock clock{from_iso8601("2030-01-01T00:00:00Z")};
    AcmeClient client{http, kDirectoryUrl, clock, sleeps.sleeper()};
    PrivateKey account_key = PrivateKey::generate(KeyType::EcP256);
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    PrivateKey ca_key = PrivateKey::generate(KeyType::EcP256);
    Certificate ca = test::fake_ca_certificate(ca_key);
    std::string leaf_pem;
    FakeSolver solver{"dns-01", clock};
    std::vector<std::string> log;
};

TEST_F(AcmeObtainTest, AnswersEveryPendingAuthorizationAndReturnsTheChain) {
    http.expect_post(kOrderUrl, [](const DecodedJws& jws) {
        EXPECT_EQ(json::parse(jws.payload),
                  json({{"identifiers",
                         {{{"type", "dns"}, {"value", "a.example"}},
                          {{"type", "dns"}, {"value", "*.b.example"}}}}}));
        return answer(201, order("pending", 2), "n", {{"location", "https://ca.test/order/1"}});
    });
    http.expect_post("https://ca.test/authz/1", [](const DecodedJws&) {
        return answer(
            200, authz("a.example", "pending", {challenge("http-01", 1), challenge("dns-01", 2)}),
            "n");
    });
    http.expect_post("https://ca.test/authz/2", [](const DecodedJws&) {
        return answer(200, authz("b.example", "pending", {challenge("dns-01", 3)}, true), "n");
    });
    for (int n : {2, 3})
        http.expect_post("https://ca.test/chall/" + std::to_string(n), [n](const DecodedJws& jws) {
            EXPECT_EQ(jws.payload, "{}");
            return answer(200, challenge("dns-01", n, "processing"), "n");
        });
    http.expect_post("https://ca.test/authz/1", [](const DecodedJws&) {
        return answer(200, authz("a.example", "valid", json::array()), "n");
    });
    http.expect_post("https://ca.test/authz/2", [](const DecodedJws&) {
        return answer(200, authz("b.example", "valid", json::array(), true), "n");
    });
    std::vector<SubjectAltName> names{classify_name("a.example"), classify_name("*.b.example")};
    expect_finalize_and_download(names, "a.example");

    auto chain = obtain({"web", names, "", "", "", clock.now() + 1h});
    ASSERT_EQ(chain.size(), 2u);
    EXPECT_TRUE(chain.front().matches_key(key));
    EXPECT_EQ(chain.back().common_name(), "Fake ACME CA");
    EXPECT_EQ(http.remaining(), 0u);

    ASSERT_EQ(solver.presented.size(), 2u);
    EXPECT_EQ(solver.presented[0].identifier, (AcmeIdentifier{"dns", "a.example"}));
    EXPECT_FALSE(solver.presented[0].wildcard);
    EXPECT_EQ(solver.presented[0].token, "tok2");
    EXPECT_EQ(solver.presented[0].key_authorization, client.key_authorization("tok2"));
    EXPECT_EQ(solver.presented[0].profile, "web");
    EXPECT_EQ(solver.presented[1].identifier, (AcmeIdentifier{"dns", "b.example"}));
    EXPECT_TRUE(solver.presented[1].wildcard);
    EXPECT_EQ(solver.cleanups, 1);
    EXPECT_EQ(solver.cleaned.size(), 2u);
    EXPECT_TRUE(logged("profile web: order https://ca.test/order/1 for a.example, *.b.example"));
    EXPECT_TRUE(logged("profile web: certificate serial "));
}

// A manual order resumed hours later must not fail on a deadline that ran out while the
// operator worked: the time in present() is added to it.
TEST_F(AcmeObtainTest, TimeSpentPresentingDoesNotCountAgainstTheDeadline) {
    http.expect_post(kOrderUrl, [](const DecodedJws&) {
        return answer(201, order("pending", 1), "n", {{"location", "https://ca.test/order/1"}});
    });
    http.expect_post("https://ca.test/authz/1", [](const DecodedJws&) {
        return answer(200, authz("a.example", "pending", {challenge("dns-01", 1)}), "n");
    });
    http.expect_post("https://ca.test/chall/1", [](const DecodedJws&) {
        return answer(200, challenge("dns-01", 1, "processing"), "n");
    });
    http.expect_post("https://ca.test/authz/1", [](const DecodedJws&) {
        return answer(200, authz("a.example", "pending", json::array()), "n");
    });
    http.expect_post("https://ca.test/authz/1", [](const DecodedJws&) {
        return answer(200, authz("a.example", "valid", json::array()), "n");
    });
    std::vector<SubjectAltName> names{classify_name("a.example")};
    expect_finalize_and_download(names, "a.example");
    solver.present_takes = 3h;
    auto chain = obtain({"web", names, "", "", "", clock.now() + 100ms});
    EXPECT_EQ(chain.size(), 2u);
    EXPECT_EQ(http.remaining(), 0u);
}

TEST_F(AcmeObtainTest, RetriesOnceWithoutReplacesWhenTheCaRefusesIt) {
    http.expect_post(kOrderUrl, [](const DecodedJws& jws) {
        EXPECT_EQ(json::parse(jws.payload)["replaces"], "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
        return test::problem(409, "alreadyReplaced", "certificate already replaced", "n");
    });
    http.expect_post(kOrderUrl, [](const DecodedJws& jws) {
        EXPECT_FALSE(json::parse(jws.payload).contains("replaces"));
        return answer(201, order("pending", 1), "n", {{"location", "https://ca.test/order/1"}});
    });
    // An authorization the account already holds: nothing to present.
    http.expect_post("https://ca.test/authz/1", [](const DecodedJws&) {
        return answer(200, authz("a.example", "valid", json::array()), "n");
    });
    std::vector<SubjectAltName> names{classify_name("a.example")};
    expect_finalize_and_download(names, "a.example");

    auto chain =
        obtain({"web", names, "", "", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", clock.now() + 1h});
    EXPECT_TRUE(chain.front().matches_key(key));
    EXPECT_TRUE(logged("profile web: the CA refused replaces=aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"));
    EXPECT_TRUE(logged("alreadyReplaced: certificate already replaced (HTTP 409)"));
    EXPECT_TRUE(logged("ordering without it"));
    EXPECT_TRUE(solver.presented.empty());
    EXPECT_EQ(solver.cleanups, 0);
}

TEST_F(AcmeObtainTest, WithoutReplacesAnOrderErrorIsNotRetried) {
    http.expect_post(kOrderUrl, [](const DecodedJws&) {
        return test::problem(400, "rejectedIdentifier", "no", "n");
    });
    auto message = test::error_of(
        [&] {
            obtain({"web", {classify_name("a.example")}, "", "", "", clock.now() + 1h});
        },
        ErrorKind::State);
    EXPECT_EQ(message, "acme newOrder https://ca.test/order: rejectedIdentifier: no (HTTP 400)");
    EXPECT_EQ(http.remaining(), 0u);
}

TEST_F(AcmeObtainTest, AProfileTheDirectoryDoesNotOfferIsRefusedBeforeOrdering) {
    auto message = test::error_of(
        [&] {
            obtain({"web", {classify_name("a.example")}, "", "tiny", "", clock.now() + 1h});
        },
        ErrorKind::Input);
    EXPECT_EQ(message,
              "certificate profile web: acme.profile: the CA does not offer profile 'tiny' "
              "(offered: classic, shortlived)");
    EXPECT_EQ(http.remaining(), 1u);  // the directory was read; no nonce, no order
}

// The authorizations must name exactly what was ordered: a challenge for a name we did not
// order is never presented nor answered (the script has no challenge or finalize step, so any
// such request would fail the test as unexpected).
class AcmeAuthorizationMismatchTest : public AcmeObtainTest {
  protected:
    // Orders a.example and *.b.example; the CA answers with `authzs` as its authorizations.
    std::string obtain_with(const std::vector<json>& authzs) {
        size_t count = authzs.size();
        http.expect_post(kOrderUrl, [count](const DecodedJws&) {
            return answer(201, order("pending", static_cast<int>(count)), "n",
                          {{"location", "https://ca.test/order/1"}});
        });
        for (size_t i = 0; i < authzs.size(); ++i)
            http.expect_post("https://ca.test/authz/" + std::to_string(i + 1),
                             [a = authzs[i]](const DecodedJws&) { return answer(200, a, "n"); });
        std::string message = test::error_of(
            [&] {
                obtain({"web",
                        {classify_name("a.example"), classify_name("*.b.example")},
                        "",
                        "",
                        "",
                        clock.now() + 1h});
            },
            ErrorKind::Input);
        EXPECT_EQ(http.remaining(), 0u);
        EXPECT_TRUE(solver.presented.empty());
        EXPECT_EQ(solver.cleanups, 0);
        return message;
    }
};

TEST_F(AcmeAuthorizationMismatchTest, AnAuthorizationForANameNotOrderedIsRefused) {
    EXPECT_EQ(obtain_with({authz("a.example", "pending", {challenge("dns-01", 1)}),
                           authz("evil.example", "pending", {challenge("dns-01", 2)})}),
              "certificate profile web: authorization https://ca.test/authz/2: names "
              "dns:evil.example, which was not ordered (ordered: a.example, *.b.example); no "
              "challenge answered");
}

TEST_F(AcmeAuthorizationMismatchTest, AWildcardFlagMustMatchTheOrder) {
    // b.example without "wildcard": true is not *.b.example.
    EXPECT_EQ(obtain_with({authz("a.example", "pending", {challenge("dns-01", 1)}),
                           authz("b.example", "pending", {challenge("dns-01", 2)})}),
              "certificate profile web: authorization https://ca.test/authz/2: names "
              "dns:b.example, which was not ordered (ordered: a.example, *.b.example); no "
              "challenge answered");
}

TEST_F(AcmeAuthorizationMismatchTest, AMissingAuthorizationIsRefused) {
    EXPECT_EQ(obtain_with({authz("a.example", "pending", {challenge("dns-01", 1)})}),
              "certificate profile web: order https://ca.test/order/1: the CA gave no "
              "authorization for dns:*.b.example (ordered: a.example, *.b.example)");
}

TEST_F(AcmeAuthorizationMismatchTest, ANameAuthorizedTwiceIsRefused) {
    EXPECT_EQ(obtain_with({authz("a.example", "valid", json::array()),
                           authz("A.example", "pending", {challenge("dns-01", 2)})}),
              "certificate profile web: authorization https://ca.test/authz/2: names "
              "dns:a.example a second time; no challenge answered");
}

TEST_F(AcmeAuthorizationMismatchTest, AWildcardInTheAuthorizationValueIsRefused) {
    EXPECT_EQ(obtain_with({authz("*.b.example", "pending", {challenge("dns-01", 1)})}),
              "certificate profile web: authorization https://ca.test/authz/1: names "
              "*.b.example (an authorization names a wildcard's base domain)");
}

TEST_F(AcmeObtainTest, CleansUpWhenValidationFails) {
    http.expect_post(kOrderUrl, [](const DecodedJws&) {
        return answer(201, order("pending", 1), "n", {{"location", "https://ca.test/order/1"}});
    });
    http.expect_post("https://ca.test/authz/1", [](const DecodedJws&) {
        return answer(200, authz("a.example", "pending", {challenge("dns-01", 1)}), "n");
    });
    http.expect_post("https://ca.test/chall/1", [](const DecodedJws&) {
        return answer(200, challenge("dns-01", 1, "processing"), "n");
    });
    http.expect_post("https://ca.test/authz/1", [](const DecodedJws&) {
        json c = challenge("dns-01", 1, "invalid");
        c["error"] = {{"type", "urn:ietf:params:acme:error:unauthorized"},
                      {"detail", "Incorrect TXT record \"x\" found at _acme-challenge.a.example"}};
        return answer(200, authz("a.example", "invalid", {c}), "n");
    });
    auto message = test::error_of(
        [&] {
            obtain({"web", {classify_name("a.example")}, "", "", "", clock.now() + 1h});
        },
        ErrorKind::State);
    EXPECT_NE(message.find("Incorrect TXT record \"x\" found at _acme-challenge.a.example"),
              std::string::npos)
        << message;
    EXPECT_EQ(solver.cleanups, 1);
    EXPECT_EQ(solver.cleaned.size(), 1u);
}

TEST_F(AcmeObtainTest, CleansUpWhenPresentFails) {
    solver.fail_present = true;
    http.expect_post(kOrderUrl, [](const DecodedJws&) {
        return answer(201, order("pending", 1), "n", {{"location", "https://ca.test/order/1"}});
    });
    http.expect_post("https://ca.test/authz/1", [](const DecodedJws&) {
        return answer(200, authz("a.example", "pending", {challenge("dns-01", 1)}), "n");
    });
    EXPECT_EQ(test::error_of(
                  [&] {
                      obtain({"web", {classify_name("a.example")}, "", "", "", clock.now() + 1h});
                  },
                  ErrorKind::Io),
              "responder: cannot listen");
    EXPECT_EQ(solver.cleanups, 1);
}

TEST_F(AcmeObtainTest, AnAuthorizationWithoutTheSolversTypeIsNamed) {
    http.expect_post(kOrderUrl, [](const DecodedJws&) {
        return answer(201, order("pending", 1), "n", {{"location", "https://ca.test/order/1"}});
    });
    http.expect_post("https://ca.test/authz/1", [](const DecodedJws&) {
        return answer(200,
                      authz("a.example", "pending",
                            {challenge("http-01", 1), challenge("tls-alpn-01", 2)}, true),
                      "n");
    });
    auto message = test::error_of(
        [&] {
            obtain({"web", {classify_name("*.a.example")}, "", "", "", clock.now() + 1h});
        },
        ErrorKind::State);
    EXPECT_EQ(message,
              "certificate profile web: authorization for *.a.example: the CA offers no dns-01 "
              "challenge "
              "(offered: http-01, tls-alpn-01)");
    EXPECT_EQ(solver.cleanups, 0);
}

class AcmeAccountStoreTest : public ::testing::Test {
  protected:
    AcmeAccountStoreTest() {
        issuer.name = "le";
        issuer.directory = kDirectoryUrl;
        issuer.email = "ops@example.com";
    }
    void ensure(AcmeClient& client) {
        ensure_account(client, issuer, state.path(),
                       [this](const std::string& line) { log.push_back(line); });
    }
    void expect_directory(const std::string& url = kDirectoryUrl) {
        http.expect("GET", url, answer(200, test::directory_json(), ""));
        http.expect("HEAD", kNonceUrl, answer(200, nullptr, "n0"));
    }
    fs::path dir() const { return state.path() / "accounts" / "le"; }
    json stored() const { return json::parse(read_file(dir() / "account.json")); }

    test::TempDir state;
    IssuerConfig issuer;
    test::ScriptedTransport http;
    test::RecordingSleeper sleeps;
    FakeClock clock{from_iso8601("2030-01-01T00:00:00Z")};
    std::vector<std::string> log;
};

TEST_F(AcmeAccountStoreTest, CreatesStoresAndReusesTheAccount) {
    std::string jwk;
    {
        AcmeClient client(http, kDirectoryUrl, clock, sleeps.sleeper());
        expect_directory();
        http.expect_post(kAccountUrl, [&](const DecodedJws& jws) {
            EXPECT_EQ(json::parse(jws.payload), json({{"contact", {"mailto:ops@example.com"}},
                                                      {"termsOfServiceAgreed", true}}));
            EXPECT_EQ(jws.header["alg"], "ES256");
            jwk = jws.header["jwk"].dump();
            return answer(201, {{"status", "valid"}}, "n1", {{"location", kKid}});
        });
        ensure(client);
        EXPECT_EQ(client.account_url(), kKid);
    }
    struct stat st {};
    ASSERT_EQ(stat((dir() / "key.pem").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(jwk_json(PrivateKey::load(dir() / "key.pem")), jwk);
    EXPECT_EQ(stored(), json({{"directory", kDirectoryUrl}, {"url", kKid}}));
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0], "issuer le: account " + kKid + " at " + kDirectoryUrl);

    // A second start finds the same account with the stored key.
    AcmeClient again(http, kDirectoryUrl, clock, sleeps.sleeper());
    expect_directory();
    http.expect_post(kAccountUrl, [&](const DecodedJws& jws) {
        EXPECT_EQ(json::parse(jws.payload), json({{"onlyReturnExisting", true}}));
        EXPECT_EQ(jws.header["jwk"].dump(), jwk);
        return answer(200, {{"status", "valid"}}, "n1", {{"location", kKid}});
    });
    ensure(again);
    EXPECT_EQ(again.account_url(), kKid);
    EXPECT_EQ(log.size(), 1u);
    EXPECT_EQ(http.remaining(), 0u);
}

TEST_F(AcmeAccountStoreTest, RegistersAgainWhenTheCaForgotTheAccount) {
    auto key = PrivateKey::generate(KeyType::EcP256);
    ensure_directory(dir());
    write_file_atomic(dir() / "key.pem", key.to_pem(), kPrivateMode);
    write_file_atomic(
        dir() / "account.json",
        json({{"directory", kDirectoryUrl}, {"url", "https://ca.test/acct/old"}}).dump());
    AcmeClient client(http, kDirectoryUrl, clock, sleeps.sleeper());
    expect_directory();
    http.expect_post(kAccountUrl, [](const DecodedJws&) {
        return test::problem(400, "accountDoesNotExist", "unable to find existing account", "n1");
    });
    http.expect_post(kAccountUrl, [&](const DecodedJws& jws) {
        EXPECT_EQ(jws.header["jwk"], json::parse(jwk_json(key)));  // the same key
        EXPECT_TRUE(json::parse(jws.payload)["termsOfServiceAgreed"].get<bool>());
        return answer(201, {{"status", "valid"}}, "n2", {{"location", "https://ca.test/acct/new"}});
    });
    ensure(client);
    EXPECT_EQ(client.account_url(), "https://ca.test/acct/new");
    EXPECT_EQ(stored()["url"], "https://ca.test/acct/new");
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[0],
              "issuer le: the CA no longer knows account https://ca.test/acct/old: registering "
              "the key again");
}

TEST_F(AcmeAccountStoreTest, ANewDirectoryGetsANewAccountAndTheOldOneIsKept) {
    const std::string old_dir = "https://staging.test/dir";
    issuer.directory = old_dir;
    {
        AcmeClient client(http, old_dir, clock, sleeps.sleeper());
        expect_directory(old_dir);
        http.expect_post(kAccountUrl, [](const DecodedJws&) {
            return answer(201, {{"status", "valid"}}, "n1",
                          {{"location", "https://staging/acct/1"}});
        });
        ensure(client);
    }
    std::string old_key = read_file(dir() / "key.pem");

    issuer.directory = kDirectoryUrl;
    AcmeClient client(http, kDirectoryUrl, clock, sleeps.sleeper());
    expect_directory();
    http.expect_post(kAccountUrl, [&](const DecodedJws& jws) {
        EXPECT_NE(jws.header["jwk"], json::parse(jwk_json(PrivateKey::parse(old_key, "old"))));
        EXPECT_FALSE(json::parse(jws.payload).contains("onlyReturnExisting"));
        return answer(201, {{"status", "valid"}}, "n1", {{"location", kKid}});
    });
    ensure(client);
    EXPECT_EQ(client.account_url(), kKid);
    EXPECT_EQ(stored(), json({{"directory", kDirectoryUrl}, {"url", kKid}}));
    EXPECT_NE(read_file(dir() / "key.pem"), old_key);
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log[1],
              "issuer le: directory changed from https://staging.test/dir to "
              "https://ca.test/dir: creating a new account");

    // The old account is kept, and found again when the issuer switches back.
    int kept = 0;
    for (const auto& entry : fs::directory_iterator(dir() / "previous")) {
        EXPECT_EQ(read_file(entry.path() / "key.pem"), old_key);
        ++kept;
    }
    EXPECT_EQ(kept, 1);
    issuer.directory = old_dir;
    AcmeClient back(http, old_dir, clock, sleeps.sleeper());
    expect_directory(old_dir);
    http.expect_post(kAccountUrl, [](const DecodedJws& jws) {
        EXPECT_TRUE(json::parse(jws.payload).contains("onlyReturnExisting"));
        return answer(200, {{"status", "valid"}}, "n1", {{"location", "https://staging/acct/1"}});
    });
    ensure(back);
    EXPECT_EQ(read_file(dir() / "key.pem"), old_key);
    EXPECT_EQ(log.back(),
              "issuer le: directory changed from https://ca.test/dir to "
              "https://staging.test/dir: using the account kept for it");
}

TEST_F(AcmeAccountStoreTest, RefusesAnAccountKeyTypeAcmeCannotUse) {
    issuer.account_key_type = KeyType::Ed25519;
    AcmeClient client(http, kDirectoryUrl, clock, sleeps.sleeper());
    auto message = test::error_of([&] { ensure(client); }, ErrorKind::Usage);
    EXPECT_NE(message.find("issuer le: account_key_type ed25519"), std::string::npos) << message;
    EXPECT_TRUE(http.requests.empty());
}

// Account keys and staged certificates live under state_dir: a directory others may write
// into is refused, naming it and its mode, before anything is written or requested.
TEST_F(AcmeAccountStoreTest, AStateDirectoryOthersMayWriteIsRefused) {
    ASSERT_EQ(::chmod(state.path().c_str(), 0777), 0);
    AcmeClient client(http, kDirectoryUrl, clock, sleeps.sleeper());
    EXPECT_EQ(test::error_of([&] { ensure(client); }, ErrorKind::Io),
              state.path().string() +
                  ": mode 0777 lets group or others write into it, and so replace keys and "
                  "certificates in it (chmod go-w it)");
    EXPECT_FALSE(fs::exists(state.path() / "accounts"));
    EXPECT_TRUE(http.requests.empty());
}

TEST(PrivateDirectory, CreatesMissingDirectoriesPrivate) {
    test::TempDir state;
    ensure_private_directory(state.path(), state.path() / "profiles" / "web" / "staging");
    for (const char* sub : {"profiles", "profiles/web", "profiles/web/staging"}) {
        struct stat st {};
        ASSERT_EQ(::stat((state.path() / sub).c_str(), &st), 0) << sub;
        EXPECT_EQ(st.st_mode & 07777, 0700u) << sub;
    }
}

TEST(PrivateDirectory, AGroupWritableDirectoryOnTheWayIsRefused) {
    test::TempDir state;
    ensure_directory(state.path() / "profiles");
    ASSERT_EQ(::chmod((state.path() / "profiles").c_str(), 0775), 0);
    EXPECT_EQ(
        test::error_of(
            [&] { ensure_private_directory(state.path(), state.path() / "profiles" / "web"); },
            ErrorKind::Io),
        (state.path() / "profiles").string() +
            ": mode 0775 lets group or others write into it, and so replace keys and "
            "certificates in it (chmod go-w it)");
    EXPECT_FALSE(fs::exists(state.path() / "profiles" / "web"));
}

TEST(PrivateDirectory, AStickyDirectoryIsAcceptedButNotOneOfAnotherUser) {
    test::TempDir state;
    ASSERT_EQ(::chmod(state.path().c_str(), 01777), 0);
    ensure_private_directory(state.path(), state.path() / "profiles");
    // Another user's directory in it (as in /tmp, where anyone may create one first).
    ensure_directory(state.path() / "accounts");
    uid_t other = ::geteuid() == 0 ? 65534 : 0;
    if (::chown((state.path() / "accounts").c_str(), other, static_cast<gid_t>(-1)) != 0)
        GTEST_FAIL() << "cannot give the directory to another user: " << std::strerror(errno);
    EXPECT_EQ(test::error_of(
                  [&] { ensure_private_directory(state.path(), state.path() / "accounts" / "le"); },
                  ErrorKind::Io),
              (state.path() / "accounts").string() + ": owned by uid " + std::to_string(other) +
                  ", not by this user (uid " + std::to_string(::geteuid()) +
                  ") or root: another user could replace keys and certificates in it");
}

}  // namespace
}  // namespace brokertls
