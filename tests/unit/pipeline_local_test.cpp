// The certificate pipeline's scheduling of local sources on a FakeClock: a local-ca profile
// renews when its renewal time comes and not before; a reload while its job runs keeps the
// outcome; stop() ends the workers. Time moves only when the test says so.

#include <gtest/gtest.h>

#include <mutex>

#include "brokertls/ca/authority.hpp"
#include "brokertls/store/files.hpp"
#include "pipeline/pipeline.hpp"
#include "renewal/policy.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class PipelineLocalTest : public ::testing::Test {
  protected:
    PipelineLocalTest() {
        CertificateAuthority::init_root(dir / "server-ca", {}, SystemClock::now());
        config.file = dir / "brokertls.json";
        config.state_dir = dir / "state";
        CertificateProfileConfig& p = config.certificate_profiles["broker"];
        p.name = "broker";
        p.source = CertificateSource::LocalCa;
        p.ca_dir = dir / "server-ca";
        p.allow_client_trust_anchor = true;
        p.lifetime = 24h;
        p.names = {classify_name("broker.test")};
        p.deploy_cert = dir / "live/broker.crt";
        p.deploy_key = dir / "live/broker.key";
    }
    CertificatePipeline::Hooks hooks() {
        CertificatePipeline::Hooks h;
        h.deployed = [this] { ++deployed; };
        h.event = [this](const RenewalEvent& e) {
            std::lock_guard lock(mutex);
            events.push_back(e.type);
        };
        return h;
    }
    std::string served() const {
        return Certificate::load(dir / "live/broker.crt").fingerprint_sha256();
    }
    std::vector<std::string> event_types() {
        std::lock_guard lock(mutex);
        return events;
    }

    test::TempDir dir;
    Config config;
    FakeClock clock{SystemClock::now()};
    std::atomic<int> deployed{0};
    std::mutex mutex;
    std::vector<std::string> events;
};

