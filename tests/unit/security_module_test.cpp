#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "brokertls/ca/authority.hpp"
#include "brokertls/ca/lock.hpp"
#include "brokertls/module/security_module.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The broker's side of start_watching(): records that the module woke it.
class Waker {
  public:
    std::function<bool()> callback() {
        return [this] {
            std::lock_guard lock(mutex_);
            woken_ = true;
            cv_.notify_all();
            return true;
        };
    }
    bool wait(std::chrono::seconds timeout) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, timeout, [&] { return woken_; });
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool woken_ = false;
};

class SecurityModuleTest : public ::testing::Test {
  protected:
    SecurityModuleTest() {
        CertificateAuthority::init_root(tmp_ / "ca", {}, SystemClock::now());
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
        return CertificateAuthority(tmp_ / "ca", {}, true, DirectoryLock::Mode::Exclusive,
                                    SystemClock::now());
    }
    void write_config(const std::string& text) { write_file_atomic(tmp_ / "brokertls.json", text); }
    // Waits (bounded) for the watcher to report a change, once the files are stable, and
    // applies it.
    bool poll_change(SecurityModule& m) { return m.poll_files(SystemClock::now(), 10s); }

    test::TempDir tmp_;
    std::optional<Certificate> dev1_, dev2_;
    int conn1_ = 0, conn2_ = 0;  // stand-ins for broker connection handles
};

TEST_F(SecurityModuleTest, AuthenticatesAndCounts) {
    SecurityModule m(tmp_ / "brokertls.json");
    EXPECT_TRUE(m.has_security_profile("devices"));
    EXPECT_FALSE(m.has_security_profile("nope"));
    EXPECT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).ok());
    EXPECT_EQ(m.authenticate("nope", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).reason,
              RejectReason::Untrusted);
    auto status = nlohmann::json::parse(m.status_json(SystemClock::now()));
    EXPECT_EQ(status["counters"]["accepted"], 1);
    EXPECT_EQ(status["counters"]["rejected.untrusted"], 1);
    EXPECT_EQ(status["connected_certificate_clients"], 1);
}

TEST_F(SecurityModuleTest, CrlChangeKicksOnlyTheRevokedConnectedClient) {
    SecurityModule m(tmp_ / "brokertls.json");
    ASSERT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).ok());
    ASSERT_TRUE(m.authenticate("devices", dev2_->get(), "dev-2", &conn2_, SystemClock::now()).ok());
    EXPECT_FALSE(m.poll_files(SystemClock::now(), 300ms));  // nothing changed yet
    open().revoke(dev1_->serial_hex(), RevocationReason::KeyCompromise);
    EXPECT_TRUE(poll_change(m));
    auto out = m.tick(SystemClock::now());
    EXPECT_EQ(out.kick, std::vector<std::string>{"dev-1"});
    EXPECT_TRUE(out.ok);
    EXPECT_EQ(m.tick(SystemClock::now()).kick.size(), 0u);  // handed over once
    EXPECT_EQ(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).reason,
              RejectReason::Revoked);
}

// brokertls-gateway validates at the handshake, before the client names its client id: the
// connection's key stands in for it, the profile's client-id rule is the adapter's, and a
// revocation still kicks that key (and only it).
TEST_F(SecurityModuleTest, ConnectionsAuthenticatedBeforeTheClientIdAreRevalidatedByKey) {
    SecurityModule m(tmp_ / "brokertls.json");
    EXPECT_TRUE(m.client_id_must_match_identity("devices"));  // its default with client certs
    EXPECT_EQ(m.authenticate("devices", dev1_->get(), "gw-1", &conn1_, SystemClock::now()).reason,
              RejectReason::ClientIdMismatch);
    auto r =
        m.authenticate_connection("devices", dev1_->get(), "gw-1", &conn1_, SystemClock::now());
    ASSERT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.identity, "dev-1");
    ASSERT_TRUE(
        m.authenticate_connection("devices", dev2_->get(), "gw-2", &conn2_, SystemClock::now())
            .ok());
    EXPECT_EQ(
        m.authenticate_connection("devices", nullptr, "gw-3", &conn2_, SystemClock::now()).reason,
        RejectReason::NoCertificate);
    open().revoke(dev1_->serial_hex(), RevocationReason::KeyCompromise);
    EXPECT_TRUE(poll_change(m));
    EXPECT_EQ(m.tick(SystemClock::now()).kick, std::vector<std::string>{"gw-1"});
    EXPECT_EQ(
        m.authenticate_connection("devices", dev1_->get(), "gw-4", &conn1_, SystemClock::now())
            .reason,
        RejectReason::Revoked);
}

