// Server certificate hot reload in a real mosquitto: the plugin deploys new material and raises
// SIGHUP; new handshakes see the new certificate while connected clients carry on.

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/store/files.hpp"
#include "mosquitto_fixture.hpp"
#include "pki.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The fingerprint of the certificate the broker serves to a new handshake, as openssl sees it.
std::string served_fingerprint(int port, const ClientCert& client) {
    auto r = run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-cert",
                  client.cert.string(), "-key", client.key.string()},
                 "", 10s);
    auto begin = r.out.find("-----BEGIN CERTIFICATE-----");
    if (begin == std::string::npos) return "no certificate: " + r.err;
    return Certificate::parse(r.out.substr(begin), "s_client output").fingerprint_sha256();
}

bool wait_served(int port, const ClientCert& client, const std::string& fingerprint,
                 std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (served_fingerprint(port, client) == fingerprint) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

enum class Shape { WithCrlFile, WithoutCrlFile };

class ServerRotation : public ::testing::TestWithParam<Shape> {
  protected:
    void SetUp() override {
        pki_ = std::make_unique<TestPki>(tmp_.path());
        client_ = pki_->client("dev-1");
        fs::create_directories(tmp_ / "src");
        fs::create_directories(tmp_ / "live");
    }
    // A new server certificate for localhost/127.0.0.1 from the test CA, copied into src/.
    std::string new_source_certificate(const std::string& name) {
        auto issued = pki_->open().issue({{CertificateProfile::Server,
                                           "localhost",
                                           name,
                                           {classify_name("localhost"), classify_name("127.0.0.1")},
                                           30,
                                           KeyType::EcP256}},
                                         tmp_ / "issued", Overwrite::Refuse);
        // Key first, then certificate, as certbot and most tools write them.
        write_file_atomic(tmp_ / "src/server.key", read_file(issued[0].key), kPrivateMode);
        write_file_atomic(tmp_ / "src/server.crt", read_file(issued[0].chain));
        return issued[0].entry.fingerprint;
    }
    std::unique_ptr<Mosquitto> start(const std::string& certificate_profile_json) {
        fs::path config = tmp_ / "brokertls.json";
        std::ofstream(config) << R"({"certificate_profiles": {"broker": )"
                              << certificate_profile_json
                              << R"(}, "security_profiles": {"devices": {"trust_anchors": [")"
                              << pki_->root().string() << R"("]}}})";
        ListenerSpec l;
        l.security_profile = "devices";
        l.certfile = tmp_ / "live/broker.crt";
        l.keyfile = tmp_ / "live/broker.key";
        l.cafile = pki_->root();
        if (GetParam() == Shape::WithCrlFile) l.crlfile = pki_->crl();
        return std::make_unique<Mosquitto>(tmp_.path(), config, std::vector<ListenerSpec>{l});
    }
    // Mosquitto 2.0 with per_listener_settings sends no TICK: brokertls's log lines from the
    // watcher reach the log at the broker's next event, here a client connecting (2.1 logs them
    // on TICK; the probes only wait there).
    bool wait_for_logged(Mosquitto& broker, const std::string& text) {
        return eventually(
            [&] {
                MqttClient probe(broker.port(), "dev-1", pki_->root(), client_);
                probe.connect();
                return broker.log().find(text) != std::string::npos;
            },
            10s, 100ms);
    }
    std::string files_profile() const {
        return R"({"source": "files", "files": {"key": "src/server.key", "cert": "src/server.crt"},
                   "names": ["localhost", "127.0.0.1"], "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}})";
    }

    TempDir tmp_;
    std::unique_ptr<TestPki> pki_;
    ClientCert client_;
};

TEST_P(ServerRotation, FilesSourceRotatesWithoutDroppingConnectedClients) {
    std::string first = new_source_certificate("first");
    auto broker = start(files_profile());
    EXPECT_EQ(served_fingerprint(broker->port(), client_), first);
    EXPECT_EQ(fs::status(tmp_ / "live/broker.key").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);

    MqttClient before(broker->port(), "dev-1", pki_->root(), client_);
    ASSERT_EQ(before.connect(), "");
    before.subscribe("t/#");

    std::string second = new_source_certificate("second");
    ASSERT_NE(first, second);
    EXPECT_TRUE(wait_served(broker->port(), client_, second, 5s)) << broker->log();
    EXPECT_TRUE(broker->wait_for_log("deployed CN=localhost (sha256 " + second));
    // Plain files, written in place: Mosquitto 2.1 refuses to follow symlinks for the files it
    // opens itself, and a deploy must not depend on which files those are.
    for (const char* deployed : {"live/broker.crt", "live/broker.key"})
        EXPECT_EQ(fs::symlink_status(tmp_ / deployed).type(), fs::file_type::regular) << deployed;

    // The client connected before the rotation is still there, both ways.
    EXPECT_TRUE(before.connected());
    before.publish("t/after", "rotation");
    EXPECT_EQ(before.next_message(5s).value_or("none"), "t/after rotation");
}

