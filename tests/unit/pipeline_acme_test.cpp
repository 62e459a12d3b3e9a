// The renewal engine against a fake CA behind its injectable transport: when an order is placed
// (lifetime, ARI, persisted backoff), what a failure does (Retry-After, backoff, events), the
// temporary stand-in, the staging contract and stopping. The fake CA's authorizations are
// already valid, so no challenge is ever presented: nothing listens and nothing is started.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "acme_fake_ca.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/store/files.hpp"
#include "deploy/deployer.hpp"
#include "pipeline/pipeline.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

// A saved job state, which must load without a warning.
JobState load_state(const std::filesystem::path& file) {
    std::vector<std::string> warnings;
    JobState state = JobState::load(file, warnings);
    EXPECT_TRUE(warnings.empty()) << warnings.front();
    return state;
}

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::answer;
using test::json;
using test::kAccountUrl;
using test::kDirectoryUrl;
using test::kNonceUrl;
using test::kOrderUrl;
using test::kRenewalUrl;

const std::string kKid = "https://ca.test/acct/1";
const std::string kOrder1 = "https://ca.test/order/1";
const std::string kFinalize = "https://ca.test/order/1/finalize";
const std::string kCert1 = "https://ca.test/cert/1";
const std::string kAuthz = "https://ca.test/authz/";

template <class Fn>
bool eventually(Fn&& done, std::chrono::milliseconds limit = 3s) {
    return test::eventually(done, limit, 2ms);
}

TimePoint whole_seconds(TimePoint t) {
    return std::chrono::floor<std::chrono::seconds>(t);
}

// An ACME CA answering by URL (the renewer's requests come from its worker threads, one fresh
// transport per attempt). Every authorization is already valid. Set the knobs before start().
class FakeCa {
  public:
    enum class Issue { ForCsr, WrongKey, FirstNameOnly };

    bool ari = true;                                        // the directory has renewalInfo
    std::optional<std::pair<TimePoint, TimePoint>> window;  // else renewalInfo answers 404
    std::string window_retry_after;                         // Retry-After of that answer
    // Answers newOrder instead of the CA when it returns a response.
    std::function<std::optional<HttpResponse>(const json& payload)> new_order;
    Issue issue = Issue::ForCsr;
    // After finalize the order stays "processing" while `hang`, polled with this Retry-After
    // ("" = none: the client's own 150 ms, growing).
    std::atomic<bool> hang{false};
    std::string hang_retry_after = "30";

    PrivateKey ca_key = PrivateKey::generate(KeyType::EcP256);
    Certificate ca = test::fake_ca_certificate(ca_key);

    // A certificate of this CA for `key`.
    Certificate sign(EVP_PKEY* key, const std::vector<SubjectAltName>& names, TimePoint not_before,
                     TimePoint not_after) const {
        return sign_certificate(
            {CertificateProfile::Server, names.front().value, "", names, not_before, not_after, ""},
            key, ca_key, &ca);
    }

    HttpResponse handle(const HttpRequest& request) {
        json payload;
        if (request.method == "POST") {
            std::string text = test::decode_jws(request.body).payload;
            if (!text.empty()) payload = json::parse(text);
        }
        {
            std::lock_guard lock(mutex_);
            seen_.push_back({request.method, request.url, payload});
        }
        const std::string& url = request.url;
        if (request.method == "GET" && url == kDirectoryUrl) {
            json dir = test::directory_json();
            if (!ari) dir.erase("renewalInfo");
            return answer(200, dir, "");
        }
        if (request.method == "HEAD" && url == kNonceUrl) return answer(200, nullptr, "n");
        if (request.method == "GET" && url.rfind(kRenewalUrl + "/", 0) == 0) {
            if (!window) return test::problem(404, "malformed", "no renewal information", "");
            HttpHeaders headers;
            if (!window_retry_after.empty())
                headers.emplace_back("retry-after", window_retry_after);
            return answer(
                200,
                {{"suggestedWindow",
                  {{"start", to_iso8601(window->first)}, {"end", to_iso8601(window->second)}}}},
                "", headers);
        }
        if (request.method != "POST") return unexpected(request);
        if (url == kAccountUrl)
            return answer(201, {{"status", "valid"}}, "n", {{"location", kKid}});
        if (url == kOrderUrl) {
            if (new_order)
                if (auto refused = new_order(payload)) return *refused;
            std::lock_guard lock(mutex_);
            finalized_ = false;
            identifiers_ = payload["identifiers"];
            return answer(201, order("pending"), "n", {{"location", kOrder1}});
        }
        // One already valid authorization per ordered identifier: https://ca.test/authz/N.
        if (url.rfind(kAuthz, 0) == 0) {
            std::lock_guard lock(mutex_);
            std::size_t n = std::stoul(url.substr(kAuthz.size()));
            if (n < 1 || n > identifiers_.size()) return unexpected(request);
            return answer(200,
                          {{"status", "valid"},
                           {"identifier", identifiers_[n - 1]},
                           {"challenges", json::array()}},
                          "n");
        }
        if (url == kOrder1) return order_state();
        if (url == kFinalize) return finalize(payload);
        if (url == kCert1) {
            std::lock_guard lock(mutex_);
            HttpResponse r = answer(200, nullptr, "n");
            r.body = leaf_pem_ + ca.to_pem();
            return r;
        }
        return unexpected(request);
    }

