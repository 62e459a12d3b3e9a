#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "brokertls/ca/authority.hpp"
#include "brokertls/module/security_module.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;

class SecurityModuleTest : public ::testing::Test {
  protected:
    SecurityModuleTest() {
        CertificateAuthority::init_root(tmp_ / "ca", {});
        auto ca = open();
        ca.write_crl(30);
        auto issued = ca.issue({{CertificateProfile::Client, "dev-1", "", {}, 30, KeyType::EcP256},
                                {CertificateProfile::Client, "dev-2", "", {}, 30, KeyType::EcP256}},
                               tmp_ / "certs", Overwrite::Refuse);
        dev1_ = Certificate::load(issued[0].cert);
        dev2_ = Certificate::load(issued[1].cert);
        write_config(
            R"({"security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"], "crls": ["ca/crl.pem"]}}})");
    }
    CertificateAuthority open() {
        return CertificateAuthority(tmp_ / "ca", {}, true, DirectoryLock::Mode::Exclusive);
    }
    void write_config(const std::string& text) { write_file_atomic(tmp_ / "brokertls.json", text); }
    // A change counts once two polls agree on it.
    bool poll_twice(SecurityModule& m) {
        TimePoint now = Clock::now();
        return m.poll_files(now) || m.poll_files(now);
    }

    test::TempDir tmp_;
    std::optional<Certificate> dev1_, dev2_;
    int conn1_ = 0, conn2_ = 0;  // stand-ins for broker connection handles
};

TEST_F(SecurityModuleTest, AuthenticatesAndCounts) {
    SecurityModule m(tmp_ / "brokertls.json");
    EXPECT_TRUE(m.has_security_profile("devices"));
    EXPECT_FALSE(m.has_security_profile("nope"));
    EXPECT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, Clock::now()).ok());
    EXPECT_EQ(m.authenticate("nope", dev1_->get(), "dev-1", &conn1_, Clock::now()).reason,
              RejectReason::Untrusted);
    auto status = nlohmann::json::parse(m.status_json(Clock::now()));
    EXPECT_EQ(status["counters"]["accepted"], 1);
    EXPECT_EQ(status["counters"]["rejected.untrusted"], 1);
    EXPECT_EQ(status["connected_certificate_clients"], 1);
}

TEST_F(SecurityModuleTest, CrlChangeKicksOnlyTheRevokedConnectedClient) {
    SecurityModule m(tmp_ / "brokertls.json");
    ASSERT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, Clock::now()).ok());
    ASSERT_TRUE(m.authenticate("devices", dev2_->get(), "dev-2", &conn2_, Clock::now()).ok());
    EXPECT_FALSE(poll_twice(m));  // nothing changed yet
    open().revoke(dev1_->serial_hex(), RevocationReason::KeyCompromise);
    EXPECT_TRUE(poll_twice(m));
    auto out = m.tick(Clock::now());
    EXPECT_EQ(out.kick, std::vector<std::string>{"dev-1"});
    EXPECT_TRUE(out.ok);
    EXPECT_EQ(m.tick(Clock::now()).kick.size(), 0u);  // handed over once
    EXPECT_EQ(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, Clock::now()).reason,
              RejectReason::Revoked);
}

TEST_F(SecurityModuleTest, BrokenReloadKeepsThePreviousConfiguration) {
    SecurityModule m(tmp_ / "brokertls.json");
    write_config(R"({"security_profiles": {"devices": {"trust_anchors": ["ca/missing.crt"]}}})");
    EXPECT_TRUE(poll_twice(m));
    auto out = m.tick(Clock::now());
    EXPECT_FALSE(out.ok);
    ASSERT_FALSE(out.log.empty());
    EXPECT_NE(out.log.back().find("reload refused, previous configuration stays in force"),
              std::string::npos);
    EXPECT_NE(out.log.back().find("trust_anchors[0]: file not found"), std::string::npos);
    EXPECT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, Clock::now()).ok());
    auto status = nlohmann::json::parse(m.status_json(Clock::now()));
    EXPECT_FALSE(status["last_reload"]["ok"].get<bool>());
}