TEST_F(PipelineLocalTest, ALocalCaProfileRenewsWhenItsTimeComesAndNotBefore) {
    CertificatePipeline pipeline(hooks(), CertificatePipeline::Options{{}, &clock, 1});
    // Nothing deployed: issued by configure(), before any worker runs.
    auto configured = pipeline.configure(config, clock.now());
    EXPECT_TRUE(configured.deployed);
    EXPECT_TRUE(configured.errors.empty());
    std::string first = served();
    pipeline.start();
    // The first check finds it up to date and schedules the renewal (a third of the day left).
    ASSERT_TRUE(test::eventually([&] { return pipeline.idle(); }, 10s));
    auto st = pipeline.status().at("broker");
    EXPECT_EQ(st.job.last_result, "obtained");
    Certificate leaf = Certificate::load(dir / "live/broker.crt");
    TimePoint renew_at = renewal_time(leaf.not_before(), leaf.not_after(), 0s);
    EXPECT_EQ(st.renew_at, renew_at);
    EXPECT_EQ(st.next_run, renew_at);

    clock.set(renew_at - 1s);
    ASSERT_TRUE(clock.await_waiters(1, 10s));
    EXPECT_TRUE(pipeline.idle());
    EXPECT_EQ(served(), first);
    EXPECT_EQ(deployed, 0);

    clock.set(renew_at);
    ASSERT_TRUE(test::eventually([&] { return deployed == 1 && pipeline.idle(); }, 20s))
        << pipeline.status().at("broker").job.last_result << " "
        << pipeline.status().at("broker").job.last_error << " " << event_types().size();
    EXPECT_NE(served(), first);
    EXPECT_EQ(event_types(), std::vector<std::string>{"obtained"});
    st = pipeline.status().at("broker");
    EXPECT_EQ(st.fingerprint, served());
    Certificate renewed = Certificate::load(dir / "live/broker.crt");
    EXPECT_EQ(st.next_run, renewal_time(renewed.not_before(), renewed.not_after(), 0s));
    EXPECT_GT(st.next_run, clock.now() + 1h);
    // The replaced set is archived, in a private directory.
    fs::path archive = config.state_dir / "profiles/broker/archive";
    ASSERT_TRUE(fs::exists(archive));
    auto set = fs::directory_iterator(archive)->path();
    EXPECT_EQ(Certificate::load(set / "cert.pem").fingerprint_sha256(), first);
    EXPECT_EQ(fs::status(set / "key.pem").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
}

// A CA that cannot issue (its directory gone): the failure backs off 1, 2, 5 ... minutes on
// the clock, and the deployed certificate stays.
TEST_F(PipelineLocalTest, AFailingLocalCaBacksOffAndKeepsTheDeployedSet) {
    CertificatePipeline pipeline(hooks(), CertificatePipeline::Options{{}, &clock, 1});
    pipeline.configure(config, clock.now());
    std::string first = served();
    fs::rename(dir / "server-ca", dir / "moved-ca");
    ASSERT_TRUE(pipeline.renew_now("broker", clock.now()));
    pipeline.run_pending();
    auto st = pipeline.status().at("broker");
    EXPECT_EQ(st.job.consecutive_failures, 1);
    EXPECT_EQ(st.job.last_result, "failed");
    EXPECT_EQ(served(), first);
    TimePoint t0 = clock.now();
    EXPECT_GE(st.next_run, t0 + 48s);  // 1 min -20%
    EXPECT_LE(st.next_run, t0 + 72s);
    // A day's certificate is always within renewal.expiring_threshold: failing, it says so.
    EXPECT_EQ(event_types(), (std::vector<std::string>{"failed", "expiring"}));

    pipeline.start();
    clock.set(st.next_run - 1s);
    ASSERT_TRUE(clock.await_waiters(1, 10s));
    EXPECT_EQ(pipeline.status().at("broker").job.consecutive_failures, 1);
    clock.set(st.next_run);
    ASSERT_TRUE(test::eventually(
        [&] { return pipeline.status().at("broker").job.consecutive_failures == 2; }, 10s));
    // Back: the next retry (2 min ±20%) issues.
    fs::rename(dir / "moved-ca", dir / "server-ca");
    ASSERT_TRUE(clock.await_waiters(1, 10s));
    clock.set(pipeline.status().at("broker").next_run);
    ASSERT_TRUE(test::eventually([&] { return deployed == 1 && pipeline.idle(); }, 20s));
    EXPECT_EQ(pipeline.status().at("broker").job.consecutive_failures, 0);
    EXPECT_NE(served(), first);
}

// Unchanged profiles keep their job across a reload; a changed one is checked again.
TEST_F(PipelineLocalTest, AReloadChecksOnlyWhatChanged) {
    CertificatePipeline pipeline(hooks(), CertificatePipeline::Options{{}, &clock, 1});
    pipeline.configure(config, clock.now());
    pipeline.run_pending();
    EXPECT_EQ(pipeline.checks(), 0u);  // issued by configure(): checked then
    pipeline.configure(config, clock.now());
    pipeline.run_pending();
    EXPECT_EQ(pipeline.checks(), 0u);
    config.certificate_profiles["broker"].lifetime = 48h;
    pipeline.configure(config, clock.now());
    pipeline.run_pending();
    EXPECT_EQ(pipeline.checks(), 1u);
}

// A first start with many files profiles: they are read and checked on every core at once;
// each gets its own set deployed, and one whose files do not fit is refused alone.
TEST_F(PipelineLocalTest, ManyFilesProfilesAreDeployedAtOnceEachWithItsOwnSet) {
    constexpr int kProfiles = 24;
    std::vector<LeafRequest> requests;
    for (int i = 0; i < kProfiles; ++i)
        requests.push_back({CertificateProfile::Server,
                            "s" + std::to_string(i) + ".test",
                            "",
                            {classify_name("s" + std::to_string(i) + ".test")},
                            30});
    CertificateAuthority ca(dir / "server-ca", {}, true, DirectoryLock::Mode::Exclusive,
                            clock.now());
    auto issued = ca.issue(requests, dir / "src", Overwrite::Refuse);
    config.certificate_profiles.clear();
    for (int i = 0; i < kProfiles; ++i) {
        std::string name = "p" + std::to_string(i);
        CertificateProfileConfig& p = config.certificate_profiles[name];
        p.name = name;
        p.source = CertificateSource::Files;
        p.key_file = issued[i].key;
        p.cert_file = issued[i].chain;
        // p7 names what its certificate does not cover: refused, nothing deployed for it.
        p.names = {classify_name("s" + std::to_string(i == 7 ? 8 : i) + ".test")};
        p.deploy_cert = dir / "live" / (name + ".crt");
        p.deploy_key = dir / "live" / (name + ".key");
    }
    CertificatePipeline pipeline(hooks(), CertificatePipeline::Options{{}, &clock, 1});
    auto configured = pipeline.configure(config, clock.now());
    EXPECT_TRUE(configured.deployed);
    ASSERT_EQ(configured.errors.size(), 1u);
    EXPECT_NE(configured.errors[0].find("certificate profile p7: new certificate refused"),
              std::string::npos)
        << configured.errors[0];
    for (int i = 0; i < kProfiles; ++i) {
        const auto& p = config.certificate_profiles.at("p" + std::to_string(i));
        if (i == 7) {
            EXPECT_FALSE(fs::exists(p.deploy_cert));
            EXPECT_FALSE(fs::exists(p.deploy_key));
            continue;
        }
        EXPECT_EQ(Certificate::load(p.deploy_cert).fingerprint_sha256(),
                  Certificate::load(p.cert_file).fingerprint_sha256())
            << p.name;
        EXPECT_TRUE(Certificate::load(p.deploy_cert).matches_key(PrivateKey::load(p.deploy_key)))
            << p.name;
        EXPECT_EQ(pipeline.status().at(p.name).fingerprint,
                  Certificate::load(p.deploy_cert).fingerprint_sha256());
    }
}

}  // namespace
}  // namespace brokertls