    std::vector<json> payloads(const std::string& url) const {
        std::lock_guard lock(mutex_);
        std::vector<json> out;
        for (const auto& s : seen_)
            if (s.method == "POST" && s.url == url) out.push_back(s.payload);
        return out;
    }
    std::size_t requests() const {
        std::lock_guard lock(mutex_);
        return seen_.size();
    }
    bool finalized() const {
        std::lock_guard lock(mutex_);
        return finalized_;
    }
    std::string leaf_pem() const {
        std::lock_guard lock(mutex_);
        return leaf_pem_;
    }

  private:
    struct Seen {
        std::string method, url;
        json payload;
    };

    // Called with mutex_ held.
    json order(const std::string& status) const {
        json o{{"status", status},
               {"identifiers", identifiers_},
               {"authorizations", json::array()},
               {"finalize", kFinalize}};
        for (std::size_t n = 1; n <= identifiers_.size(); ++n)
            o["authorizations"].push_back(kAuthz + std::to_string(n));
        if (status == "valid") o["certificate"] = kCert1;
        return o;
    }

    HttpResponse order_state() {
        std::lock_guard lock(mutex_);
        if (!finalized_) return answer(200, order("ready"), "n");
        if (hang) return processing();
        return answer(200, order("valid"), "n");
    }

    HttpResponse processing() const {
        HttpHeaders headers;
        if (!hang_retry_after.empty()) headers.emplace_back("retry-after", hang_retry_after);
        return answer(200, order("processing"), "n", headers);
    }

    HttpResponse finalize(const json& payload) {
        auto csr = CertificateRequest::parse(
            base64url_decode(payload["csr"].get<std::string>(), "csr"), "csr");
        EXPECT_TRUE(csr.signature_valid());
        std::vector<SubjectAltName> names = csr.subject_alt_names();
        if (issue == Issue::FirstNameOnly) names.resize(1);
        PrivateKey other = PrivateKey::generate(KeyType::EcP256);
        EVP_PKEY* key = issue == Issue::WrongKey ? other.get() : csr.public_key();
        std::string pem =
            sign(key, names, SystemClock::now() - 1min, SystemClock::now() + Days(90)).to_pem();
        std::lock_guard lock(mutex_);
        leaf_pem_ = pem;
        finalized_ = true;
        if (hang) return processing();
        return answer(200, order("valid"), "n");
    }

    HttpResponse unexpected(const HttpRequest& request) {
        ADD_FAILURE() << "the fake CA got an unexpected " << request.method << " " << request.url;
        return test::problem(404, "malformed", "no such resource", "n");
    }

    mutable std::mutex mutex_;
    std::vector<Seen> seen_;
    bool finalized_ = false;
    std::string leaf_pem_;
    json identifiers_ = json::array();  // of the last newOrder
};

class CaTransport : public HttpTransport {
  public:
    explicit CaTransport(std::shared_ptr<FakeCa> ca) : ca_(std::move(ca)) {}
    HttpResponse send(const HttpRequest& request) override { return ca_->handle(request); }

  private:
    std::shared_ptr<FakeCa> ca_;
};

class CertificatePipelineTest : public ::testing::Test {
  protected:
    CertificatePipelineTest() {
        ensure_directory(dir / "deploy");
        config.file = dir / "brokertls.json";
        config.state_dir = dir / "state";
        IssuerConfig issuer;
        issuer.name = "ca";
        issuer.directory = kDirectoryUrl;
        issuer.challenge.type = ChallengeConfig::Type::Http01;
        issuer.challenge.listen = "127.0.0.1:0";
        config.issuers["ca"] = issuer;
        add_profile("web", {"a.example"});
    }
    ~CertificatePipelineTest() override {
        if (renewer) renewer->stop();
    }