TEST_F(SecurityModuleTest, TakeoverDisconnectDoesNotForgetTheNewConnection) {
    SecurityModule m(tmp_ / "brokertls.json");
    int old_conn = 0, new_conn = 0;
    ASSERT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &old_conn, Clock::now()).ok());
    ASSERT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &new_conn, Clock::now()).ok());
    m.disconnected("dev-1", &old_conn);  // the taken-over session goes away
    open().revoke(dev1_->serial_hex(), RevocationReason::KeyCompromise);
    EXPECT_TRUE(poll_twice(m));
    EXPECT_EQ(m.tick(Clock::now()).kick, std::vector<std::string>{"dev-1"});
}

TEST_F(SecurityModuleTest, ExplicitReloadRereadsEverything) {
    SecurityModule m(tmp_ / "brokertls.json");
    ASSERT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, Clock::now()).ok());
    write_config(
        R"({"security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"], "deny_fingerprints": [")" +
        dev1_->fingerprint_sha256() + R"("]}}})");
    auto out = m.reload(Clock::now());
    EXPECT_TRUE(out.ok);
    EXPECT_EQ(out.kick, std::vector<std::string>{"dev-1"});
}

TEST_F(SecurityModuleTest, WatcherThreadWakesTheBrokerWhenNoTicksArrive) {
    SecurityModule m(tmp_ / "brokertls.json");
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;
    m.start_watching([&] {
        std::lock_guard lock(mu);
        woken = true;
        cv.notify_all();
    });
    open().write_crl(30);
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return woken; }));
}

}  // namespace
}  // namespace brokertls

namespace brokertls {
namespace {

// An acme profile in a module that is not started: the stand-in certificate is deployed at
// construction, getStatus shows the profile, and the control commands find (or not) the job.
TEST_F(SecurityModuleTest, AcmeProfilesInStatusAndControl) {
    write_config(R"({"issuers": {"ca": {"type": "acme", "directory": "https://127.0.0.1:1/dir",
        "challenge": {"type": "dns-01", "provider": "manual"}}},
      "certificate_profiles": {"web": {"source": "acme", "acme": {"issuer": "ca"},
        "names": ["a.example"], "deploy": {"cert": "live/web.crt", "key": "live/web.key"}}}})");
    SecurityModule module(tmp_ / "brokertls.json");
    auto startup = module.take_startup_log();
    EXPECT_NE(std::find(startup.begin(), startup.end(),
                        "certificate profile web: no certificate yet: serving a temporary "
                        "self-signed certificate until the ACME order completes"),
              startup.end());
    EXPECT_TRUE(fs::exists(tmp_ / "live/web.crt"));

    auto status = nlohmann::json::parse(module.status_json(Clock::now()));
    const auto& web = status["certificate_profiles"]["web"];
    EXPECT_EQ(web["source"], "acme");
    EXPECT_EQ(web["issuer"], "ca");
    EXPECT_EQ(web["temporary"], true);
    EXPECT_EQ(web["names"], nlohmann::json::array({"a.example"}));

    auto answer = [&](const std::string& command, const std::string& profile) {
        auto doc =
            nlohmann::json::parse(module
                                      .control(R"({"commands": [{"command": ")" + command +
                                                   R"(", "profile": ")" + profile + R"("}]})",
                                               Clock::now())
                                      .response);
        return doc["responses"][0];
    };
    EXPECT_EQ(answer("renew", "web")["data"]["profile"], "web");
    EXPECT_EQ(answer("renew", "nope")["error"], "no acme certificate profile 'nope'");
    EXPECT_EQ(answer("resumeChallenge", "web")["error"],
              "no order of certificate profile 'web' waits for the operator");
}

}  // namespace
}  // namespace brokertls