// A stale CRL written over the current one while the broker was down does not un-revoke
// anything either: the CRL in force was kept in STATE_DIR/crls/.
TEST_F(SecurityModuleTest, AStaleCrlAfterARestartDoesNotUnrevoke) {
    std::string old_crl = read_file(tmp_ / "ca/crl.pem");  // revokes nothing
    open().revoke(dev1_->serial_hex(), RevocationReason::KeyCompromise);
    {
        SecurityModule m(tmp_ / "brokertls.json");
        EXPECT_EQ(
            m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).reason,
            RejectReason::Revoked);
    }
    EXPECT_EQ(fs::status(tmp_ / "state/crls").permissions() & fs::perms::all, fs::perms::owner_all);
    write_file_atomic(tmp_ / "ca/crl.pem", old_crl);  // restored from an old backup, say
    SecurityModule m(tmp_ / "brokertls.json");
    EXPECT_EQ(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).reason,
              RejectReason::Revoked);
    EXPECT_TRUE(m.authenticate("devices", dev2_->get(), "dev-2", &conn2_, SystemClock::now()).ok());
    auto log = m.take_startup_log();
    EXPECT_TRUE(std::any_of(log.begin(), log.end(), [](const std::string& line) {
        return line.find("is older than the CRL in force") != std::string::npos;
    })) << testing::PrintToString(log);
}

TEST_F(SecurityModuleTest, BrokenReloadKeepsThePreviousConfiguration) {
    SecurityModule m(tmp_ / "brokertls.json");
    write_config(R"({"security_profiles": {"devices": {"trust_anchors": ["ca/missing.crt"]}}})");
    EXPECT_TRUE(poll_change(m));
    auto out = m.tick(SystemClock::now());
    EXPECT_FALSE(out.ok);
    ASSERT_FALSE(out.log.empty());
    EXPECT_NE(out.log.back().find("reload refused, previous configuration stays in force"),
              std::string::npos);
    EXPECT_NE(out.log.back().find("trust_anchors[0]: file not found"), std::string::npos);
    EXPECT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).ok());
    auto status = nlohmann::json::parse(m.status_json(SystemClock::now()));
    EXPECT_FALSE(status["last_reload"]["ok"].get<bool>());
}

TEST_F(SecurityModuleTest, TakeoverDisconnectDoesNotForgetTheNewConnection) {
    SecurityModule m(tmp_ / "brokertls.json");
    int old_conn = 0, new_conn = 0;
    ASSERT_TRUE(
        m.authenticate("devices", dev1_->get(), "dev-1", &old_conn, SystemClock::now()).ok());
    ASSERT_TRUE(
        m.authenticate("devices", dev1_->get(), "dev-1", &new_conn, SystemClock::now()).ok());
    m.disconnected("dev-1", &old_conn);  // the taken-over session goes away
    open().revoke(dev1_->serial_hex(), RevocationReason::KeyCompromise);
    EXPECT_TRUE(poll_change(m));
    EXPECT_EQ(m.tick(SystemClock::now()).kick, std::vector<std::string>{"dev-1"});
}

TEST_F(SecurityModuleTest, ExplicitReloadRereadsEverything) {
    SecurityModule m(tmp_ / "brokertls.json");
    ASSERT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).ok());
    write_config(
        R"({"security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"], "deny_fingerprints": [")" +
        dev1_->fingerprint_sha256() + R"("]}}})");
    auto out = m.reload(SystemClock::now());
    EXPECT_TRUE(out.ok);
    EXPECT_EQ(out.kick, std::vector<std::string>{"dev-1"});
}