    CertificateProfileConfig& add_profile(const std::string& name,
                                          const std::vector<std::string>& names) {
        CertificateProfileConfig& p = config.certificate_profiles[name];
        p = CertificateProfileConfig{};
        p.name = name;
        p.source = CertificateSource::Acme;
        for (const auto& n : names) p.names.push_back(classify_name(n));
        p.issuer = "ca";
        p.deploy_cert = dir / "deploy" / (name + ".crt");
        p.deploy_key = dir / "deploy" / (name + ".key");
        return p;
    }
    CertificateProfileConfig& web() { return config.certificate_profiles.at("web"); }

    // Deploys a certificate of the fake CA (leaf + CA) for `profile` and returns the leaf.
    Certificate deploy(TimePoint not_before, TimePoint not_after,
                       const std::string& profile = "web") {
        const auto& p = config.certificate_profiles.at(profile);
        PrivateKey key = PrivateKey::generate(KeyType::EcP256);
        Certificate leaf = ca->sign(key.get(), p.names, not_before, not_after);
        Deployer::install(ServerMaterial{std::move(key), {leaf, ca->ca}}, p.deploy_cert,
                          p.deploy_key);
        return Certificate::load(p.deploy_cert);  // as the renewer reads it (whole seconds)
    }
    // A 90-day certificate 10 days into its life: not due by lifetime for 50 days.
    Certificate deploy_fresh() {
        return deploy(SystemClock::now() - Days(10), SystemClock::now() + Days(80));
    }
    // A 90-day certificate with 3 days left: due, and under the expiring threshold.
    Certificate deploy_expiring() {
        return deploy(SystemClock::now() - Days(87), SystemClock::now() + Days(3));
    }

    CertificatePipeline& make_renewer() {
        CertificatePipeline::Hooks hooks;
        hooks.deployed = [this] { ++deployed_calls; };
        hooks.event = [this](const RenewalEvent& e) {
            std::lock_guard lock(mutex);
            events.push_back(e);
        };
        hooks.log = [this](const std::string& line) {
            std::lock_guard lock(mutex);
            log.push_back(line);
        };
        renewer = std::make_unique<CertificatePipeline>(
            hooks,
            CertificatePipeline::Options{[this](const IssuerConfig& issuer, std::stop_token) {
                EXPECT_EQ(issuer.name, "ca");
                return std::make_unique<CaTransport>(ca);
            }});
        return *renewer;
    }
    // configure() + start(), then waits until every job has run once and is scheduled ahead.
    void run_once() {
        if (!renewer) make_renewer();
        renewer->configure(config, SystemClock::now());
        renewer->start();
        ASSERT_TRUE(eventually([&] { return renewer->idle(); }));
    }
    CertificatePipeline::Status status(const std::string& profile = "web") const {
        return renewer->status().at(profile);
    }
    std::vector<std::string> event_types() {
        std::lock_guard lock(mutex);
        std::vector<std::string> out;
        for (const auto& e : events) out.push_back(e.type);
        return out;
    }
    bool logged(const std::string& text) {
        std::lock_guard lock(mutex);
        for (const auto& line : log)
            if (line.find(text) != std::string::npos) return true;
        return false;
    }
    fs::path job_dir(const std::string& profile = "web") const {
        return config.state_dir / "profiles" / profile;
    }

    test::TempDir dir;
    Config config;
    std::shared_ptr<FakeCa> ca = std::make_shared<FakeCa>();
    std::mutex mutex;
    std::vector<RenewalEvent> events;
    std::vector<std::string> log;
    std::atomic<int> deployed_calls{0};
    std::unique_ptr<CertificatePipeline> renewer;
};

// --- ARI -----------------------------------------------------------------------------------

TEST_F(CertificatePipelineTest, AFutureAriWindowPlacesNoOrderAndSchedulesInsideIt) {
    config.renewal.check_interval = std::chrono::hours(24 * 365);  // the window decides
    Certificate leaf = deploy_fresh();
    TimePoint start = whole_seconds(SystemClock::now() + Days(20));
    ca->window = {start, start + Days(1)};
    std::string before = read_file(web().deploy_cert);

    run_once();
    EXPECT_TRUE(ca->payloads(kOrderUrl).empty());
    EXPECT_TRUE(ca->payloads(kAccountUrl).empty());
    auto st = status();
    EXPECT_GE(st.next_run, ca->window->first);
    EXPECT_LE(st.next_run, ca->window->second);
    EXPECT_FALSE(st.temporary);
    EXPECT_EQ(st.fingerprint, leaf.fingerprint_sha256());
    EXPECT_EQ(read_file(web().deploy_cert), before);
    EXPECT_TRUE(event_types().empty());
    EXPECT_EQ(deployed_calls, 0);
}