TEST_P(ServerRotation, BrokenNewCertificateIsRefusedAndTheOldOneStays) {
    std::string first = new_source_certificate("first");
    auto broker = start(files_profile());
    ASSERT_EQ(served_fingerprint(broker->port(), client_), first);

    // A key that does not match the certificate.
    write_file_atomic(tmp_ / "src/server.key", PrivateKey::generate(KeyType::EcP256).to_pem(),
                      kPrivateMode);
    EXPECT_TRUE(wait_for_logged(*broker, "new certificate refused, the deployed one stays"))
        << broker->log();
    EXPECT_TRUE(broker->wait_for_log("does not match the certificate"));
    // A truncated certificate.
    std::string pem = read_file(tmp_ / "src/server.crt");
    write_file_atomic(tmp_ / "src/server.crt", pem.substr(0, pem.size() / 2));
    EXPECT_TRUE(wait_for_logged(*broker, "server.crt: ")) << broker->log();
    EXPECT_EQ(served_fingerprint(broker->port(), client_), first);
    EXPECT_TRUE(broker->running());
}

// The plugin signals the broker (which then re-reads its whole configuration) only to load new
// certificates. A refused certificate used to bring a reload for its log line, and 30 s later
// one every 250 ms, forever.
TEST_P(ServerRotation, ARefusedCertificateDoesNotReloadTheBroker) {
    new_source_certificate("first");
    auto broker = start(files_profile());
    write_file_atomic(tmp_ / "src/server.key", PrivateKey::generate(KeyType::EcP256).to_pem(),
                      kPrivateMode);
    ASSERT_TRUE(wait_for_logged(*broker, "new certificate refused, the deployed one stays"))
        << broker->log();
    // A window of several watcher rounds, observed through more client connections.
    EXPECT_FALSE(eventually(
        [&] {
            MqttClient probe(broker->port(), "dev-1", pki_->root(), client_);
            probe.connect();
            return broker->log().find("Reloading config") != std::string::npos;
        },
        1500ms, 100ms))
        << broker->log();
    // And a good certificate is deployed and signalled as before.
    std::string second = new_source_certificate("second");
    EXPECT_TRUE(wait_served(broker->port(), client_, second, 5s)) << broker->log();
    EXPECT_NE(broker->log().find("Reloading config"), std::string::npos);
}

TEST_P(ServerRotation, LocalCaProfileIsIssuedAtStartAndRenewedWhenDue) {
    // lifetime 2 min with renew_before 118 s: the first renewal is due a couple of seconds after
    // issue (notBefore is backdated one minute), without waiting minutes.
    auto broker = start(
        R"({"source": "local-ca", "local_ca": {"dir": ")" + pki_->dir().string() +
        R"(", "lifetime": "120s", "allow_client_trust_anchor": true}, "renew_before": "118s", "names": ["localhost", "127.0.0.1"],
                           "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}})");
    std::string first = Certificate::load(tmp_ / "live/broker.crt").fingerprint_sha256();
    EXPECT_EQ(served_fingerprint(broker->port(), client_), first);
    MqttClient before(broker->port(), "dev-1", pki_->root(), client_);
    ASSERT_EQ(before.connect(), "");

    size_t mark = broker->log_mark();
    ASSERT_TRUE(
        broker->wait_for_log_after(mark, "certificate profile broker: obtained: deployed", 15s))
        << broker->log();
    std::string renewed = served_fingerprint(broker->port(), client_);
    EXPECT_NE(renewed, first);
    EXPECT_TRUE(before.connected());
    // The renewal is recorded by the CA like any other certificate.
    EXPECT_TRUE(
        pki_->open().find(Certificate::load(tmp_ / "live/broker.crt").serial_hex()).has_value());
}

INSTANTIATE_TEST_SUITE_P(ListenerShapes, ServerRotation,
                         ::testing::Values(Shape::WithCrlFile, Shape::WithoutCrlFile),
                         [](const auto& p) {
                             return p.param == Shape::WithCrlFile ? "WithCrlFile"
                                                                  : "WithoutCrlFile";
                         });

}  // namespace
}  // namespace brokertls::test
