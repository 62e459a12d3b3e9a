// The ACME client and the acme issuer against a real Pebble, over the real curl transport.
// Challenges are answered through pebble-challtestsrv by small test-local solvers.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509_vfy.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "acme/client.hpp"
#include "acme/jws.hpp"
#include "brokertls/crypto/signing.hpp"
#include "expect_error.hpp"
#include "issuers/acme_issuer.hpp"
#include "pebble_fixture.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;
using test::PebbleFixture;
using test::PebbleOptions;
using test::verifies;

// http-01 answered by challtestsrv; `content` replaces the key authorization when set.
class ChalltestsrvHttp01 : public ChallengeSolver {
  public:
    explicit ChalltestsrvHttp01(PebbleFixture& pebble) : pebble_(pebble) {}
    std::string type() const override { return "http-01"; }
    void present(const std::vector<ChallengeTask>& tasks) override {
        for (const auto& task : tasks)
            pebble_.add_http01(task.token, content.empty() ? task.key_authorization : content);
    }
    void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override {
        for (const auto& task : tasks) {
            try {
                pebble_.del_http01(task.token);
            } catch (...) {
            }
            ++cleaned;
        }
    }
    std::string content;
    int cleaned = 0;

  private:
    PebbleFixture& pebble_;
};

std::string sha256_b64url(const std::string& text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
    return base64url(std::string(reinterpret_cast<char*>(digest), size));
}

// dns-01 TXT records set in challtestsrv's DNS, which Pebble resolves through.
class ChalltestsrvDns01 : public ChallengeSolver {
  public:
    explicit ChalltestsrvDns01(PebbleFixture& pebble) : pebble_(pebble) {}
    std::string type() const override { return "dns-01"; }
    void present(const std::vector<ChallengeTask>& tasks) override {
        for (const auto& task : tasks)
            pebble_.set_txt("_acme-challenge." + task.identifier.value,
                            sha256_b64url(task.key_authorization));
    }
    void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override {
        for (const auto& task : tasks) {
            try {
                pebble_.clear_txt("_acme-challenge." + task.identifier.value);
            } catch (...) {
            }
        }
    }

  private:
    PebbleFixture& pebble_;
};

// Counts the badNonce answers the client got (and retried).
class CountingTransport : public HttpTransport {
  public:
    explicit CountingTransport(HttpTransport& inner) : inner_(inner) {}
    HttpResponse send(const HttpRequest& request) override {
        HttpResponse response = inner_.send(request);
        ++requests;
        if (response.status == 400 && response.body.find("badNonce") != std::string::npos)
            ++bad_nonces;
        return response;
    }
    int requests = 0, bad_nonces = 0;

  private:
    HttpTransport& inner_;
};

bool real_sleep(std::chrono::milliseconds d) {
    std::this_thread::sleep_for(d);
    return true;
}

std::vector<SubjectAltName> names(std::initializer_list<const char*> list) {
    std::vector<SubjectAltName> out;
    for (const char* n : list) out.push_back(classify_name(n));
    return out;
}

// One Pebble for the tests that need no special configuration.
class AcmePebbleTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { pebble_ = new PebbleFixture(); }
    static void TearDownTestSuite() {
        delete pebble_;
        pebble_ = nullptr;
    }

    AcmePebbleTest()
        : pebble(*pebble_),
          transport(make_curl_transport(curl_options())),
          client(*transport, this->pebble.directory_url(), Clock::system(), real_sleep) {
        issuer.name = "pebble";
        issuer.directory = this->pebble.directory_url();
        issuer.email = "ops@example.com";
    }

    CurlOptions curl_options() const {
        CurlOptions options;
        options.ca_bundle = pebble.ca_bundle();
        options.timeout = 10s;
        return options;
    }
    void ensure(AcmeClient& c) {
        ensure_account(c, issuer, state.path(), [this](const std::string& l) { log.push_back(l); });
    }
    std::vector<Certificate> obtain(ChallengeSolver& solver, std::vector<SubjectAltName> sans,
                                    const std::string& preferred_chain = "") {
        ensure(client);
        return obtain_certificate(client, solver, key,
                                  {"web", sans, preferred_chain, "", "", SystemClock::now() + 60s},
                                  [this](const std::string& l) { log.push_back(l); });
    }
    bool logged(const std::string& text) const {
        for (const auto& line : log)
            if (line.find(text) != std::string::npos) return true;
        return false;
    }

    static PebbleFixture* pebble_;
    PebbleFixture& pebble;
    test::TempDir state;
    IssuerConfig issuer;
    std::unique_ptr<HttpTransport> transport;
    AcmeClient client;
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    std::vector<std::string> log;
};
PebbleFixture* AcmePebbleTest::pebble_ = nullptr;