TEST_F(SecurityModuleTest, WatcherThreadWakesTheBrokerWhenNoTicksArrive) {
    SecurityModule m(tmp_ / "brokertls.json");
    Waker waker;
    m.start_watching(waker.callback());
    open().write_crl(30);
    EXPECT_TRUE(waker.wait(5s));
}

// The watcher reads the module's clock: the broker ticked at that clock's time, two seconds pass
// on it without a tick, so the CRL change wakes the broker, and the reload is dated then. The
// clock runs an hour ahead of the system's: read from the system clock, the tick would lie in
// the future and nothing would wake the broker.
TEST_F(SecurityModuleTest, TheWatcherReadsTheModulesClock) {
    const TimePoint start = std::chrono::floor<std::chrono::seconds>(SystemClock::now() + 1h);
    FakeClock clock(start);
    SecurityModule m(tmp_ / "brokertls.json", clock);
    m.tick(start);
    clock.advance(2s);
    Waker waker;
    m.start_watching(waker.callback());
    open().write_crl(30);
    ASSERT_TRUE(waker.wait(5s));
    auto status = nlohmann::json::parse(m.status_json(start + 2s));
    EXPECT_EQ(status["last_reload"]["at"], to_iso8601(start + 2s));
}

}  // namespace
}  // namespace brokertls

namespace brokertls {
namespace {

// An acme profile in a module that is not started: the stand-in certificate is deployed at
// construction, getStatus shows the profile, and the control commands find (or not) the job.
TEST_F(SecurityModuleTest, AcmeProfilesInStatusAndControl) {
    write_config(R"({"control": {"allow": ["dev-1"]},
      "security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"]}},
      "issuers": {"ca": {"type": "acme", "directory": "https://127.0.0.1:1/dir",
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

    auto status = nlohmann::json::parse(module.status_json(SystemClock::now()));
    const auto& web = status["certificate_profiles"]["web"];
    EXPECT_EQ(web["source"], "acme");
    EXPECT_EQ(web["issuer"], "ca");
    EXPECT_EQ(web["temporary"], true);
    EXPECT_EQ(web["names"], nlohmann::json::array({"a.example"}));

    ASSERT_TRUE(
        module.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).ok());
    auto answer = [&](const std::string& command, const std::string& profile) {
        auto doc =
            nlohmann::json::parse(module
                                      .control(R"({"commands": [{"command": ")" + command +
                                                   R"(", "profile": ")" + profile + R"("}]})",
                                               {"dev-1", &conn1_}, SystemClock::now())
                                      .response);
        return doc["responses"][0];
    };
    EXPECT_EQ(answer("renew", "web")["data"]["profile"], "web");
    // A forced renewal is an order at the CA: at most one per renewal.forced_interval.
    EXPECT_NE(answer("renew", "web")["error"].get<std::string>().find("(renewal.forced_interval)"),
              std::string::npos);
    EXPECT_EQ(answer("renew", "nope")["error"], "no certificate profile 'nope'");
    EXPECT_EQ(answer("resumeChallenge", "web")["error"],
              "no order of certificate profile 'web' waits for the operator");
}

}  // namespace
}  // namespace brokertls

namespace brokertls {
namespace {

using nlohmann::json;

json control(SecurityModule& m, const std::string& request,
             const SecurityModule::ControlCaller& caller,
             std::vector<std::string>* audit = nullptr) {
    auto result = m.control(request, caller, SystemClock::now());
    if (audit) *audit = result.audit;
    return json::parse(result.response)["responses"];
}

const std::string kGetStatus = R"({"commands": [{"command": "getStatus"}]})";

// Only the identity mapped from this very connection's validated certificate counts: not a
// connection that merely uses the same client id, not a client no certificate authenticated.
TEST_F(SecurityModuleTest, ControlIsAuthorisedOnTheCertificateIdentityOfTheConnection) {
    write_config(R"({"control": {"allow": ["dev-1"]}, "security_profiles": {"devices":
        {"trust_anchors": ["ca/root.crt"]}}})");
    SecurityModule m(tmp_ / "brokertls.json");
    std::vector<std::string> audit;

    auto r = control(m, kGetStatus, {"dev-1", &conn1_}, &audit);
    EXPECT_EQ(r[0]["error"], "not authorised");
    EXPECT_FALSE(r[0].contains("data"));
    EXPECT_EQ(audit, std::vector<std::string>{
                         "control: client 'dev-1' (no validated certificate) getStatus: refused: "
                         "not authenticated by a client certificate"});

