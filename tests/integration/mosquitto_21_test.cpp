// What only Mosquitto 2.1 has, end to end (suite Mosquitto21, run against the 2.1 broker only:
// tests/integration/CMakeLists.txt): brokertls loaded once with global_plugin and brokertls.json
// mapping listener ports to security profiles, broker-thread work on TICK instead of a signal,
// sessions that outlive their connection, disable_client_cert_date_checks, the acl-file plugin,
// and the 2.0 build refusing to run in a 2.1 broker. The rest of the broker suite runs against
// both versions.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/store/files.hpp"
#include "mosquitto_fixture.hpp"
#include "pki.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

constexpr auto kLogTimeout = 10s;

class Mosquitto21 : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(mosquitto21()) << "run with BROKERTLS_TEST_MOSQUITTO=2.1";
        pki_ = std::make_unique<TestPki>(tmp_.path());
    }
    // brokertls.json: the devices profile, admin may use $CONTROL, `listeners` as given.
    fs::path write_config(const json& listeners = json::object()) {
        json config = {
            {"security_profiles",
             {{"devices",
               {{"trust_anchors", {pki_->root().string()}}, {"crls", {pki_->crl().string()}}}}}},
            {"control", {{"allow", {"admin"}}}}};
        if (!listeners.empty()) config["listeners"] = listeners;
        fs::path file = tmp_ / "brokertls.json";
        write_file_atomic(file, config.dump(2));
        return file;
    }
    ListenerSpec mtls(const std::string& profile = "devices") const {
        ListenerSpec l;
        l.security_profile = profile;
        l.certfile = pki_->server_cert();
        l.keyfile = pki_->server_key();
        l.cafile = pki_->root();
        return l;
    }
    static std::string accepted(const std::string& client_id) {
        return "accepted client '" + client_id + "' as '" + client_id + "'";
    }

    TempDir tmp_;
    std::unique_ptr<TestPki> pki_;
};

// global_plugin: one plugin for the broker; the mapped port's clients are authenticated by
// certificate, the unmapped port's are left to the broker (anonymous here), $CONTROL answers,
// and a revocation disconnects on the next TICK: no SIGHUP, so no "Reloading config".
TEST_F(Mosquitto21, GlobalPluginAuthenticatesTheMappedPortAndLeavesTheOthersToTheBroker) {
    ListenerSpec devices = mtls();
    devices.port = free_port();
    ListenerSpec open = mtls("");
    open.cafile.clear();
    open.require_certificate = false;
    fs::path config = write_config({{std::to_string(devices.port), "devices"}});
    Mosquitto broker(tmp_.path(), config, {devices, open}, "", Instrument::Default,
                     PluginForm::Global);

    auto dev1 = pki_->client("dev-1");
    MqttClient device(broker.port(0), "dev-1", pki_->root(), dev1);
    ASSERT_EQ(device.connect(), "");
    EXPECT_TRUE(broker.wait_for_log(accepted("dev-1"), kLogTimeout));
    // Authenticated by certificate: an impostor's client id is refused with the reason.
    MqttClient impostor(broker.port(0), "impostor", pki_->root(), pki_->client("dev-2"));
    EXPECT_NE(impostor.connect(), "");
    EXPECT_TRUE(broker.wait_for_log("rejected client 'impostor'", kLogTimeout));

    MqttClient anonymous(broker.port(1), "anon-1", pki_->root(), {});
    ASSERT_EQ(anonymous.connect(), "");
    anonymous.subscribe("public/#");
    anonymous.publish("public/x", "hello");
    EXPECT_EQ(anonymous.next_message(5s).value_or("none"), "public/x hello");
    EXPECT_EQ(broker.log().find("client 'anon-1'"), std::string::npos) << broker.log();

    auto admin = pki_->client("admin");
    auto status = run({ctl_binary(), "--port", std::to_string(broker.port(0)), "--ca",
                       pki_->root().string(), "--cert", admin.cert.string(), "--key",
                       admin.key.string(), "--id", "admin", "status", "--json"},
                      "", 30s);
    ASSERT_EQ(status.exit_code, 0) << status.out << status.err << broker.log();
    EXPECT_EQ(json::parse(status.out)["data"]["security_profiles"]["devices"]["identity"], "cn")
        << status.out;

    size_t mark = broker.log_mark();
    pki_->revoke(dev1);
    EXPECT_TRUE(device.wait_disconnected(5s));
    EXPECT_TRUE(broker.wait_for_log_after(mark, "disconnecting client 'dev-1'", kLogTimeout));
    EXPECT_EQ(broker.log().find("Reloading config", mark), std::string::npos) << broker.log();
}