TEST_F(AcmePebbleTest, ObtainsACertificateForOneName) {
    ChalltestsrvHttp01 solver(pebble);
    auto chain = obtain(solver, names({"one.example"}));
    ASSERT_GE(chain.size(), 2u);
    EXPECT_EQ(chain.front().subject_alt_names(), names({"one.example"}));
    EXPECT_TRUE(chain.front().matches_key(key));
    EXPECT_TRUE(verifies(chain, pebble.roots_pem(0)));
    EXPECT_EQ(solver.cleaned, 1);
    EXPECT_TRUE(logged("profile web: certificate serial"));
}

TEST_F(AcmePebbleTest, ObtainsACertificateForSeveralNames) {
    ChalltestsrvHttp01 solver(pebble);
    auto sans = names({"a.several.example", "b.several.example", "c.several.example"});
    auto chain = obtain(solver, sans);
    auto got = chain.front().subject_alt_names();
    for (const auto& san : sans)
        EXPECT_NE(std::find(got.begin(), got.end(), san), got.end()) << san.value;
    EXPECT_EQ(chain.front().common_name(), "a.several.example");
    EXPECT_TRUE(verifies(chain, pebble.roots_pem(0)));
}

TEST_F(AcmePebbleTest, ObtainsAWildcardThroughDns01) {
    ChalltestsrvDns01 solver(pebble);
    auto sans = names({"*.wild.example", "wild.example"});
    auto chain = obtain(solver, sans);
    auto got = chain.front().subject_alt_names();
    for (const auto& san : sans)
        EXPECT_NE(std::find(got.begin(), got.end(), san), got.end()) << san.value;
    EXPECT_TRUE(verifies(chain, pebble.roots_pem(0)));
}

TEST_F(AcmePebbleTest, ObtainsACertificateForAnIpAddress) {
    ChalltestsrvHttp01 solver(pebble);
    auto chain = obtain(solver, names({"127.0.0.1"}));
    EXPECT_EQ(chain.front().subject_alt_names(), names({"127.0.0.1"}));
    EXPECT_TRUE(verifies(chain, pebble.roots_pem(0)));
}

TEST_F(AcmePebbleTest, AFailedValidationCarriesPebblesDetail) {
    ChalltestsrvHttp01 solver(pebble);
    solver.content = "not-the-key-authorization";
    try {
        obtain(solver, names({"wrong.example"}));
        FAIL() << "no error";
    } catch (const AcmeError& e) {
        std::string message = e.what();
        EXPECT_EQ(e.problem().short_type(), "unauthorized") << message;
        EXPECT_NE(message.find("(wrong.example) http-01: unauthorized: "), std::string::npos)
            << message;
        EXPECT_NE(message.find("not-the-key-authorization"), std::string::npos) << message;
    }
    EXPECT_EQ(solver.cleaned, 1);
}

TEST_F(AcmePebbleTest, BadNoncesAreRetriedUnderPebblesDefaultRejection) {
    // Pebble rejects 5% of good nonces: 150 signed requests meet a badNonce with near
    // certainty (1 - 0.95^150), and every one of them must still succeed.
    CountingTransport counting(*transport);
    AcmeClient counted(counting, pebble.directory_url(), Clock::system(), real_sleep);
    ensure(counted);
    AcmeOrder order = counted.new_order({{{"dns", "nonces.example"}}, "", ""});
    for (int i = 0; i < 150; ++i) EXPECT_EQ(counted.get_order(order.url).status, "pending");
    EXPECT_GT(counting.bad_nonces, 0);
    EXPECT_GE(counting.requests, 152);
}

TEST_F(AcmePebbleTest, RevokesACertificate) {
    ChalltestsrvHttp01 solver(pebble);
    auto chain = obtain(solver, names({"revoke.example"}));
    std::string serial = chain.front().serial_hex();
    EXPECT_EQ(pebble.certificate_status(serial), "Valid");
    client.revoke(chain.front(), 4);
    EXPECT_EQ(pebble.certificate_status(serial), "Revoked");
    try {
        client.revoke(chain.front());
        FAIL() << "revoked twice";
    } catch (const AcmeError& e) {
        EXPECT_EQ(e.problem().short_type(), "alreadyRevoked") << e.what();
    }
}

TEST_F(AcmePebbleTest, ReusesTheStoredAccount) {
    ensure(client);
    std::string first = client.account_url();
    ASSERT_FALSE(first.empty());

    AcmeClient again(*transport, pebble.directory_url(), Clock::system(), real_sleep);
    ensure(again);
    EXPECT_EQ(again.account_url(), first);
    EXPECT_EQ(log.size(), 1u);  // one "account ..." line: no second account
}