    ASSERT_TRUE(m.authenticate("devices", dev2_->get(), "dev-2", &conn2_, SystemClock::now()).ok());
    EXPECT_EQ(control(m, kGetStatus, {"dev-2", &conn2_}, &audit)[0]["error"], "not authorised");
    EXPECT_EQ(audit[0],
              "control: 'dev-2' (security profile devices, client 'dev-2') getStatus: refused: "
              "identity not in control.allow");

    ASSERT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).ok());
    EXPECT_EQ(control(m, kGetStatus, {"dev-1", &conn2_})[0]["error"], "not authorised");
    r = control(m, kGetStatus, {"dev-1", &conn1_}, &audit);
    EXPECT_FALSE(r[0].contains("error")) << r;
    EXPECT_EQ(r[0]["data"]["security_profiles"]["devices"]["identity"], "cn");
    EXPECT_EQ(audit[0],
              "control: 'dev-1' (security profile devices, client 'dev-1') getStatus: ok");

    m.disconnected("dev-1", &conn1_);
    EXPECT_EQ(control(m, kGetStatus, {"dev-1", &conn1_})[0]["error"], "not authorised");
}

TEST_F(SecurityModuleTest, ControlAllowCanBindAnIdentityToItsSecurityProfile) {
    CertificateAuthority::init_root(tmp_ / "ops-ca", {}, SystemClock::now());
    write_config(R"({"control": {"allow": [{"identity": "dev-1", "security_profile": "ops"}]},
        "security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"]},
                              "ops": {"trust_anchors": ["ops-ca/root.crt"]}}})");
    SecurityModule m(tmp_ / "brokertls.json");
    // dev-1 from the devices CA is not the dev-1 of the operators' CA.
    ASSERT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).ok());
    EXPECT_EQ(control(m, kGetStatus, {"dev-1", &conn1_})[0]["error"], "not authorised");
}

TEST_F(SecurityModuleTest, ControlAnswersEveryMalformedCommand) {
    write_config(R"({"control": {"allow": ["dev-1"]}, "security_profiles": {"devices":
        {"trust_anchors": ["ca/root.crt"]}}})");
    SecurityModule m(tmp_ / "brokertls.json");
    ASSERT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).ok());
    auto r = control(m,
                     R"({"commands": [5, {"command": 7, "correlationData": "c2"},
                                      {"command": "renew", "profile": ["web"]}, {}]})",
                     {"dev-1", &conn1_});
    ASSERT_EQ(r.size(), 4u);
    EXPECT_EQ(r[0]["error"], "each command must be an object");
    EXPECT_EQ(r[1]["error"], "\"command\" must be a string");
    EXPECT_EQ(r[1]["correlationData"], "c2");
    EXPECT_EQ(r[2]["error"], "\"profile\" must be a string");
    EXPECT_EQ(r[3]["error"], "\"command\" must be a string");
    EXPECT_EQ(control(m, "[]", {"dev-1", &conn1_})[0]["error"],
              "payload must be {\"commands\": [...]}");
}

// Anyone may publish to $CONTROL: an outsized request is refused before it is parsed.
TEST_F(SecurityModuleTest, ControlRefusesOutsizedRequests) {
    SecurityModule m(tmp_ / "brokertls.json");
    std::string big = R"({"commands": [{"command": "getStatus", "x": ")" +
                      std::string(SecurityModule::kMaxControlRequest, 'a') + R"("}]})";
    EXPECT_EQ(control(m, big, {"dev-1", &conn1_})[0]["error"], "request larger than 65536 bytes");
    std::string many = R"({"commands": [)";
    for (size_t i = 0; i <= SecurityModule::kMaxControlCommands; ++i)
        many += std::string(i ? "," : "") + R"({"command": "getStatus"})";
    many += "]}";
    EXPECT_EQ(control(m, many, {"dev-1", &conn1_}).size(), 1u);
}