// MQTT 3.1.1 without clean session: 2.1 reports the end of such a connection as
// CLIENT_OFFLINE, not DISCONNECT. brokertls must forget the connection either way, or a later
// revocation would act on a client that is not there (and a stale connection handle).
TEST_F(Mosquitto21, AConnectionWhoseSessionOutlivesItIsForgotten) {
    auto broker =
        std::make_unique<Mosquitto>(tmp_.path(), write_config(), std::vector<ListenerSpec>{mtls()});
    auto dev1 = pki_->client("dev-1");
    auto dev2 = pki_->client("dev-2");
    {
        MqttClient persistent(broker->port(), "dev-1", pki_->root(), dev1, false);
        ASSERT_EQ(persistent.connect(), "");
        ASSERT_TRUE(broker->wait_for_log(accepted("dev-1"), kLogTimeout));
    }
    // Its disconnect ("Client dev-1 [127.0.0.1:PORT] disconnected.").
    ASSERT_TRUE(broker->wait_for_log("Client dev-1 [", kLogTimeout));
    MqttClient online(broker->port(), "dev-2", pki_->root(), dev2);
    ASSERT_EQ(online.connect(), "");

    size_t mark = broker->log_mark();
    pki_->revoke(dev1);
    pki_->revoke(dev2);
    // One revalidation pass handles both: once dev-2 is disconnected, dev-1 would have been.
    ASSERT_TRUE(broker->wait_for_log_after(mark, "disconnecting client 'dev-2'", kLogTimeout));
    EXPECT_EQ(broker->log().find("disconnecting client 'dev-1'", mark), std::string::npos)
        << broker->log();
}

// disable_client_cert_date_checks lets an expired certificate through Mosquitto's handshake;
// brokertls's own validation still refuses it, with the reason.
TEST_F(Mosquitto21, DisabledDateChecksDoNotLetAnExpiredCertificateIn) {
    ListenerSpec l = mtls();
    l.extra = "disable_client_cert_date_checks true\n";
    Mosquitto broker(tmp_.path(), write_config(), {l});
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    CertificateSpec spec;
    spec.profile = CertificateProfile::Client;
    spec.common_name = "old-1";
    spec.not_before = SystemClock::now() - Days(30);
    spec.not_after = SystemClock::now() - Days(1);
    Certificate root = Certificate::load(pki_->root());
    Certificate cert =
        sign_certificate(spec, key.get(), PrivateKey::load(pki_->dir() / "root.key"), &root);
    ClientCert expired{tmp_ / "old-1.crt", tmp_ / "old-1.key"};
    write_file_atomic(expired.cert, cert.to_pem());
    write_file_atomic(expired.key, key.to_pem(), 0600);

    MqttClient client(broker.port(), "old-1", pki_->root(), expired);
    EXPECT_NE(client.connect(), "");
    EXPECT_TRUE(broker.wait_for_log("rejected client 'old-1'", kLogTimeout)) << broker.log();
    EXPECT_TRUE(broker.wait_for_log("): expired: ", kLogTimeout)) << broker.log();
}