TEST_F(CertificatePipelineTest, AFutureAriWindowBeyondTheNextCheckSchedulesTheCheck) {
    config.renewal.check_interval = std::chrono::hours(12);
    deploy_fresh();
    ca->window = {SystemClock::now() + Days(20), SystemClock::now() + Days(21)};
    TimePoint before = SystemClock::now();
    run_once();
    EXPECT_TRUE(ca->payloads(kOrderUrl).empty());
    // check_interval ±50%
    EXPECT_GE(status().next_run, before + 6h);
    EXPECT_LE(status().next_run, SystemClock::now() + 18h);
}

// The CA's Retry-After on renewalInfo (it may move the window, e.g. before a mass revocation)
// brings the next check forward.
TEST_F(CertificatePipelineTest, AnAriRetryAfterBringsTheNextCheckForward) {
    config.renewal.check_interval = std::chrono::hours(24 * 365);
    deploy_fresh();
    ca->window = {SystemClock::now() + Days(20), SystemClock::now() + Days(21)};
    ca->window_retry_after = "7200";
    TimePoint before = SystemClock::now();
    run_once();
    EXPECT_TRUE(ca->payloads(kOrderUrl).empty());
    EXPECT_GE(status().next_run, before + 2h - 1s);
    EXPECT_LE(status().next_run, SystemClock::now() + 2h + 1s);
}

TEST_F(CertificatePipelineTest, APastAriWindowOrdersAReplacement) {
    Certificate old_leaf = deploy_fresh();
    std::string old_cert = read_file(web().deploy_cert);
    std::string old_key = read_file(web().deploy_key);
    ca->window = {SystemClock::now() - Days(2), SystemClock::now() - Days(1)};

    run_once();
    auto orders = ca->payloads(kOrderUrl);
    ASSERT_EQ(orders.size(), 1u);
    EXPECT_EQ(orders[0]["replaces"], AcmeClient::ari_cert_id(old_leaf));
    EXPECT_EQ(orders[0]["identifiers"], json::parse(R"([{"type":"dns","value":"a.example"}])"));

    auto st = status();
    EXPECT_EQ(st.job.last_result, "obtained");
    EXPECT_EQ(st.job.consecutive_failures, 0);
    EXPECT_EQ(st.job.directory, kDirectoryUrl);
    EXPECT_FALSE(st.temporary);
    auto deployed = Deployer::read(web().deploy_cert, web().deploy_key);
    ASSERT_TRUE(deployed);
    EXPECT_EQ(deployed->leaf().to_pem(), ca->leaf_pem());
    EXPECT_EQ(server_material_problem(*deployed, web().names, SystemClock::now()), std::nullopt);
    EXPECT_EQ(st.fingerprint, deployed->leaf().fingerprint_sha256());
    EXPECT_EQ(deployed_calls, 1);
    // The new certificate is not due for a long time.
    EXPECT_GT(st.next_run, SystemClock::now() + 1h);

    // The replaced set is archived as it was.
    std::vector<fs::path> sets;
    for (const auto& entry : fs::directory_iterator(job_dir() / "archive"))
        sets.push_back(entry.path());
    ASSERT_EQ(sets.size(), 1u);
    EXPECT_EQ(read_file(sets[0] / "cert.pem"), old_cert);
    EXPECT_EQ(PrivateKey::load(sets[0] / "key.pem").to_pem(),
              PrivateKey::parse(old_key, "old key").to_pem());
    EXPECT_FALSE(fs::exists(job_dir() / "staging"));
}

TEST_F(CertificatePipelineTest, AnOrderRefusedForReplacesIsRetriedOnceWithoutIt) {
    Certificate old_leaf = deploy_fresh();
    ca->window = {SystemClock::now() - Days(2), SystemClock::now() - Days(1)};
    ca->new_order = [](const json& payload) -> std::optional<HttpResponse> {
        if (payload.contains("replaces"))
            return test::problem(409, "alreadyReplaced", "certificate already replaced", "n");
        return std::nullopt;
    };

    run_once();
    auto orders = ca->payloads(kOrderUrl);
    ASSERT_EQ(orders.size(), 2u);
    EXPECT_EQ(orders[0]["replaces"], AcmeClient::ari_cert_id(old_leaf));
    EXPECT_FALSE(orders[1].contains("replaces"));
    EXPECT_EQ(orders[1]["identifiers"], orders[0]["identifiers"]);
    EXPECT_EQ(status().job.last_result, "obtained");
    EXPECT_TRUE(logged("the CA refused replaces=" + AcmeClient::ari_cert_id(old_leaf)));
}