TEST_F(SecurityModuleTest, ReloadThatDropsASecurityProfileInUseIsRefused) {
    SecurityModule m(tmp_ / "brokertls.json");
    m.use_security_profile("devices");
    CertificateAuthority::init_root(tmp_ / "ops-ca", {}, SystemClock::now());
    write_config(R"({"security_profiles": {"ops": {"trust_anchors": ["ops-ca/root.crt"]}}})");
    auto out = m.reload(SystemClock::now());
    EXPECT_FALSE(out.ok);
    ASSERT_FALSE(out.log.empty());
    EXPECT_NE(out.log.back().find("'devices' is removed, but a listener uses it"),
              std::string::npos)
        << out.log.back();
    EXPECT_TRUE(m.has_security_profile("devices"));
    EXPECT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).ok());
}

// A port that lost its mapping would be left to the broker's other authentication.
TEST_F(SecurityModuleTest, ReloadThatDropsAMappedPortIsRefusedAndOneThatAddsAPortIsTaken) {
    const std::string profiles =
        R"("security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"]}})";
    write_config("{" + profiles + R"(, "listeners": {"8884": "devices"}})");
    SecurityModule m(tmp_ / "brokertls.json");
    EXPECT_TRUE(m.maps_listeners());
    EXPECT_EQ(m.security_profile_for_port(8884), "devices");
    EXPECT_EQ(m.security_profile_for_port(8883), "");

    write_config("{" + profiles + R"(, "listeners": {"8885": "devices"}})");
    auto out = m.reload(SystemClock::now());
    EXPECT_FALSE(out.ok);
    ASSERT_FALSE(out.log.empty());
    EXPECT_NE(out.log.back().find("listeners: port 8884 (security profile 'devices') is removed"),
              std::string::npos)
        << out.log.back();
    EXPECT_EQ(m.security_profile_for_port(8884), "devices");
    EXPECT_EQ(m.security_profile_for_port(8885), "");

    write_config("{" + profiles + R"(, "listeners": {"8884": "devices", "8885": "devices"}})");
    EXPECT_TRUE(m.reload(SystemClock::now()).ok);
    EXPECT_EQ(m.security_profile_for_port(8885), "devices");
}

class FilesProfileTest : public SecurityModuleTest {
  protected:
    FilesProfileTest() {
        auto issued = open().issue({{CertificateProfile::Server,
                                     "broker",
                                     "",
                                     {classify_name("broker.test")},
                                     30,
                                     KeyType::EcP256},
                                    {CertificateProfile::Server,
                                     "other",
                                     "",
                                     {classify_name("broker.test")},
                                     30,
                                     KeyType::EcP256}},
                                   tmp_ / "server", Overwrite::Refuse);
        good_ = issued[0];
        other_ = issued[1];
        fs::create_directories(tmp_ / "source");
        fs::copy_file(good_.key, tmp_ / "source/key.pem");
        fs::copy_file(good_.cert, tmp_ / "source/cert.pem");
        write_config(R"({"certificate_profiles": {"broker": {"source": "files",
            "files": {"key": "source/key.pem", "cert": "source/cert.pem"},
            "names": ["broker.test"],
            "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}}}})");
    }
    // A new valid key and certificate in the files source, as certbot would write them.
    IssuedFiles replace_source_certificate() {
        auto next = open().issue({{CertificateProfile::Server,
                                   "next-" + std::to_string(++issued_),
                                   "",
                                   {classify_name("broker.test")},
                                   30,
                                   KeyType::EcP256}},
                                 tmp_ / "server", Overwrite::Refuse)[0];
        write_file_atomic(tmp_ / "source/key.pem", read_file(next.key));
        write_file_atomic(tmp_ / "source/cert.pem", read_file(next.cert));
        return next;
    }
    json status(SecurityModule& m) {
        return json::parse(m.status_json(SystemClock::now()))["certificate_profiles"]["broker"];
    }
    IssuedFiles good_, other_;
    int issued_ = 0;
};