TEST_F(AcmePebbleTest, AriIsAbsentFromPebble24) {
    // Pebble 2.4 has no renewalInfo: the client says so instead of failing.
    ChalltestsrvHttp01 solver(pebble);
    auto chain = obtain(solver, names({"ari.example"}));
    EXPECT_FALSE(client.renewal_info(chain.front()));
    EXPECT_FALSE(AcmeClient::ari_cert_id(chain.front()).empty());
}

TEST_F(AcmePebbleTest, CurlTransportTrustsOnlyTheGivenBundle) {
    auto untrusting = make_curl_transport({});  // the system store does not know our CA
    auto message = test::error_of(
        [&] {
            untrusting->send({"GET", pebble.directory_url(), {}, ""});
        },
        ErrorKind::Io);
    EXPECT_EQ(message.rfind(pebble.directory_url() + ": ", 0), 0u) << message;
    EXPECT_NE(message.find("certificate"), std::string::npos) << message;

    HttpResponse ok = transport->send({"GET", pebble.directory_url(), {}, ""});
    EXPECT_EQ(ok.status, 200);
    EXPECT_NE(ok.body.find("newNonce"), std::string::npos);
}

// Accepts connections (the kernel's backlog) but never answers the TLS handshake.
class SilentServer {
  public:
    SilentServer() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            listen(fd_, 4) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            throw std::runtime_error("cannot listen on 127.0.0.1");
        port_ = ntohs(addr.sin_port);
    }
    ~SilentServer() { close(fd_); }
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/dir"; }

  private:
    int fd_;
    int port_ = 0;
};

TEST(AcmeCurlTransport, ASilentServerTimesOut) {
    SilentServer server;
    std::string url = server.url();

    CurlOptions options;
    options.timeout = 300ms;
    auto transport = make_curl_transport(options);
    auto start = std::chrono::steady_clock::now();
    auto message = test::error_of([&] { transport->send({"GET", url, {}, ""}); }, ErrorKind::Io);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(message.rfind(url + ": ", 0), 0u) << message;
    EXPECT_NE(message.find("timed out"), std::string::npos) << message;
    EXPECT_LT(took, 5s);
}

// A stopping module must not wait for a CA that does not answer: the cancel check aborts the
// request long before its 30 s timeout.
TEST(AcmeCurlTransport, CancellingAbortsARequestInFlight) {
    SilentServer server;
    std::string url = server.url();

    auto start = std::chrono::steady_clock::now();
    CurlOptions options;  // the default 30 s timeout
    options.cancelled = [&] { return std::chrono::steady_clock::now() - start > 200ms; };
    auto transport = make_curl_transport(options);
    auto message = test::error_of([&] { transport->send({"GET", url, {}, ""}); }, ErrorKind::State);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(message, url + ": stopped");
    EXPECT_LT(took, 3s);
}

TEST(AcmePebbleRestart, RegistersAgainWhenPebbleForgotTheAccount) {
    PebbleFixture pebble;
    test::TempDir state;
    IssuerConfig issuer;
    issuer.name = "pebble";
    issuer.directory = pebble.directory_url();
    std::vector<std::string> log;
    auto record = [&](const std::string& l) { log.push_back(l); };
    CurlOptions options;
    options.ca_bundle = pebble.ca_bundle();
    auto transport = make_curl_transport(options);
    AcmeClient client(*transport, pebble.directory_url(), Clock::system(), real_sleep);
    ensure_account(client, issuer, state.path(), record);

    pebble.restart();  // Pebble keeps nothing: the stored account is unknown now
    AcmeClient again(*transport, pebble.directory_url(), Clock::system(), real_sleep);
    ensure_account(again, issuer, state.path(), record);
    ASSERT_EQ(log.size(), 3u);
    EXPECT_NE(log[1].find("the CA no longer knows account"), std::string::npos) << log[1];
    ChalltestsrvHttp01 solver(pebble);
    auto key = PrivateKey::generate(KeyType::EcP256);
    auto chain = obtain_certificate(
        again, solver, key,
        {"web", names({"restart.example"}), "", "", "", SystemClock::now() + 60s}, record);
    EXPECT_TRUE(verifies(chain, pebble.roots_pem(0)));
}