// The acl-file plugin (2.1's replacement for acl_file) acts on the identity brokertls mapped:
// %u is the certificate's identity, never a username the client sent.
TEST_F(Mosquitto21, AclFilePluginPatternsActOnTheMappedIdentity) {
    fs::path acl = tmp_ / "acl";
    write_file_atomic(acl, "pattern readwrite devices/%u/#\nuser monitor\ntopic read devices/#\n",
                      0600);
    ListenerSpec l = mtls();
    l.extra = "plugin " +
              (fs::path(broker_under_test().dynsec_plugin).parent_path() / "mosquitto_acl_file.so")
                  .string() +
              "\nplugin_opt_acl_file " + acl.string() + "\n";
    Mosquitto broker(tmp_.path(), write_config(), {l});

    MqttClient monitor(broker.port(), "monitor", pki_->root(), pki_->client("monitor"));
    ASSERT_EQ(monitor.connect(), "");
    monitor.subscribe("devices/#");
    MqttClient device(broker.port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(device.connect(), "");
    device.publish("devices/dev-2/temp", "spoofed");  // not its own: dropped by the ACL
    device.publish("devices/dev-1/temp", "21.5");
    EXPECT_EQ(monitor.next_message(5s).value_or("none"), "devices/dev-1/temp 21.5");
}

// The password-file plugin after brokertls on a listener whose profile does not require
// certificates (Mosquitto asks for one only with require_certificate true, so none comes):
// brokertls defers, the password file decides, and a deferral is no pass for anyone else.
TEST_F(Mosquitto21, PasswordFilePluginDecidesForClientsWithoutACertificate) {
    json config = {
        {"security_profiles",
         {{"devices",
           {{"trust_anchors", {pki_->root().string()}}, {"require_client_certificate", false}}}}}};
    write_file_atomic(tmp_ / "brokertls.json", config.dump());
    fs::path passwords = tmp_ / "passwords";
    auto made =
        run({(fs::path(broker_under_test().ctrl).parent_path() / "mosquitto_passwd").string(), "-c",
             "-b", passwords.string(), "sensor", "s3cret"},
            "", 20s);
    ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
    ListenerSpec l = mtls();
    l.require_certificate = false;
    l.extra =
        "plugin " +
        (fs::path(broker_under_test().dynsec_plugin).parent_path() / "mosquitto_password_file.so")
            .string() +
        "\nplugin_opt_password_file " + passwords.string() + "\n";
    Mosquitto broker(tmp_.path(), tmp_ / "brokertls.json", {l});

    MqttClient sensor(broker.port(), "sensor-1", pki_->root(), {});
    sensor.credentials("sensor", "s3cret");
    EXPECT_EQ(sensor.connect(), "") << broker.log();
    MqttClient guesser(broker.port(), "sensor-2", pki_->root(), {});
    guesser.credentials("sensor", "wrong");
    // CONNACK 5: not authorised (a refusal, not a timeout).
    EXPECT_NE(guesser.connect().find("(rc 5)"), std::string::npos);
    // A username that is some device's identity gets nothing from brokertls without its
    // certificate.
    MqttClient impostor(broker.port(), "dev-2", pki_->root(), {});
    impostor.credentials("dev-2", "anything");
    EXPECT_NE(impostor.connect().find("(rc 5)"), std::string::npos);
    MqttClient anonymous(broker.port(), "anon-1", pki_->root(), {});
    EXPECT_NE(anonymous.connect().find("(rc 5)"), std::string::npos);
}

// 2.1's dynamic-security expands %u in ACL topics to the username: the identity brokertls mapped.
// One role for every device, each confined to its own tree.
TEST_F(Mosquitto21, DynamicSecurityUsernamePatternsActOnTheMappedIdentity) {
    fs::path dynsec = tmp_ / "dynamic-security.json";
    auto init = run({broker_under_test().ctrl, "dynsec", "init", dynsec.string(), "admin"},
                    "admin-password\nadmin-password\n", 20s);
    ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
    json ds = json::parse(read_file(dynsec));
    for (const char* device : {"dev-1", "dev-2"})
        ds["clients"].push_back(
            {{"username", device}, {"roles", json::array({json{{"rolename", "device"}}})}});
    ds["clients"].push_back(
        {{"username", "monitor"}, {"roles", json::array({json{{"rolename", "monitor"}}})}});
    json acls = json::array();
    for (const char* type : {"publishClientSend", "subscribePattern", "publishClientReceive"})
        acls.push_back({{"acltype", type}, {"topic", "devices/%u/#"}, {"allow", true}});
    ds["roles"].push_back({{"rolename", "device"}, {"acls", acls}});
    ds["roles"].push_back({{"rolename", "monitor"},
                           {"acls", json::array({json{{"acltype", "subscribePattern"},
                                                      {"topic", "devices/#"},
                                                      {"allow", true}}})}});
    ds["defaultACLAccess"]["publishClientSend"] = false;
    write_file_atomic(dynsec, ds.dump(2), 0600);
    ListenerSpec l = mtls();
    l.extra = "plugin " + broker_under_test().dynsec_plugin + "\nplugin_opt_config_file " +
              dynsec.string() + "\n";
    Mosquitto broker(tmp_.path(), write_config(), {l});

    MqttClient monitor(broker.port(), "monitor", pki_->root(), pki_->client("monitor"));
    ASSERT_EQ(monitor.connect(), "") << broker.log();
    monitor.subscribe("devices/#");
    MqttClient dev1(broker.port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(dev1.connect(), "") << broker.log();
    dev1.publish("devices/dev-2/x", "spoofed");  // another device's tree: denied
    dev1.publish("devices/dev-1/x", "21.5");
    // Messages of one client arrive in order, so the denied one would have come first.
    EXPECT_EQ(monitor.next_message(5s).value_or("(none)"), "devices/dev-1/x 21.5");
    EXPECT_TRUE(broker.wait_for_log("Denied PUBLISH from dev-1", kLogTimeout)) << broker.log();
}

// Debian's build in a 2.1 broker would stop it at the first certificate deploy: it refuses to
// load, and says which build to use.
TEST_F(Mosquitto21, TheBuildFor20RefusesToLoadAndNamesTheRightOne) {
    std::string log =
        mosquitto_start_failure(tmp_.path(), write_config(), "devices", plugin_path_2_0());
    EXPECT_NE(log.find("built for Mosquitto 2.0, and this broker is 2.1 or later: load "
                       "brokertls_mosquitto21.so"),
              std::string::npos)
        << log;
}

}  // namespace
}  // namespace brokertls::test