// A refused certificate used to turn every later poll into a full configuration rebuild (and,
// through the watcher, a broker reload four times a second).
TEST_F(FilesProfileTest, ARefusedCertificateIsNotRebuiltAtEveryPoll) {
    FakeClock clock(SystemClock::now());
    SecurityModule m(tmp_ / "brokertls.json", clock);
    m.poll_files(clock.now());  // the start-up check
    m.tick(clock.now());
    // A certificate that does not match the key.
    write_file_atomic(tmp_ / "source/cert.pem", read_file(other_.cert));
    TimePoint t0 = clock.now();
    ASSERT_TRUE(m.poll_files(t0, 10s));
    auto first = m.tick(t0);
    ASSERT_FALSE(first.log.empty());
    EXPECT_NE(first.log.front().find("new certificate refused, the deployed one stays"),
              std::string::npos);
    // Retried after a backoff (1 min ±20%), not at every poll.
    for (auto later : {31s, 32s, 40s}) {
        clock.set(t0 + later);
        m.poll_files(clock.now());
        auto out = m.tick(clock.now());
        EXPECT_TRUE(out.log.empty()) << out.log.front();
    }
    clock.set(t0 + 73s);
    m.poll_files(clock.now());
    auto retried = m.tick(clock.now());
    ASSERT_FALSE(retried.log.empty());
    EXPECT_NE(retried.log.front().find("(attempt 2, next at "), std::string::npos)
        << retried.log.front();
    auto counters = json::parse(m.status_json(clock.now()))["counters"];
    // A certificate source change refreshes certificates, never the whole configuration.
    EXPECT_EQ(counters.value("reload.ok", 0), 0);
}

// Log lines are no reason to signal the broker: they wait for its next event.
TEST_F(FilesProfileTest, TheWatcherDoesNotSignalTheBrokerForLogLines) {
    SecurityModule m(tmp_ / "brokertls.json");
    std::atomic<int> signals{0};
    m.start_watching([&] {
        ++signals;
        return true;
    });
    write_file_atomic(tmp_ / "source/cert.pem", read_file(other_.cert));
    std::vector<std::string> lines;
    ASSERT_TRUE(test::eventually(
        [&] {
            auto out = m.flush_messages();
            lines.insert(lines.end(), out.log.begin(), out.log.end());
            return std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
                return l.find("new certificate refused") != std::string::npos;
            });
        },
        std::chrono::seconds(10)));
    // An observation window of several watcher rounds: still no signal.
    EXPECT_FALSE(test::eventually([&] { return signals > 0; }, std::chrono::milliseconds(1000)));
    EXPECT_EQ(json::parse(m.status_json(SystemClock::now()))["counters"].value(
                  "broker_reload_signals", 0),
              0);
}

// Mosquitto installs its SIGHUP handler after loading plugins: a deploy during its start-up
// must wait for it (the plugin's wake function says "not yet"), not be lost or kill the broker.
TEST_F(FilesProfileTest, ASignalTheBrokerCannotTakeYetIsSentLater) {
    SecurityModule m(tmp_ / "brokertls.json");
    std::atomic<bool> ready{false};
    std::atomic<int> attempts{0}, signals{0};
    m.start_watching([&] {
        ++attempts;
        if (!ready) return false;
        ++signals;
        return true;
    });
    auto next = replace_source_certificate();
    ASSERT_TRUE(test::eventually([&] { return attempts >= 2; }, std::chrono::seconds(10)));
    EXPECT_EQ(signals, 0);
    ready = true;
    ASSERT_TRUE(test::eventually([&] { return signals == 1; }, std::chrono::seconds(10)));
    EXPECT_FALSE(test::eventually([&] { return signals > 1; }, std::chrono::milliseconds(1000)));
}