TEST_F(CertificatePipelineTest, AriNeverDelaysPastATwentiethOfTheLifetime) {
    config.renewal.check_interval = std::chrono::hours(24 * 365);
    Certificate leaf = deploy_fresh();
    ca->window = {SystemClock::now() + Days(200), SystemClock::now() + Days(201)};

    run_once();
    EXPECT_TRUE(ca->payloads(kOrderUrl).empty());
    TimePoint deadline = leaf.not_after() - (leaf.not_after() - leaf.not_before()) / 20;
    EXPECT_LE(status().next_run, deadline);
    // ... and that is where the window was clamped to, not "now".
    EXPECT_GE(status().next_run, deadline - 1s);
}

TEST_F(CertificatePipelineTest, WithoutAriTheLifetimeDecides) {
    config.renewal.check_interval = std::chrono::hours(24 * 365);
    ca->ari = false;
    Certificate leaf = deploy_fresh();
    run_once();
    EXPECT_TRUE(ca->payloads(kOrderUrl).empty());
    // A third of the lifetime left.
    EXPECT_EQ(status().next_run, leaf.not_after() - (leaf.not_after() - leaf.not_before()) / 3);
}

// --- failures --------------------------------------------------------------------------------

TEST_F(CertificatePipelineTest, RateLimitedWaitsForRetryAfter) {
    ca->new_order = [](const json&) -> std::optional<HttpResponse> {
        return test::problem(429, "rateLimited", "too many new orders", "n",
                             {{"retry-after", "3600"}});
    };
    TimePoint before = SystemClock::now();
    run_once();
    EXPECT_EQ(ca->payloads(kOrderUrl).size(), 1u);
    auto st = status();
    EXPECT_EQ(st.job.last_result, "failed");
    EXPECT_EQ(st.job.consecutive_failures, 1);
    EXPECT_NE(st.job.last_error.find("rateLimited: too many new orders (HTTP 429)"),
              std::string::npos)
        << st.job.last_error;
    EXPECT_GE(st.next_run, before + 3600s);
    EXPECT_LE(st.next_run, SystemClock::now() + 3601s);

    std::vector<std::string> warnings;
    JobState saved = JobState::load(job_dir() / "job.json", warnings);
    EXPECT_TRUE(warnings.empty());
    EXPECT_EQ(saved.consecutive_failures, 1);
    EXPECT_EQ(saved.last_result, "failed");
    EXPECT_EQ(saved.last_error, st.job.last_error);
    EXPECT_EQ(saved.next_run, whole_seconds(st.next_run));
}

// A forced renewal (control "renew") is still an order at the CA: it waits for the CA's
// Retry-After like a scheduled one, and says so.
TEST_F(CertificatePipelineTest, ForcedRenewalHonoursRetryAfter) {
    ca->new_order = [](const json&) -> std::optional<HttpResponse> {
        return test::problem(429, "rateLimited", "too many new orders", "n",
                             {{"retry-after", "3600"}});
    };
    run_once();
    ASSERT_EQ(ca->payloads(kOrderUrl).size(), 1u);
    auto refused = renewer->renew_now("web", SystemClock::now() + 10min);
    EXPECT_FALSE(refused);
    EXPECT_NE(refused.refused.value_or("").find("the CA asked to wait until"), std::string::npos)
        << refused.refused.value_or("");
    EXPECT_NE(refused.refused.value_or("").find("rateLimited"), std::string::npos)
        << refused.refused.value_or("");
    // The Retry-After is kept in job.json: a broker restart does not clear it.
    renewer.reset();
    make_renewer().configure(config, SystemClock::now());
    refused = renewer->renew_now("web", SystemClock::now() + 10min);
    EXPECT_FALSE(refused);
    EXPECT_NE(refused.refused.value_or("").find("the CA asked to wait until"), std::string::npos)
        << refused.refused.value_or("");
    EXPECT_TRUE(renewer->renew_now("web", SystemClock::now() + 3601s));
}

TEST_F(CertificatePipelineTest, ForcedRenewalsAreSpacedByForcedInterval) {
    config.renewal.forced_interval = 300s;
    make_renewer().configure(config, SystemClock::now());
    TimePoint t = SystemClock::now();
    EXPECT_TRUE(renewer->renew_now("web", t));
    auto again = renewer->renew_now("web", t + 299s);
    EXPECT_FALSE(again);
    EXPECT_NE(again.refused.value_or("").find("(renewal.forced_interval)"), std::string::npos)
        << again.refused.value_or("");
    EXPECT_TRUE(renewer->renew_now("web", t + 301s));
    EXPECT_FALSE(renewer->renew_now("nope", t));
}