TEST(AcmePebbleDirectory, ANewDirectoryGetsANewAccount) {
    PebbleFixture staging, production;
    test::TempDir state;
    IssuerConfig issuer;
    issuer.name = "le";
    issuer.directory = staging.directory_url();
    std::vector<std::string> log;
    auto record = [&](const std::string& l) { log.push_back(l); };

    CurlOptions staging_options;
    staging_options.ca_bundle = staging.ca_bundle();
    auto staging_transport = make_curl_transport(staging_options);
    AcmeClient staging_client(*staging_transport, staging.directory_url(), Clock::system(),
                              real_sleep);
    ensure_account(staging_client, issuer, state.path(), record);
    EXPECT_EQ(staging_client.account_url().rfind("https://127.0.0.1:", 0), 0u);

    issuer.directory = production.directory_url();
    CurlOptions production_options;
    production_options.ca_bundle = production.ca_bundle();
    auto production_transport = make_curl_transport(production_options);
    AcmeClient production_client(*production_transport, production.directory_url(), Clock::system(),
                                 real_sleep);
    ensure_account(production_client, issuer, state.path(), record);
    // The production account lives on the production server.
    std::string origin =
        production.directory_url().substr(0, production.directory_url().find("/dir"));
    EXPECT_EQ(production_client.account_url().rfind(origin, 0), 0u)
        << production_client.account_url();
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log[1], "issuer le: directory changed from " + staging.directory_url() + " to " +
                          production.directory_url() + ": creating a new account");
}

TEST(AcmePebbleEab, RequiredBindingRefusesAWrongKeyAndAcceptsTheRightOne) {
    const std::string mac = base64url("a 32-byte HMAC key for the test!");
    PebbleOptions options;
    options.eab_required = true;
    options.eab_keys = {{"kid-1", mac}};
    PebbleFixture pebble(options);
    CurlOptions curl;
    curl.ca_bundle = pebble.ca_bundle();
    auto transport = make_curl_transport(curl);
    auto key = PrivateKey::generate(KeyType::EcP256);

    AcmeClient without(*transport, pebble.directory_url(), Clock::system(), real_sleep);
    EXPECT_TRUE(without.directory().external_account_required);
    EXPECT_NE(test::error_of([&] { without.account(key, {}); }, ErrorKind::Usage)
                  .find("the CA requires External Account Binding"),
              std::string::npos);

    AccountRequest wrong;
    wrong.eab = ExternalAccountBinding{"kid-1", base64url("another key, not the one pebble has")};
    AcmeClient refused(*transport, pebble.directory_url(), Clock::system(), real_sleep);
    try {
        refused.account(key, wrong);
        FAIL() << "a wrong EAB key was accepted";
    } catch (const AcmeError& e) {
        std::string message = e.what();
        EXPECT_EQ(message.rfind("acme newAccount " + pebble.directory_url().substr(
                                                         0, pebble.directory_url().find("/dir")),
                                0),
                  0u)
            << message;
        EXPECT_EQ(e.problem().short_type(), "unauthorized") << message;
        EXPECT_NE(message.find("external account binding"), std::string::npos) << message;
    }

    AccountRequest right;
    right.eab = ExternalAccountBinding{"kid-1", mac};
    AcmeClient accepted(*transport, pebble.directory_url(), Clock::system(), real_sleep);
    EXPECT_FALSE(accepted.account(key, right).empty());
}

TEST(AcmePebbleAlternates, PicksThePreferredChain) {
    PebbleOptions options;
    options.env = {{"PEBBLE_ALTERNATE_ROOTS", "1"}};
    PebbleFixture pebble(options);
    std::string root0 = pebble.roots_pem(0), root1 = pebble.roots_pem(1);
    std::string root1_cn = Certificate::parse(root1, "root 1").common_name();
    ASSERT_NE(Certificate::parse(root0, "root 0").common_name(), root1_cn);

    test::TempDir state;
    IssuerConfig issuer;
    issuer.name = "pebble";
    issuer.directory = pebble.directory_url();
    CurlOptions curl;
    curl.ca_bundle = pebble.ca_bundle();
    auto transport = make_curl_transport(curl);
    AcmeClient client(*transport, pebble.directory_url(), Clock::system(), real_sleep);
    auto log = [](const std::string&) {};
    ensure_account(client, issuer, state.path(), log);
    ChalltestsrvHttp01 solver(pebble);
    auto key = PrivateKey::generate(KeyType::EcP256);

    auto preferred = obtain_certificate(
        client, solver, key,
        {"web", names({"alt.example"}), root1_cn, "", "", SystemClock::now() + 60s}, log);
    EXPECT_TRUE(verifies(preferred, root1));
    EXPECT_FALSE(verifies(preferred, root0));

    auto by_default = obtain_certificate(
        client, solver, key, {"web", names({"alt.example"}), "", "", "", SystemClock::now() + 60s},
        log);
    EXPECT_TRUE(verifies(by_default, root0));
    EXPECT_FALSE(verifies(by_default, root1));
}

}  // namespace
}  // namespace brokertls