// The work of a change follows what changed, not the number of profiles: a new source
// certificate re-checks its own profile, and a reload with an unchanged profile reads none.
TEST_F(FilesProfileTest, OnlyProfilesWhoseFilesOrConfigurationChangedAreChecked) {
    fs::copy_file(other_.key, tmp_ / "source/other.key");
    fs::copy_file(other_.cert, tmp_ / "source/other.crt");
    auto profiles = [&](const std::string& other_names) {
        write_config(R"({"certificate_profiles": {
          "broker": {"source": "files", "files": {"key": "source/key.pem", "cert": "source/cert.pem"},
            "names": ["broker.test"], "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}},
          "other": {"source": "files", "files": {"key": "source/other.key", "cert": "source/other.crt"},
            "names": )" +
                     other_names +
                     R"(, "deploy": {"cert": "live/other.crt", "key": "live/other.key"}}}})");
    };
    profiles(R"(["broker.test"])");
    SecurityModule m(tmp_ / "brokertls.json");
    auto checks = [&] {
        return json::parse(m.status_json(SystemClock::now()))["counters"]["certificate_checks"];
    };
    // The start deploys what is missing, checked as it is issued: nothing to check again.
    m.poll_files(SystemClock::now());
    EXPECT_EQ(checks(), 0);
    replace_source_certificate();  // broker's source
    ASSERT_TRUE(poll_change(m));
    EXPECT_EQ(checks(), 1);
    m.reload(SystemClock::now());  // nothing of the certificate profiles changed
    EXPECT_EQ(checks(), 1);
    profiles(R"(["broker.test", "other.broker.test"])");  // other's names changed
    ASSERT_TRUE(poll_change(m));
    EXPECT_EQ(checks(), 2);
    EXPECT_NE(m.tick(SystemClock::now()).ok, true);  // other's certificate lacks the new name

    // A restart: what is deployed is checked right after the start, not during it; "other"
    // waits for the backoff its failure left in job.json.
    SecurityModule restarted(tmp_ / "brokertls.json");
    auto restarted_checks = [&] {
        return json::parse(
            restarted.status_json(SystemClock::now()))["counters"]["certificate_checks"];
    };
    EXPECT_EQ(restarted_checks(), 0);
    restarted.poll_files(SystemClock::now());
    EXPECT_EQ(restarted_checks(), 1);
    EXPECT_EQ(json::parse(restarted.status_json(
                  SystemClock::now()))["certificate_profiles"]["other"]["consecutive_failures"],
              1);
}

TEST_F(FilesProfileTest, StatusSaysWhatTheBrokerServes) {
    SecurityModule m(tmp_ / "brokertls.json");
    std::string first = Certificate::load(good_.cert).fingerprint_sha256();
    EXPECT_EQ(status(m)["served"]["fingerprint"], first);
    auto next = replace_source_certificate();
    ASSERT_TRUE(poll_change(m));
    std::string second = Certificate::load(next.cert).fingerprint_sha256();
    // Deployed, but the broker has not re-read its files yet.
    EXPECT_EQ(status(m)["fingerprint"], second);
    EXPECT_EQ(status(m)["served"]["fingerprint"], first);
    m.broker_reloaded(SystemClock::now());
    EXPECT_EQ(status(m)["served"]["fingerprint"], second);
    EXPECT_EQ(json::parse(m.status_json(SystemClock::now()))["counters"]["broker_reloads"], 1);
}

TEST_F(FilesProfileTest, ALocalCaThatVouchesForClientsIsRefusedUnlessChosen) {
    auto config = [&](const std::string& opt_in) {
        write_config(R"({"certificate_profiles": {"broker": {"source": "local-ca",
            "local_ca": {"dir": "ca")" +
                     opt_in + R"(}, "names": ["broker.test"],
            "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}}},
          "security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"]}}})");
    };
    config("");
    std::string error =
        test::error_of([&] { SecurityModule m(tmp_ / "brokertls.json"); }, ErrorKind::Input);
    EXPECT_NE(error.find("brokertls.json: certificate_profiles.broker.local_ca: " +
                         (tmp_ / "ca/root.crt").string() +
                         " also vouches for the clients of security profile 'devices'"),
              std::string::npos)
        << error;
    config(R"(, "allow_client_trust_anchor": true)");
    SecurityModule m(tmp_ / "brokertls.json");
    EXPECT_TRUE(fs::exists(tmp_ / "live/broker.crt"));
}

