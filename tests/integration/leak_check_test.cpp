// The leak check (scripts/test --valgrind): Debian's mosquitto with the plugin of the normal
// build, run under valgrind's memcheck through a broker's life: start, accepted and refused mTLS
// clients, a CRL update that disconnects a revoked client, a server certificate rotation (files
// profile), a $CONTROL getStatus, and a clean stop (SIGTERM). Valgrind must find no memory error
// and no definite or indirect leak; the fixture's suppressions cover only allocations that
// mosquitto and the libraries it loads make for themselves (see mosquitto_fixture.cpp).
//
// Valgrind makes everything 20-50 times slower: every wait here is bounded, and generous.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "brokertls/store/files.hpp"
#include "mosquitto_fixture.hpp"
#include "pki.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

constexpr auto kWait = 120s;

// A new server certificate for localhost/127.0.0.1 in src/, key first as most tools write
// them; returns its fingerprint.
std::string new_server_source(TestPki& pki, const fs::path& dir, const std::string& name) {
    auto issued = pki.open().issue({{CertificateProfile::Server,
                                     "localhost",
                                     name,
                                     {classify_name("localhost"), classify_name("127.0.0.1")},
                                     30,
                                     KeyType::EcP256}},
                                   dir / "issued", Overwrite::Refuse);
    write_file_atomic(dir / "src/server.key", read_file(issued[0].key), kPrivateMode);
    write_file_atomic(dir / "src/server.crt", read_file(issued[0].chain));
    return issued[0].entry.fingerprint;
}

TEST(LeakCheck, BrokerLifeUnderValgrindLosesNothingAndHasNoMemoryErrors) {
    TempDir tmp;
    TestPki pki(tmp.path());
    TestPki foreign(tmp / "foreign", "foreign CA");
    auto dev1 = pki.client("dev-1");
    auto dev2 = pki.client("dev-2");
    auto admin = pki.client("admin");
    auto revoked = pki.client("dev-old");
    auto dev3 = pki.client("dev-3");
    pki.revoke(revoked);
    auto stranger = foreign.client("dev-9");

    fs::create_directories(tmp / "src");
    fs::create_directories(tmp / "live");
    new_server_source(pki, tmp.path(), "first");
    json config = {{"control", {{"allow", json::array({"admin"})}}},
                   {"certificate_profiles",
                    {{"broker",
                      {{"source", "files"},
                       {"files", {{"key", "src/server.key"}, {"cert", "src/server.crt"}}},
                       {"names", json::array({"localhost", "127.0.0.1"})},
                       {"deploy", {{"cert", "live/broker.crt"}, {"key", "live/broker.key"}}}}}}},
                   {"security_profiles",
                    {{"devices",
                      {{"trust_anchors", json::array({pki.root().string()})},
                       {"crls", json::array({pki.crl().string()})}}}}}};
    write_file_atomic(tmp / "brokertls.json", config.dump(2));
    // The listener trusts both roots, so the foreign client passes the handshake and reaches
    // the plugin, which refuses it.
    write_file_atomic(tmp / "both-roots.pem", read_file(pki.root()) + read_file(foreign.root()));
    ListenerSpec l;
    l.security_profile = "devices";
    l.certfile = tmp / "live/broker.crt";
    l.keyfile = tmp / "live/broker.key";
    l.cafile = tmp / "both-roots.pem";
    Mosquitto broker(tmp.path(), tmp / "brokertls.json", {l}, "", Instrument::Valgrind);

    // Accepted.
    MqttClient c1(broker.port(), "dev-1", pki.root(), dev1);
    ASSERT_EQ(c1.connect(kWait), "");
    MqttClient c2(broker.port(), "dev-2", pki.root(), dev2);
    ASSERT_EQ(c2.connect(kWait), "");
    c1.subscribe("t/#");
    // Refused by the handshake (no certificate) and by the plugin (revoked, untrusted).
    EXPECT_NE(MqttClient(broker.port(), "nocert", pki.root(), {}).connect(kWait), "");
    EXPECT_NE(MqttClient(broker.port(), "dev-old", pki.root(), revoked).connect(kWait), "");
    EXPECT_TRUE(broker.wait_for_log("rejected client 'dev-old'", kWait)) << broker.log();
    EXPECT_NE(MqttClient(broker.port(), "dev-9", pki.root(), stranger).connect(kWait), "");
    EXPECT_TRUE(broker.wait_for_log("rejected client 'dev-9'", kWait)) << broker.log();

    // A CRL update disconnects the connected dev-2.
    pki.revoke(dev2);
    EXPECT_TRUE(c2.wait_disconnected(kWait));
    EXPECT_TRUE(broker.wait_for_log("disconnecting client 'dev-2'", kWait)) << broker.log();

    // A server certificate rotation: deployed, SIGHUP, new clients get in.
    size_t mark = broker.log_mark();
    std::string second = new_server_source(pki, tmp.path(), "second");
    EXPECT_TRUE(broker.wait_for_log_after(mark, "deployed CN=localhost (sha256 " + second, kWait))
        << broker.log();
    EXPECT_TRUE(broker.wait_for_log_after(mark, "Reloading config", kWait)) << broker.log();
    MqttClient c3(broker.port(), "dev-3", pki.root(), dev3);
    EXPECT_EQ(c3.connect(kWait), "");

    // $CONTROL getStatus, as the administrator.
    auto status = run({ctl_binary(), "--port", std::to_string(broker.port()), "--ca",
                       pki.root().string(), "--cert", admin.cert.string(), "--key",
                       admin.key.string(), "--id", "admin", "--timeout", "120", "status", "--json"},
                      "", 180s);
    ASSERT_EQ(status.exit_code, 0) << status.err << broker.log();
    EXPECT_EQ(json::parse(status.out)["command"], "getStatus");

    // The connected clients still work end to end.
    c1.publish("t/x", "still here");
    EXPECT_EQ(c1.next_message(kWait).value_or("none"), "t/x still here");

    // A clean stop with clients connected; then valgrind's verdict.
    EXPECT_EQ(broker.stop(), 0);
    std::string log = broker.log();
    EXPECT_NE(log.find("ERROR SUMMARY: 0 errors"), std::string::npos) << log;
    // Proof that valgrind checked the heap at exit (the verdict above is not vacuous).
    EXPECT_TRUE(log.find("LEAK SUMMARY:") != std::string::npos ||
                log.find("All heap blocks were freed") != std::string::npos)
        << log;
}

}  // namespace
}  // namespace brokertls::test
