// $CONTROL/brokertls/v1 through the real brokertls-ctl against a real mosquitto.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "brokertls/store/files.hpp"
#include "mosquitto_fixture.hpp"
#include "pki.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class ControlApi : public ::testing::Test {
  protected:
    void SetUp() override {
        pki_ = std::make_unique<TestPki>(tmp_.path());
        admin_ = pki_->client("admin");
        device_ = pki_->client("dev-1");
        write_config(pki_->root().string());
        ListenerSpec l;
        l.security_profile = "devices";
        l.certfile = pki_->server_cert();
        l.keyfile = pki_->server_key();
        l.cafile = pki_->root();
        // A TLS-only listener with anonymous clients, loading the plugin too.
        ListenerSpec open = l;
        open.security_profile = "";
        open.require_certificate = false;
        broker_ = std::make_unique<Mosquitto>(tmp_.path(), tmp_ / "brokertls.json",
                                              std::vector<ListenerSpec>{l, open});
    }
    void write_config(const std::string& anchor) {
        write_file_atomic(tmp_ / "brokertls.json", R"({"control": {"allow": ["admin"]},
            "security_profiles": {"devices": {"trust_anchors": [")" +
                                                       anchor + R"("]}}})");
    }
    RunResult ctl(const ClientCert& as, const std::vector<std::string>& args) {
        std::vector<std::string> argv{ctl_binary(),
                                      "--port",
                                      std::to_string(broker_->port()),
                                      "--ca",
                                      pki_->root().string(),
                                      "--cert",
                                      as.cert.string(),
                                      "--key",
                                      as.key.string(),
                                      "--id",
                                      as.cert.stem().stem().string()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, "", 30s);
    }

    TempDir tmp_;
    std::unique_ptr<TestPki> pki_;
    ClientCert admin_, device_;
    std::unique_ptr<Mosquitto> broker_;
};

TEST_F(ControlApi, StatusShowsProfilesAndCounters) {
    MqttClient dev(broker_->port(), "dev-1", pki_->root(), device_);
    ASSERT_EQ(dev.connect(), "");
    auto table = ctl(admin_, {"status"});
    EXPECT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("security profiles:"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("devices"), std::string::npos);

    auto r = ctl(admin_, {"status", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["command"], "getStatus");
    EXPECT_GE(doc["data"]["counters"]["accepted"].get<int>(), 2);  // dev-1 and admin
    EXPECT_EQ(doc["data"]["security_profiles"]["devices"]["identity"], "cn");
}

TEST_F(ControlApi, DeniedToIdentitiesNotInControlAllow) {
    auto r = ctl(device_, {"status"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("not authorised"), std::string::npos) << r.err;
    EXPECT_TRUE(broker_->wait_for_log(
        "brokertls: control: 'dev-1' (security profile devices, client 'dev-1') getStatus: "
        "refused: identity not in control.allow"))
        << broker_->log();
}

// The username a client sends is its own choice: it never authorises. An anonymous client on
// the TLS-only listener calling itself "admin" used to get getStatus, reload and renew.
TEST_F(ControlApi, AUsernameTheClientChoseDoesNotAuthorise) {
    auto r = run({"mosquitto_rr", "-h", "127.0.0.1", "-p", std::to_string(broker_->port(1)),
                  "--cafile", pki_->root().string(), "-u", "admin", "-i", "intruder", "-t",
                  "$CONTROL/brokertls/v1", "-e", "$CONTROL/brokertls/v1/response", "-m",
                  R"({"commands":[{"command":"getStatus"},{"command":"reload"}]})", "-W", "10"},
                 "", 30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto doc = nlohmann::json::parse(r.out);
    ASSERT_EQ(doc["responses"].size(), 2u) << r.out;
    for (const auto& response : doc["responses"]) {
        EXPECT_EQ(response["error"], "not authorised") << r.out;
        EXPECT_FALSE(response.contains("data")) << r.out;
    }
    EXPECT_TRUE(broker_->wait_for_log(
        "brokertls: control: client 'intruder' (no validated certificate) reload: refused: not "
        "authenticated by a client certificate"));
    EXPECT_EQ(broker_->log().find("configuration reloaded"), std::string::npos);
}

TEST_F(ControlApi, EveryCommandIsAudited) {
    ASSERT_EQ(ctl(admin_, {"status"}).exit_code, 0);
    EXPECT_TRUE(broker_->wait_for_log(
        "brokertls: control: 'admin' (security profile devices, client 'admin') getStatus: ok"));
    EXPECT_EQ(ctl(admin_, {"renew", "nope"}).exit_code, 2);
    EXPECT_TRUE(broker_->wait_for_log(
        "brokertls: control: 'admin' (security profile devices, client 'admin') renew: refused: "
        "no certificate profile 'nope'"));
}

// brokertls-ctl checks that the broker's certificate names the host it connects to.
TEST_F(ControlApi, CtlVerifiesTheBrokersHostName) {
    auto other = pki_->open().issue({{CertificateProfile::Server,
                                      "elsewhere",
                                      "",
                                      {classify_name("elsewhere.test")},
                                      30,
                                      KeyType::EcP256}},
                                    tmp_ / "elsewhere", Overwrite::Refuse)[0];
    ListenerSpec l;
    l.security_profile = "devices";
    l.certfile = other.chain;
    l.keyfile = other.key;
    l.cafile = pki_->root();
    fs::create_directories(tmp_ / "second");
    Mosquitto second(tmp_ / "second", tmp_ / "brokertls.json", {l});
    std::vector<std::string> argv{ctl_binary(),
                                  "--port",
                                  std::to_string(second.port()),
                                  "--ca",
                                  pki_->root().string(),
                                  "--cert",
                                  admin_.cert.string(),
                                  "--key",
                                  admin_.key.string(),
                                  "--id",
                                  "admin",
                                  "status"};
    auto r = run(argv, "", 30s);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_EQ(second.log().find("getStatus: ok"), std::string::npos);
}

TEST_F(ControlApi, ReloadReportsSuccessAndRefusal) {
    auto ok = ctl(admin_, {"reload"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_NE(ok.out.find("reload ok"), std::string::npos) << ok.out;

    write_config((tmp_ / "missing.pem").string());
    auto bad = ctl(admin_, {"reload"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("reload refused, previous configuration stays in force"),
              std::string::npos)
        << bad.err << bad.out;
    // The previous configuration is still in force: a valid device still connects.
    MqttClient dev(broker_->port(), "dev-1", pki_->root(), device_);
    EXPECT_EQ(dev.connect(), "");
}

TEST(ControlCli, UsageErrors) {
    EXPECT_EQ(run({ctl_binary(), "frobnicate", "--ca", "x"}).exit_code, 1);
    EXPECT_EQ(run({ctl_binary(), "status"}).exit_code, 1);  // --ca missing
    auto help = run({ctl_binary(), "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("status|reload"), std::string::npos);
}

}  // namespace
}  // namespace brokertls::test