TEST_F(SecurityModuleTest, LocalCaStagesInAPrivateStateDirectoryNeverBesideTheDeployedFiles) {
    // The deploy directory is writable by everyone (as /tmp is): a staging directory there
    // could be swapped by another user between issuance and deploy.
    fs::create_directories(tmp_ / "live");
    fs::permissions(tmp_ / "live", fs::perms::all);
    CertificateAuthority::init_root(tmp_ / "server-ca", {}, SystemClock::now());
    auto config = [&](const std::string& state_dir) {
        write_config(R"({"state_dir": ")" + state_dir + R"(",
          "certificate_profiles": {"broker": {"source": "local-ca",
            "local_ca": {"dir": "server-ca"}, "names": ["broker.test"],
            "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}}}})");
    };
    config("state");
    {
        SecurityModule m(tmp_ / "brokertls.json");
        EXPECT_TRUE(fs::exists(tmp_ / "live/broker.crt"));
        EXPECT_EQ(fs::status(tmp_ / "state/local-ca/broker").permissions() & fs::perms::all,
                  fs::perms::owner_all);
        for (const auto& e : fs::directory_iterator(tmp_ / "live"))
            EXPECT_TRUE(e.path().filename() == "broker.crt" || e.path().filename() == "broker.key")
                << e.path();
        EXPECT_FALSE(fs::exists(tmp_ / "state/local-ca/broker/staging"));  // removed after use
    }
    // A state directory others may write is refused, naming it and the reason.
    fs::create_directories(tmp_ / "open-state");
    fs::permissions(tmp_ / "open-state", fs::perms::all);
    fs::remove(tmp_ / "live/broker.crt");
    fs::remove(tmp_ / "live/broker.key");
    config("open-state");
    std::string error =
        test::error_of([&] { SecurityModule m(tmp_ / "brokertls.json"); }, ErrorKind::Input);
    EXPECT_NE(error.find((tmp_ / "open-state").string() + ": mode 0777 lets group or others write"),
              std::string::npos)
        << error;
    EXPECT_FALSE(fs::exists(tmp_ / "live/broker.crt"));
}

// A local-ca renewal waits for the CA's lock (a `brokertls-ca` command holds it) and generates
// keys: the broker thread's calls (authentication, its log hand-over, getStatus) must not wait
// for it.
TEST_F(SecurityModuleTest, CertificateWorkNeverBlocksTheBrokerThread) {
    CertificateAuthority::init_root(tmp_ / "server-ca", {}, SystemClock::now());
    write_config(R"({"certificate_profiles": {"broker": {"source": "local-ca",
        "local_ca": {"dir": "server-ca", "lifetime": "1d"}, "names": ["broker.test"],
        "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}}},
      "security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"]}}})");
    FakeClock clock(SystemClock::now());
    SecurityModule m(tmp_ / "brokertls.json", clock);
    std::string first = Certificate::load(tmp_ / "live/broker.crt").fingerprint_sha256();
    // Recreated by the next issuance just before it takes the CA's lock.
    fs::remove_all(tmp_ / "state/local-ca/broker");

    // The CA's lock is held as a running `brokertls-ca` would, for at most 5 s: if the calls
    // below wait for the renewal, the renewal completes first and the test fails, not hangs.
    std::atomic<bool> locked{false}, release{false}, renewed{false};
    std::thread ca_command([&] {
        DirectoryLock lock(tmp_ / "server-ca/.lock", DirectoryLock::Mode::Exclusive, 1s);
        locked = true;
        test::eventually([&] { return release.load(); }, 5s);
    });
    ASSERT_TRUE(test::eventually([&] { return locked.load(); }, 10s));
    clock.advance(20h);  // renewal is due then, before it expires
    std::thread watcher([&] {
        m.poll_files(clock.now());
        renewed = true;
    });
    ASSERT_TRUE(test::eventually([&] { return fs::exists(tmp_ / "state/local-ca/broker"); }, 10s));
    EXPECT_TRUE(m.authenticate("devices", dev1_->get(), "dev-1", &conn1_, SystemClock::now()).ok());
    m.flush_messages();
    auto status = nlohmann::json::parse(m.status_json(SystemClock::now()));
    EXPECT_FALSE(renewed) << "a broker-thread call waited for the renewal";
    EXPECT_EQ(status["certificate_profiles"]["broker"]["fingerprint"], first);
    EXPECT_EQ(status["counters"]["accepted"], 1);
    release = true;
    ca_command.join();
    watcher.join();
    EXPECT_NE(Certificate::load(tmp_ / "live/broker.crt").fingerprint_sha256(), first);
}

}  // namespace
}  // namespace brokertls
