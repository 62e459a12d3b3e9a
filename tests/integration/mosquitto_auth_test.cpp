// A real mosquitto loading brokertls_mosquitto.so, real Paho C++ clients, on 127.0.0.1.

#include <gtest/gtest.h>

#include <fstream>

#include "mosquitto_fixture.hpp"
#include "pki.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class MosquittoAuth : public ::testing::Test {
  protected:
    void SetUp() override { pki_ = std::make_unique<TestPki>(tmp_.path()); }

    fs::path write_config(const std::string& profile_json) {
        fs::path file = tmp_ / "brokertls.json";
        std::ofstream(file) << R"({"security_profiles": {"devices": )" << profile_json << "}}";
        return file;
    }
    std::unique_ptr<Mosquitto> start(const fs::path& config, const std::string& extra = "") {
        ListenerSpec l;
        l.security_profile = "devices";
        l.certfile = pki_->server_cert();
        l.keyfile = pki_->server_key();
        l.cafile = pki_->root();
        l.extra = extra;
        return std::make_unique<Mosquitto>(tmp_.path(), config, std::vector<ListenerSpec>{l});
    }
    std::string default_profile() const {
        return R"({"trust_anchors": [")" + pki_->root().string() + R"("], "crls": [")" +
               pki_->crl().string() + R"("]})";
    }

    TempDir tmp_;
    std::unique_ptr<TestPki> pki_;
};

TEST_F(MosquittoAuth, AcceptedClientGetsItsCnAsUsernameAndAclPatternsApply) {
    fs::path acl = tmp_ / "acl";
    std::ofstream(acl) << "pattern readwrite devices/%u/#\nuser monitor\ntopic read devices/#\n";
    auto broker = start(write_config(default_profile()), "acl_file " + acl.string());
    auto dev1 = pki_->client("dev-1");
    auto monitor_cert = pki_->client("monitor");

    MqttClient monitor(broker->port(), "monitor", pki_->root(), monitor_cert);
    ASSERT_EQ(monitor.connect(), "");
    monitor.subscribe("devices/#");
    MqttClient client(broker->port(), "dev-1", pki_->root(), dev1);
    ASSERT_EQ(client.connect(), "");
    EXPECT_TRUE(broker->wait_for_log("as 'dev-1'"));
    EXPECT_TRUE(broker->wait_for_log("u'dev-1'"));  // mosquitto's own view of the username

    client.publish("devices/dev-2/temp", "spoofed");  // not its own topic: dropped by the ACL
    client.publish("devices/dev-1/temp", "21.5");
    auto msg = monitor.next_message(5s);
    ASSERT_TRUE(msg.has_value());
    EXPECT_EQ(*msg, "devices/dev-1/temp 21.5");
}

TEST_F(MosquittoAuth, TlsOnlyListenerWithoutSecurityProfileLetsAnonymousClientsIn) {
    ListenerSpec mtls;
    mtls.security_profile = "devices";
    mtls.certfile = pki_->server_cert();
    mtls.keyfile = pki_->server_key();
    mtls.cafile = pki_->root();
    ListenerSpec tls = mtls;
    tls.security_profile = "";
    tls.cafile.clear();
    tls.require_certificate = false;
    Mosquitto broker(tmp_.path(), write_config(default_profile()), {mtls, tls});

    MqttClient device(broker.port(0), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(device.connect(), "");
    device.subscribe("public/#");
    MqttClient anonymous(broker.port(1), "anon-1", pki_->root(), {});
    ASSERT_EQ(anonymous.connect(), "");  // server-authenticated TLS only, no client certificate
    anonymous.publish("public/x", "hello");
    EXPECT_EQ(device.next_message(5s).value_or("none"), "public/x hello");
}

TEST_F(MosquittoAuth, RevokedClientIsRejectedWithReasonInLog) {
    auto dev1 = pki_->client("dev-1");
    pki_->revoke(dev1);
    auto broker = start(write_config(default_profile()));
    MqttClient client(broker->port(), "dev-1", pki_->root(), dev1);
    EXPECT_NE(client.connect(), "");
    EXPECT_TRUE(broker->wait_for_log("rejected client 'dev-1' (subject 'CN=dev-1'"));
    EXPECT_TRUE(broker->wait_for_log("revoked: serial"));
}

TEST_F(MosquittoAuth, CrlUpdateDisconnectsThatClientOnlyAndItCannotReconnect) {
    auto dev1 = pki_->client("dev-1");
    auto dev2 = pki_->client("dev-2");
    auto broker = start(write_config(default_profile()));
    MqttClient c1(broker->port(), "dev-1", pki_->root(), dev1);
    MqttClient c2(broker->port(), "dev-2", pki_->root(), dev2);
    ASSERT_EQ(c1.connect(), "");
    ASSERT_EQ(c2.connect(), "");

    auto t0 = std::chrono::steady_clock::now();
    pki_->revoke(dev1);
    EXPECT_TRUE(c1.wait_disconnected(3s));
    auto elapsed = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(broker->wait_for_log("disconnecting client 'dev-1'"));
    EXPECT_TRUE(c2.connected());
    RecordProperty(
        "revocation_to_disconnect_ms",
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));

    MqttClient again(broker->port(), "dev-1", pki_->root(), dev1);
    EXPECT_NE(again.connect(), "");
    // The other client still works end to end.
    c2.subscribe("t/#");
    c2.publish("t/x", "still here");
    EXPECT_EQ(c2.next_message(5s).value_or(""), "t/x still here");
}

TEST_F(MosquittoAuth, BadConfigAtStartStopsTheBrokerWithTheReason) {
    fs::path config = tmp_ / "brokertls.json";
    std::ofstream(config)
        << R"({"security_profiles": {"devices": {"trust_anchors": ["missing.pem"]}}})";
    std::string log = mosquitto_start_failure(tmp_.path(), config, "devices");
    EXPECT_EQ(log.find("STILL RUNNING"), std::string::npos) << log;
    EXPECT_NE(
        log.find("brokertls.json: security_profiles.devices.trust_anchors[0]: file not found"),
        std::string::npos)
        << log;
}

}  // namespace
}  // namespace brokertls::test