TEST_F(CertificatePipelineTest, RateLimitedReplacementIsNotRetriedWithoutReplaces) {
    deploy_fresh();
    ca->window = {SystemClock::now() - Days(2), SystemClock::now() - Days(1)};
    ca->new_order = [](const json&) -> std::optional<HttpResponse> {
        return test::problem(429, "rateLimited", "too many new orders", "n",
                             {{"retry-after", "3600"}});
    };
    TimePoint before = SystemClock::now();
    run_once();
    // Asking again at once would only spend another request of the exhausted limit.
    auto orders = ca->payloads(kOrderUrl);
    ASSERT_EQ(orders.size(), 1u);
    EXPECT_TRUE(orders[0].contains("replaces"));
    EXPECT_EQ(status().job.consecutive_failures, 1);
    EXPECT_GE(status().next_run, before + 3600s);
}

TEST_F(CertificatePipelineTest, BackoffGrowsWithEachFailure) {
    ca->new_order = [](const json&) -> std::optional<HttpResponse> {
        return test::problem(500, "serverInternal", "the CA is down", "n");
    };
    run_once();
    std::vector<std::chrono::seconds> gaps;
    for (int failures = 1; failures <= 3; ++failures) {
        if (failures > 1) {
            ASSERT_TRUE(renewer->renew_now("web", SystemClock::now() + failures * 10min));
            ASSERT_TRUE(eventually([&] {
                auto st = status();
                return st.job.consecutive_failures == failures && !st.running;
            }));
        }
        auto st = status();
        ASSERT_EQ(st.job.consecutive_failures, failures);
        EXPECT_EQ(st.job.last_result, "failed");
        gaps.push_back(
            std::chrono::duration_cast<std::chrono::seconds>(st.next_run - st.job.last_attempt));
    }
    EXPECT_EQ(ca->payloads(kOrderUrl).size(), 3u);
    EXPECT_LT(gaps[0], gaps[1]);
    EXPECT_LT(gaps[1], gaps[2]);
    // 1, 2 and 5 minutes, each ±20%.
    EXPECT_GE(gaps[0], 47s);
    EXPECT_LE(gaps[0], 73s);
    EXPECT_GE(gaps[1], 95s);
    EXPECT_LE(gaps[1], 145s);
    EXPECT_GE(gaps[2], 239s);
    EXPECT_LE(gaps[2], 361s);
    EXPECT_EQ(load_state(job_dir() / "job.json").consecutive_failures, 3);
}

TEST_F(CertificatePipelineTest, APersistedBackoffSurvivesARestart) {
    add_profile("other", {"b.example"});
    deploy(SystemClock::now() - Days(87), SystemClock::now() + Days(3), "other");  // due now
    ca->ari = false;
    JobState before;
    before.consecutive_failures = 3;
    before.last_result = "failed";
    before.next_run = whole_seconds(SystemClock::now() + 2h);
    before.save(job_dir("web") / "job.json");
    // Even a certificate that is due waits for the backoff.
    deploy_expiring();

    make_renewer().configure(config, SystemClock::now());
    EXPECT_EQ(status("web").next_run, before.next_run);
    EXPECT_EQ(status("web").job.consecutive_failures, 3);
    // The scheduler's first pass starts "other" and must leave "web" alone.
    renewer->start();
    ASSERT_TRUE(eventually([&] { return status("other").job.last_result == "obtained"; }));
    ASSERT_TRUE(eventually([&] { return renewer->idle(); }));
    EXPECT_EQ(status("web").next_run, before.next_run);
    EXPECT_EQ(status("web").job.last_attempt, TimePoint{});
    EXPECT_EQ(ca->payloads(kOrderUrl).size(), 1u);
    EXPECT_TRUE(renewer->idle(std::chrono::minutes(110)));
}

TEST_F(CertificatePipelineTest, ABackoffThatEndedBeforeTheRestartRunsAtOnce) {
    deploy_expiring();
    ca->ari = false;
    JobState before;
    before.consecutive_failures = 3;
    before.next_run = whole_seconds(SystemClock::now() - 1h);
    before.save(job_dir() / "job.json");

    TimePoint now = SystemClock::now();
    make_renewer().configure(config, now);
    EXPECT_EQ(status().next_run, now);
    renewer->start();
    ASSERT_TRUE(eventually([&] { return renewer->idle(); }));
    EXPECT_EQ(ca->payloads(kOrderUrl).size(), 1u);
    EXPECT_EQ(status().job.last_result, "obtained");
    EXPECT_EQ(status().job.consecutive_failures, 0);
    EXPECT_EQ(load_state(job_dir() / "job.json").last_result, "obtained");
}

// --- the temporary certificate -------------------------------------------------------------

