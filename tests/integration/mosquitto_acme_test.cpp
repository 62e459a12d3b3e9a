// End to end: mosquitto with the brokertls plugin starts with an `acme` certificate profile,
// serves a temporary certificate, obtains the real one from Pebble over http-01 (our built-in
// responder), a Paho client verifies the broker against Pebble's root, and a forced renewal
// (brokertls-ctl renew) is served without dropping the connected client.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/store/files.hpp"
#include "mosquitto_fixture.hpp"
#include "pebble_fixture.hpp"
#include "pki.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The leaf a new TLS handshake on `port` gets, as openssl sees it ("" when none).
std::string served_fingerprint(int port) {
    auto r = run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port)}, "", 10s);
    auto begin = r.out.find("-----BEGIN CERTIFICATE-----");
    if (begin == std::string::npos) return "";
    return Certificate::parse(r.out.substr(begin), "s_client output").fingerprint_sha256();
}

std::string deployed_fingerprint(const fs::path& cert) {
    return Certificate::load_chain(cert).front().fingerprint_sha256();
}

bool wait_served(int port, const fs::path& deployed_cert, std::chrono::milliseconds timeout) {
    return eventually(
        [&] { return served_fingerprint(port) == deployed_fingerprint(deployed_cert); }, timeout,
        100ms);
}

size_t count_of(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

class MosquittoAcme : public ::testing::Test {
  protected:
    void SetUp() override {
        PebbleOptions options;
        options.challtestsrv_http01 = false;  // our responder answers on Pebble's http-01 port
        pebble_ = std::make_unique<PebbleFixture>(options);
        write_file_atomic(tmp_ / "pebble-root.pem", pebble_->roots_pem());
        pki_ = std::make_unique<TestPki>(tmp_ / "pki");
        admin_ = pki_->client("admin");
        write_file_atomic(tmp_ / "brokertls.json", R"({
          "control": {"allow": ["admin"]},
          "security_profiles": {"devices": {"trust_anchors": [")" +
                                                       pki_->root().string() + R"("]}},
          "issuers": {"pebble": {"type": "acme", "directory": ")" +
                                                       pebble_->directory_url() + R"(",
            "ca_bundle": ")" + pebble_->ca_bundle().string() +
                                                       R"(", "email": "ops@example.com",
            "challenge": {"type": "http-01", "listen": "127.0.0.1:)" +
                                                       std::to_string(pebble_->http01_port()) +
                                                       R"("}}},
          "certificate_profiles": {"broker": {"source": "acme", "acme": {"issuer": "pebble"},
            "names": ["broker.test", "127.0.0.1"],
            "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}}}
        })");
        // Listener 0: TLS only, serving the acme profile. Listener 1: mTLS for brokertls-ctl.
        ListenerSpec tls;
        tls.certfile = tmp_ / "live/broker.crt";
        tls.keyfile = tmp_ / "live/broker.key";
        tls.require_certificate = false;
        ListenerSpec mtls;
        mtls.security_profile = "devices";
        mtls.certfile = pki_->server_cert();
        mtls.keyfile = pki_->server_key();
        mtls.cafile = pki_->root();
        broker_ = std::make_unique<Mosquitto>(tmp_.path(), tmp_ / "brokertls.json",
                                              std::vector<ListenerSpec>{tls, mtls});
    }

    RunResult ctl(const std::vector<std::string>& args) {
        std::vector<std::string> argv{ctl_binary(), "--port",     std::to_string(broker_->port(1)),
                                      "--ca",       pki_->root(), "--cert",
                                      admin_.cert,  "--key",      admin_.key,
                                      "--id",       "admin"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, "", 30s);
    }

    TempDir tmp_;
    std::unique_ptr<PebbleFixture> pebble_;
    std::unique_ptr<TestPki> pki_;
    ClientCert admin_;
    std::unique_ptr<Mosquitto> broker_;
};

TEST_F(MosquittoAcme, ObtainsFromPebbleServesItAndRenewsWithoutDroppingClients) {
    EXPECT_TRUE(broker_->wait_for_log("serving a temporary self-signed certificate", 5s))
        << broker_->log();
    ASSERT_TRUE(broker_->wait_for_log("certificate profile broker: obtained: deployed", 30s))
        << broker_->log();
    fs::path live = tmp_ / "live/broker.crt";
    ASSERT_TRUE(wait_served(broker_->port(0), live, 10s)) << broker_->log();
    auto chain = Certificate::load_chain(live);
    EXPECT_FALSE(chain.front().is_self_signed());
    EXPECT_TRUE(verifies(chain, pebble_->roots_pem()));
    EXPECT_EQ(fs::status(tmp_ / "live/broker.key").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);

    // A Paho client trusting only Pebble's root accepts the broker.
    MqttClient subscriber(broker_->port(0), "watcher", tmp_ / "pebble-root.pem", {});
    ASSERT_EQ(subscriber.connect(), "");
    // The retained event of the last renewal step is there for late subscribers.
    subscriber.subscribe("$SYS/broker/brokertls/events/broker");
    auto event = subscriber.next_message(5s);
    ASSERT_TRUE(event.has_value());
    EXPECT_NE(event->find("\"type\":\"obtained\""), std::string::npos) << *event;
    subscriber.subscribe("plant/#");

    auto status = ctl({"status", "--json"});
    ASSERT_EQ(status.exit_code, 0) << status.err;
    auto doc = nlohmann::json::parse(status.out)["data"]["certificate_profiles"]["broker"];
    EXPECT_EQ(doc["issuer"], "pebble");
    EXPECT_EQ(doc["last_result"], "obtained");
    EXPECT_EQ(doc["consecutive_failures"], 0);
    EXPECT_EQ(doc["temporary"], false);
    EXPECT_EQ(doc["fingerprint"], chain.front().fingerprint_sha256());

    // A forced renewal: a new certificate is served, the subscriber stays connected.
    std::string first = chain.front().fingerprint_sha256();
    size_t mark = broker_->log_mark();
    auto renew = ctl({"renew", "broker"});
    ASSERT_EQ(renew.exit_code, 0) << renew.err << renew.out;
    ASSERT_TRUE(broker_->wait_for_log_after(mark, "certificate profile broker: obtained", 30s))
        << broker_->log();
    ASSERT_TRUE(wait_served(broker_->port(0), live, 10s)) << broker_->log();
    EXPECT_NE(deployed_fingerprint(live), first);
    EXPECT_EQ(count_of(broker_->log(), "obtained: deployed"), 2u);

    MqttClient publisher(broker_->port(0), "sensor", tmp_ / "pebble-root.pem", {});
    ASSERT_EQ(publisher.connect(), "");
    publisher.publish("plant/t1", "after renewal");
    std::optional<std::string> got;
    // Skip the retained events of the renewal; the published message must arrive.
    for (int i = 0; i < 5 && !(got && got->rfind("plant/t1", 0) == 0); ++i)
        got = subscriber.next_message(5s);
    ASSERT_TRUE(got.has_value()) << "subscriber lost its connection across the renewal";
    EXPECT_EQ(*got, "plant/t1 after renewal");
    EXPECT_TRUE(subscriber.connected());

    auto unknown = ctl({"renew", "nope"});
    EXPECT_EQ(unknown.exit_code, 2);
    EXPECT_NE(unknown.err.find("no certificate profile 'nope'"), std::string::npos)
        << unknown.err;
}

}  // namespace
}  // namespace brokertls::test