TEST_F(CertificatePipelineTest, NothingDeployedGetsATemporaryCertificate) {
    add_profile("web", {"a.example", "b.example", "192.0.2.7"});
    TimePoint now = SystemClock::now();
    EXPECT_TRUE(make_renewer().configure(config, now).deployed);
    auto deployed = Deployer::read(web().deploy_cert, web().deploy_key);
    ASSERT_TRUE(deployed);
    EXPECT_TRUE(is_temporary(deployed->leaf()));
    EXPECT_EQ(server_material_problem(*deployed, web().names, now), std::nullopt);
    EXPECT_EQ(deployed->leaf().common_name(), "a.example");
    struct stat st {};
    ASSERT_EQ(stat(web().deploy_key.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_TRUE(status().temporary);
    EXPECT_EQ(status().next_run, now);
    EXPECT_TRUE(logged("certificate profile web: no certificate yet"));
    EXPECT_EQ(ca->requests(), 0u);  // configure() never waits for the CA

    // Configured again (a reload), the stand-in is kept.
    std::string cert = read_file(web().deploy_cert);
    EXPECT_FALSE(renewer->configure(config, SystemClock::now()).deployed);
    EXPECT_EQ(read_file(web().deploy_cert), cert);

    // The first order replaces it, and a temporary certificate is not archived.
    renewer->start();
    ASSERT_TRUE(eventually([&] { return renewer->idle(); }));
    EXPECT_EQ(status().job.last_result, "obtained");
    EXPECT_FALSE(status().temporary);
    EXPECT_FALSE(ca->payloads(kOrderUrl).at(0).contains("replaces"));
    EXPECT_FALSE(fs::exists(job_dir() / "archive"));
}

TEST_F(CertificatePipelineTest, AValidDeployedCertificateIsLeftInPlace) {
    deploy_fresh();
    std::string cert = read_file(web().deploy_cert), key = read_file(web().deploy_key);
    EXPECT_FALSE(make_renewer().configure(config, SystemClock::now()).deployed);
    EXPECT_EQ(read_file(web().deploy_cert), cert);
    EXPECT_EQ(read_file(web().deploy_key), key);
    EXPECT_FALSE(status().temporary);
}

TEST_F(CertificatePipelineTest, AnExpiredDeployedCertificateIsReplacedByAStandIn) {
    deploy(SystemClock::now() - Days(90), SystemClock::now() - Days(1));
    EXPECT_TRUE(make_renewer().configure(config, SystemClock::now()).deployed);
    auto deployed = Deployer::read(web().deploy_cert, web().deploy_key);
    ASSERT_TRUE(deployed);
    EXPECT_TRUE(is_temporary(deployed->leaf()));
    EXPECT_EQ(server_material_problem(*deployed, web().names, SystemClock::now()), std::nullopt);
}

// --- the staging contract ------------------------------------------------------------------

class CertificatePipelineStagingTest : public CertificatePipelineTest,
                                       public ::testing::WithParamInterface<FakeCa::Issue> {};

TEST_P(CertificatePipelineStagingTest, ACertificateThatDoesNotFitIsNotDeployed) {
    add_profile("web", {"a.example", "b.example"});
    ca->ari = false;
    ca->issue = GetParam();
    deploy_expiring();
    std::string cert = read_file(web().deploy_cert), key = read_file(web().deploy_key);

    run_once();
    ASSERT_EQ(ca->payloads(kFinalize).size(), 1u);
    auto st = status();
    EXPECT_EQ(st.job.last_result, "failed");
    EXPECT_EQ(st.job.consecutive_failures, 1);
    std::string expected =
        GetParam() == FakeCa::Issue::WrongKey
            ? "acme certificate " + kCert1 + ": the certificate is not for the CSR's key"
            : "the CA's certificate is not deployed: the certificate does "
              "not cover DNS:b.example";
    EXPECT_NE(st.job.last_error.find(expected), std::string::npos) << st.job.last_error;
    EXPECT_EQ(read_file(web().deploy_cert), cert);
    EXPECT_EQ(read_file(web().deploy_key), key);
    EXPECT_FALSE(fs::exists(job_dir() / "archive"));
    EXPECT_EQ(deployed_calls, 0);
}

INSTANTIATE_TEST_SUITE_P(Issues, CertificatePipelineStagingTest,
                         ::testing::Values(FakeCa::Issue::WrongKey, FakeCa::Issue::FirstNameOnly));

// --- events ----------------------------------------------------------------------------------

TEST_F(CertificatePipelineTest, AnOrderReportsObtainingThenObtained) {
    run_once();
    using Types = std::vector<std::string>;
    EXPECT_EQ(event_types(), (Types{"obtaining", "obtained"}));
    Types recorded;
    for (const auto& e : status().job.activity) {
        recorded.push_back(e.type);
        EXPECT_EQ(e.profile, "web");
    }
    EXPECT_EQ(recorded, (Types{"obtaining", "obtained"}));
    std::lock_guard lock(mutex);
    EXPECT_EQ(events[0].message, "ordering a certificate for a.example from " + kDirectoryUrl);
    EXPECT_NE(events[1].message.find("deployed CN=a.example (sha256 "), std::string::npos)
        << events[1].message;
}

TEST_F(CertificatePipelineTest, AFailingRenewalCloseToExpiryReportsExpiring) {
    ca->ari = false;
    deploy_expiring();
    ca->new_order = [](const json&) -> std::optional<HttpResponse> {
        return test::problem(400, "rejectedIdentifier", "policy forbids a.example", "n");
    };
    run_once();
    using Types = std::vector<std::string>;
    EXPECT_EQ(event_types(), (Types{"obtaining", "failed", "expiring"}));
    Types recorded;
    for (const auto& e : status().job.activity) recorded.push_back(e.type);
    EXPECT_EQ(recorded, (Types{"obtaining", "failed", "expiring"}));
    std::lock_guard lock(mutex);
    EXPECT_NE(events[1].message.find("rejectedIdentifier: policy forbids a.example"),
              std::string::npos)
        << events[1].message;
    EXPECT_NE(events[1].message.find("(attempt 1, next at "), std::string::npos);
    EXPECT_NE(events[2].message.find("and renewal is failing"), std::string::npos);
}

TEST_F(CertificatePipelineTest, AFailingRenewalFarFromExpiryIsNotExpiring) {
    config.renewal.expiring_threshold = std::chrono::hours(24);
    ca->ari = false;
    deploy_expiring();  // 3 days left
    ca->new_order = [](const json&) -> std::optional<HttpResponse> {
        return test::problem(400, "rejectedIdentifier", "no", "n");
    };
    run_once();
    EXPECT_EQ(event_types(), (std::vector<std::string>{"obtaining", "failed"}));
}

TEST_F(CertificatePipelineTest, AManualDns01ProfileThatIsDueSaysSoFirst) {
    config.issuers["ca"].challenge.type = ChallengeConfig::Type::Dns01;
    config.issuers["ca"].challenge.provider = ChallengeConfig::DnsProvider::Manual;
    ca->ari = false;
    deploy_expiring();
    run_once();
    using Types = std::vector<std::string>;
    EXPECT_EQ(event_types(), (Types{"expiring", "obtaining", "obtained"}));
    std::lock_guard lock(mutex);
    EXPECT_NE(events[0].message.find("renews only with the operator's help (manual dns-01)"),
              std::string::npos)
        << events[0].message;
}

// --- stopping and reloading ----------------------------------------------------------------

TEST_F(CertificatePipelineTest, StopInterruptsAnOrderThatIsPolling) {
    ca->hang = true;
    make_renewer().configure(config, SystemClock::now());
    renewer->start();
    ASSERT_TRUE(eventually([&] { return ca->finalized(); }));
    ASSERT_TRUE(status().running);

    auto before = std::chrono::steady_clock::now();
    renewer->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
    auto st = status();
    EXPECT_FALSE(st.running);
    // Being stopped is not the CA's failure: no backoff, no `failed` event.
    EXPECT_EQ(st.job.consecutive_failures, 0);
    EXPECT_LE(st.next_run, SystemClock::now());
    EXPECT_EQ(event_types(), (std::vector<std::string>{"obtaining"}));
    EXPECT_TRUE(logged("certificate profile web: order interrupted by shutdown: "));
    EXPECT_EQ(load_state(job_dir() / "job.json").consecutive_failures, 0);
    EXPECT_TRUE(status().temporary);
}

TEST_F(CertificatePipelineTest, AReloadDuringAnOrderKeepsTheJobGoing) {
    ca->hang = true;
    ca->hang_retry_after = "";
    make_renewer().configure(config, SystemClock::now());
    renewer->start();
    ASSERT_TRUE(eventually([&] { return ca->finalized(); }));
    EXPECT_FALSE(
        renewer->configure(config, SystemClock::now()).deployed);  // a reload while the order polls
    EXPECT_TRUE(status().running);
    ca->hang = false;

    // The order's outcome reaches the reloaded job ...
    ASSERT_TRUE(eventually([&] { return !status().running; }));
    EXPECT_EQ(status().job.last_result, "obtained");
    EXPECT_GT(status().next_run, SystemClock::now() + 1h);
    EXPECT_FALSE(status().temporary);
    // ... which still runs when asked.
    ASSERT_TRUE(renewer->renew_now("web", SystemClock::now()));
    ASSERT_TRUE(eventually([&] { return ca->payloads(kOrderUrl).size() == 2; }));
    ASSERT_TRUE(eventually([&] { return renewer->idle(); }));
    EXPECT_EQ(status().job.last_result, "obtained");
}

}  // namespace
}  // namespace brokertls
