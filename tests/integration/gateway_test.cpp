// brokertls-gateway in front of real brokers that load no brokertls plugin and speak no TLS:
// Debian's mosquitto 2.0 (connect_rewrite) and the vendored Mosquitto 2.1 (proxy_v2), with real
// Paho C++ clients and hand-made TLS connections, on 127.0.0.1.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <regex>
#include <thread>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/handles.hpp"
#include "brokertls/store/files.hpp"
#include "gateway_fixture.hpp"
#include "mosquitto_fixture.hpp"
#include "pki.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using nlohmann::json;
namespace fs = std::filesystem;

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// A TLS connection made by hand, to send what no MQTT client would.
class RawTls {
  public:
    RawTls(int port, const ClientCert& cert) : ctx_(SSL_CTX_new(TLS_client_method())) {
        // The gateway may close before the handshake is written (a refused connection): an
        // error to see, not a signal that ends the test program.
        ::signal(SIGPIPE, SIG_IGN);
        if (!cert.cert.empty() &&
            (SSL_CTX_use_certificate_chain_file(ctx_.get(), cert.cert.c_str()) != 1 ||
             SSL_CTX_use_PrivateKey_file(ctx_.get(), cert.key.c_str(), SSL_FILETYPE_PEM) != 1))
            throw std::runtime_error("cannot load the client certificate");
        bio_.reset(BIO_new_ssl_connect(ctx_.get()));
        std::string target = "127.0.0.1:" + std::to_string(port);
        BIO_set_conn_hostname(bio_.get(), target.c_str());
        if (BIO_do_connect(bio_.get()) != 1 || BIO_do_handshake(bio_.get()) != 1)
            throw std::runtime_error("TLS handshake with the gateway failed");
        int fd = -1;
        BIO_get_fd(bio_.get(), &fd);
        timeval tv{10, 0};  // bounds every read below
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    void send(const std::string& bytes) {
        if (BIO_write(bio_.get(), bytes.data(), static_cast<int>(bytes.size())) !=
            static_cast<int>(bytes.size()))
            throw std::runtime_error("TLS write failed");
        BIO_flush(bio_.get());
    }
    // What the gateway answers until it closes (or 10 s pass: then nullopt).
    std::optional<std::string> read_until_closed() {
        std::string out;
        char buffer[512];
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            errno = 0;
            int n = BIO_read(bio_.get(), buffer, sizeof buffer);
            if (n > 0) {
                out.append(buffer, static_cast<std::size_t>(n));
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;  // SO_RCVTIMEO
            if (!BIO_should_retry(bio_.get())) return out;
        }
        return std::nullopt;
    }

  private:
    std::unique_ptr<SSL_CTX, OpenSslDeleter<SSL_CTX_free>> ctx_;
    BioPtr bio_;
};

std::string u16(std::size_t n) {
    return {static_cast<char>(n >> 8), static_cast<char>(n & 0xff)};
}
std::string mqtt_string(const std::string& s) {
    return u16(s.size()) + s;
}
// An MQTT 3.1.1 CONNECT with client id `id` and these connect flags.
std::string connect_packet(const std::string& id, char flags = 0x02) {
    std::string body =
        mqtt_string("MQTT") + "\x04" + std::string(1, flags) + u16(60) + mqtt_string(id);
    return "\x10" + std::string(1, static_cast<char>(body.size())) + body;
}

class Gateway : public ::testing::Test {
  protected:
    void SetUp() override { pki_ = std::make_unique<TestPki>(tmp_.path()); }

    // brokertls.json: security profile "devices" (the test CA and its CRL), certificate
    // profile "server" (localhost, 127.0.0.1), one listener "mqtt" to `upstream`.
    json config(int upstream, const std::string& identity = "connect_rewrite") const {
        json c;
        c["security_profiles"]["devices"] = {{"trust_anchors", {pki_->root().string()}},
                                             {"crls", {pki_->crl().string()}}};
        c["certificate_profiles"]["server"] = {
            {"source", "files"},
            {"files",
             {{"key", pki_->server_key().string()}, {"cert", pki_->server_cert().string()}}},
            {"deploy",
             {{"cert", (tmp_ / "served.crt").string()}, {"key", (tmp_ / "served.key").string()}}}};
        c["gateway"] = {{"listeners",
                         {{{"name", "mqtt"},
                           {"listen", "127.0.0.1:0"},
                           {"certificates", {"server"}},
                           {"security_profile", "devices"},
                           {"upstream", "127.0.0.1:" + std::to_string(upstream)},
                           {"identity", identity}}}},
                        {"status", {{"listen", "127.0.0.1:0"}}},
                        {"limits", {{"first_packet_timeout", "2s"}}},
                        {"drain_timeout", "2s"}};
        return c;
    }
    // Mosquitto 2.0 without brokertls: anonymous TCP, usernames only through the gateway,
    // publishing only where `%u` (the username the gateway set) allows.
    std::unique_ptr<PlainBroker> plain_mosquitto20() {
        fs::path acl = tmp_ / "acl";
        std::ofstream(acl)
            << "pattern readwrite devices/%u/#\nuser monitor\ntopic read devices/#\n";
        return std::make_unique<PlainBroker>(tmp_.path(), "mosquitto",
                                             "allow_anonymous true\nacl_file " + acl.string());
    }

    TempDir tmp_;
    std::unique_ptr<TestPki> pki_;
};

TEST_F(Gateway, ConnectRewriteGivesTheBrokerTheIdentityAndAclPatternsApply) {
    auto broker = plain_mosquitto20();
    GatewayProcess gateway(tmp_.path(), config(broker->port()));
    int port = gateway.port("mqtt");

    MqttClient monitor(port, "monitor", pki_->root(), pki_->client("monitor"));
    ASSERT_EQ(monitor.connect(), "");
    monitor.subscribe("devices/#");
    MqttClient device(port, "dev-1", pki_->root(), pki_->client("dev-1"));
    device.credentials("admin", "secret");  // what the client claims: dropped by the gateway
    ASSERT_EQ(device.connect(), "");
    EXPECT_TRUE(broker->wait_for_log("as dev-1 (p2, c1, k60, u'dev-1')"));
    EXPECT_TRUE(gateway.wait_for_log("as 'dev-1'"));
    EXPECT_EQ(count(broker->log(), "u'admin'"), 0u);

    device.publish("devices/admin/temp", "spoofed");  // not its identity's topic: denied
    device.publish("devices/dev-1/temp", "21.5");
    auto msg = monitor.next_message(5s);
    ASSERT_TRUE(msg.has_value());
    EXPECT_EQ(*msg, "devices/dev-1/temp 21.5");

    auto status = gateway.status();
    EXPECT_EQ(status["gateway"]["connections_open"], 2);
    EXPECT_EQ(status["gateway"]["relayed"], 2);
    EXPECT_GT(status["gateway"]["bytes"]["from_clients"].get<long>(), 0);
    EXPECT_EQ(status["gateway"]["listeners"][0]["certificates"][0]["profile"], "server");
    EXPECT_TRUE(status["module"].is_object());
}

// An MQTT 5.0 client (mosquitto_pub) with CONNECT properties, a will and its own username: the
// rewritten CONNECT is one mosquitto takes, under the identity.
TEST_F(Gateway, Mqtt5ConnectWithPropertiesIsRewritten) {
    auto broker = plain_mosquitto20();
    GatewayProcess gateway(tmp_.path(), config(broker->port()));
    auto dev1 = pki_->client("dev-1");
    MqttClient monitor(gateway.port("mqtt"), "monitor", pki_->root(), pki_->client("monitor"));
    ASSERT_EQ(monitor.connect(), "");
    monitor.subscribe("devices/#");
    auto r = run({"mosquitto_pub",
                  "-h",
                  "127.0.0.1",
                  "-p",
                  std::to_string(gateway.port("mqtt")),
                  "--cafile",
                  pki_->root().string(),
                  "--cert",
                  dev1.cert.string(),
                  "--key",
                  dev1.key.string(),
                  "-V",
                  "mqttv5",
                  "-i",
                  "dev-1",
                  "-u",
                  "admin",
                  "-P",
                  "secret",
                  "-D",
                  "connect",
                  "session-expiry-interval",
                  "60",
                  "-D",
                  "connect",
                  "user-property",
                  "site",
                  "lab",
                  "--will-topic",
                  "devices/dev-1/status",
                  "--will-payload",
                  "gone",
                  "-q",
                  "1",
                  "-t",
                  "devices/dev-1/v5",
                  "-m",
                  "hello"},
                 "", 20s);
    EXPECT_EQ(r.exit_code, 0) << describe(r) << gateway.log();
    EXPECT_TRUE(broker->wait_for_log("as dev-1 (p5, c1, k60, u'dev-1')")) << broker->log();
    EXPECT_EQ(monitor.next_message(5s), "devices/dev-1/v5 hello");
    EXPECT_EQ(count(broker->log(), "u'admin'"), 0u);
}

// identity "none": TLS only. Without a security profile no client certificate is asked for,
// and the CONNECT goes to the broker as sent (its username included): the broker decides.
TEST_F(Gateway, IdentityNoneRelaysTheConnectUntouched) {
    auto broker = plain_mosquitto20();
    json c = config(broker->port(), "none");
    c["gateway"]["listeners"][0].erase("security_profile");
    GatewayProcess gateway(tmp_.path(), c);
    MqttClient client(gateway.port("mqtt"), "anyone", pki_->root(), ClientCert{});
    client.credentials("someone", "secret");
    ASSERT_EQ(client.connect(), "") << gateway.log();
    EXPECT_TRUE(broker->wait_for_log("as anyone (p2, c1, k60, u'someone')")) << broker->log();
}

TEST_F(Gateway, RejectedClientsNeverReachTheBroker) {
    auto broker = plain_mosquitto20();
    TempDir other_dir;
    TestPki other(other_dir.path(), "some other CA");
    auto revoked = pki_->client("dev-revoked");
    pki_->revoke(revoked);
    GatewayProcess gateway(tmp_.path(), config(broker->port()));
    int port = gateway.port("mqtt");
    std::size_t before = count(broker->log(), "New connection from");

    MqttClient no_cert(port, "dev-1", pki_->root(), ClientCert{});
    EXPECT_NE(no_cert.connect(5s), "");
    MqttClient untrusted(port, "dev-1", pki_->root(), other.client("dev-1"));
    EXPECT_NE(untrusted.connect(5s), "");
    MqttClient revoked_client(port, "dev-revoked", pki_->root(), revoked);
    EXPECT_NE(revoked_client.connect(5s), "");
    MqttClient wrong_id(port, "someone-else", pki_->root(), pki_->client("dev-2"));
    EXPECT_NE(wrong_id.connect(5s), "");

    // Paho tries MQTT 3.1.1, then 3.1 (refused as bad_connect): a reason may count twice.
    auto status = gateway.status();
    const auto& refused = status["gateway"]["refused"];
    EXPECT_GE(refused.value("no_certificate", 0), 1) << refused.dump();
    EXPECT_GE(refused.value("untrusted", 0), 1) << refused.dump();
    EXPECT_GE(refused.value("revoked", 0), 1) << refused.dump();
    EXPECT_GE(refused.value("client_id_mismatch", 0), 1) << refused.dump();
    EXPECT_TRUE(gateway.wait_for_log("no_certificate: the client sent no certificate"));
    EXPECT_TRUE(gateway.wait_for_log("the client id is not the identity 'dev-2'"));
    EXPECT_EQ(count(broker->log(), "New connection from"), before) << broker->log();

    // The same gateway and broker let a valid client in: the refusals were the certificates'.
    MqttClient valid(port, "dev-3", pki_->root(), pki_->client("dev-3"));
    EXPECT_EQ(valid.connect(), "");
    EXPECT_TRUE(broker->wait_for_log("u'dev-3'"));
}

TEST_F(Gateway, ClientRevokedWhileConnectedIsCutOff) {
    auto broker = plain_mosquitto20();
    GatewayProcess gateway(tmp_.path(), config(broker->port()));
    auto dev1 = pki_->client("dev-1");
    auto dev2 = pki_->client("dev-2");
    MqttClient one(gateway.port("mqtt"), "dev-1", pki_->root(), dev1);
    MqttClient two(gateway.port("mqtt"), "dev-2", pki_->root(), dev2);
    ASSERT_EQ(one.connect(), "");
    ASSERT_EQ(two.connect(), "");

    pki_->revoke(dev1);  // rewrites the CRL the security profile reads
    EXPECT_TRUE(one.wait_disconnected(10s)) << gateway.log();
    EXPECT_TRUE(gateway.wait_for_log("its certificate is no longer accepted"));
    EXPECT_TRUE(two.connected());
    EXPECT_EQ(gateway.status()["gateway"]["kicked"], 1);
    // And it cannot come back.
    MqttClient again(gateway.port("mqtt"), "dev-1", pki_->root(), dev1);
    EXPECT_NE(again.connect(5s), "");
}

TEST_F(Gateway, MalformedOrMissingConnectIsRefusedBeforeTheBroker) {
    auto broker = plain_mosquitto20();
    GatewayProcess gateway(tmp_.path(), config(broker->port()));
    int port = gateway.port("mqtt");
    auto dev1 = pki_->client("dev-1");
    std::size_t before = count(broker->log(), "New connection from");

    {
        RawTls raw(port, dev1);
        raw.send(connect_packet("dev-1", 0x03));  // the reserved flag set
        EXPECT_EQ(raw.read_until_closed(), "");
    }
    {
        RawTls raw(port, dev1);
        raw.send("\x10\xff\xff\xff\x7f");  // a 256 MiB CONNECT announced
        EXPECT_EQ(raw.read_until_closed(), "");
    }
    {
        RawTls raw(port, dev1);
        raw.send("\x30\x02\x00\x00"s);  // a PUBLISH first
        EXPECT_EQ(raw.read_until_closed(), "");
    }
    {
        RawTls raw(port, dev1);  // says nothing: closed after first_packet_timeout (2 s)
        EXPECT_EQ(raw.read_until_closed(), "");
    }
    EXPECT_TRUE(gateway.wait_for_log("the reserved connect flag is set"));
    EXPECT_TRUE(gateway.wait_for_log("more than the 16384 allowed"));
    EXPECT_TRUE(gateway.wait_for_log("the first packet is not a CONNECT"));
    EXPECT_TRUE(gateway.wait_for_log("no CONNECT within the first_packet_timeout"));
    EXPECT_EQ(count(broker->log(), "New connection from"), before) << broker->log();
    auto refused = gateway.status()["gateway"]["refused"];
    EXPECT_EQ(refused.value("bad_connect", 0), 3) << refused.dump();
    EXPECT_EQ(refused.value("first_packet_timeout", 0), 1) << refused.dump();

    // A well-formed CONNECT by the same means reaches the broker, under the identity.
    RawTls raw(port, dev1);
    raw.send(connect_packet("dev-1"));
    EXPECT_TRUE(broker->wait_for_log("u'dev-1'"));
}

TEST_F(Gateway, SniPicksTheCertificateProfile) {
    auto broker = plain_mosquitto20();
    auto other = pki_->open().issue({{CertificateProfile::Server,
                                      "mqtt.example.test",
                                      "",
                                      {classify_name("mqtt.example.test")},
                                      30,
                                      KeyType::EcP256}},
                                    tmp_ / "other", Overwrite::Refuse);
    auto wild = pki_->open().issue({{CertificateProfile::Server,
                                     "wildcard",
                                     "",
                                     {classify_name("*.wild.test")},
                                     30,
                                     KeyType::EcP256}},
                                   tmp_ / "wild", Overwrite::Refuse);
    json c = config(broker->port());
    for (auto [name, files] : {std::pair{"other", other[0]}, std::pair{"wild", wild[0]}}) {
        std::string n = name;
        c["certificate_profiles"][n] = {
            {"source", "files"},
            {"files", {{"key", files.key.string()}, {"cert", files.chain.string()}}},
            {"deploy",
             {{"cert", (tmp_ / (n + ".crt")).string()}, {"key", (tmp_ / (n + ".key")).string()}}}};
    }
    c["gateway"]["listeners"][0]["certificates"] = {"server", "other", "wild"};
    GatewayProcess gateway(tmp_.path(), c);
    auto subject = [&](const std::string& servername) {
        std::vector<std::string> argv{"openssl", "s_client", "-connect",
                                      "127.0.0.1:" + std::to_string(gateway.port("mqtt"))};
        if (!servername.empty()) {
            argv.push_back("-servername");
            argv.push_back(servername);
        } else {
            argv.push_back("-noservername");
        }
        auto r = run(argv, "", 15s);
        std::smatch m;
        std::regex_search(r.out, m, std::regex("subject=([^\n]*)"));
        return m.empty() ? "(none) " + describe(r) : m[1].str();
    };
    EXPECT_EQ(subject("mqtt.example.test"), "CN = mqtt.example.test");
    EXPECT_EQ(subject("MQTT.Example.Test"), "CN = mqtt.example.test");
    EXPECT_EQ(subject("a.wild.test"), "CN = wildcard");
    EXPECT_EQ(subject("a.b.wild.test"), "CN = localhost");  // one label only
    EXPECT_EQ(subject("localhost"), "CN = localhost");
    EXPECT_EQ(subject("unknown.test"), "CN = localhost");  // the first is the default
    EXPECT_EQ(subject(""), "CN = localhost");

    // The CertificateRequest names the security profile's CA, for clients with several
    // certificates.
    auto r = run(
        {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(gateway.port("mqtt"))},
        "", 15s);
    EXPECT_NE(r.out.find("Acceptable client certificate CA names\nCN = brokertls test CA"),
              std::string::npos)
        << r.out;
}

TEST_F(Gateway, ANewCertificateGoesToTheNextHandshakeWhileConnectionsStay) {
    auto broker = plain_mosquitto20();
    GatewayProcess gateway(tmp_.path(), config(broker->port()));
    int port = gateway.port("mqtt");
    auto served = [&] {
        auto r = run({"sh", "-c",
                      "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                          " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"},
                     "", 15s);
        auto fp = normalize_fingerprint(r.out.substr(r.out.find('=') + 1, 95));
        return fp.value_or("(none) " + describe(r));
    };
    std::string old_fp = Certificate::load(pki_->server_cert()).fingerprint_sha256();
    ASSERT_EQ(served(), old_fp);
    MqttClient device(port, "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(device.connect(), "");
    device.subscribe("devices/dev-1/#");

    // The operator (certbot, say) puts a new pair where the "files" profile reads it.
    auto fresh = pki_->open().issue({{CertificateProfile::Server,
                                      "localhost",
                                      "",
                                      {classify_name("localhost"), classify_name("127.0.0.1")},
                                      30,
                                      KeyType::EcP256}},
                                    tmp_ / "fresh", Overwrite::Refuse);
    std::string new_fp = Certificate::load(fresh[0].cert).fingerprint_sha256();
    write_file_atomic(pki_->server_key(), read_file(fresh[0].key));
    write_file_atomic(pki_->server_cert(), read_file(fresh[0].chain));
    ASSERT_TRUE(gateway.wait_for_log("now serves sha256 " + new_fp, 15s)) << gateway.log();
    EXPECT_EQ(served(), new_fp);

    // The connection made before the swap goes on with its own context.
    EXPECT_TRUE(device.connected());
    device.publish("devices/dev-1/temp", "22");
    EXPECT_EQ(device.next_message(5s), "devices/dev-1/temp 22");
    EXPECT_EQ(gateway.status()["gateway"]["listeners"][0]["certificates"][0]["sha256"], new_fp);
}

// Three certificate swaps while a client publishes without pause: no message lost, no
// connection dropped, and clients connecting between swaps get in.
TEST_F(Gateway, RotationUnderLoadDropsNothing) {
    auto broker = plain_mosquitto20();
    GatewayProcess gateway(tmp_.path(), config(broker->port()));
    int port = gateway.port("mqtt");
    MqttClient monitor(port, "monitor", pki_->root(), pki_->client("monitor"));
    ASSERT_EQ(monitor.connect(), "");
    monitor.subscribe("devices/#");
    MqttClient publisher(port, "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(publisher.connect(), "");

    std::atomic<bool> done{false};
    std::atomic<int> sent{0};
    std::thread load([&] {
        while (!done) publisher.publish("devices/dev-1/n", std::to_string(sent++));
    });
    for (int round = 0; round < 3; ++round) {
        auto fresh =
            pki_->open().issue({{CertificateProfile::Server,
                                 "localhost",
                                 "",
                                 {classify_name("localhost"), classify_name("127.0.0.1")},
                                 30,
                                 KeyType::EcP256}},
                               tmp_ / ("fresh" + std::to_string(round)), Overwrite::Refuse);
        std::string fp = Certificate::load(fresh[0].cert).fingerprint_sha256();
        write_file_atomic(pki_->server_key(), read_file(fresh[0].key));
        write_file_atomic(pki_->server_cert(), read_file(fresh[0].chain));
        EXPECT_TRUE(gateway.wait_for_log("now serves sha256 " + fp, 15s)) << gateway.log();
        std::string id = "dev-new-" + std::to_string(round);
        MqttClient newcomer(port, id, pki_->root(), pki_->client(id));
        EXPECT_EQ(newcomer.connect(), "");
    }
    done = true;
    load.join();
    ASSERT_GT(sent.load(), 10);
    std::cout << sent.load() << " messages published across the swaps\n";
    for (int i = 0; i < sent.load(); ++i) {
        auto msg = monitor.next_message(5s);
        ASSERT_EQ(msg, "devices/dev-1/n " + std::to_string(i)) << "of " << sent.load();
    }
    EXPECT_TRUE(publisher.connected());
    EXPECT_TRUE(monitor.connected());
    EXPECT_EQ(gateway.status()["gateway"]["kicked"], 0);
}

TEST_F(Gateway, SighupReloadsWithoutDroppingConnections) {
    auto broker = plain_mosquitto20();
    GatewayProcess gateway(tmp_.path(), config(broker->port()));
    MqttClient device(gateway.port("mqtt"), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(device.connect(), "");
    ASSERT_EQ(::kill(gateway.process().pid(), SIGHUP), 0);
    EXPECT_TRUE(gateway.wait_for_log("configuration reloaded from")) << gateway.log();
    EXPECT_TRUE(device.connected());
    EXPECT_TRUE(gateway.process().running());
}

TEST_F(Gateway, LimitsCloseSlowAndExcessConnections) {
    auto broker = plain_mosquitto20();
    json c = config(broker->port());
    c["gateway"]["limits"]["per_address"] = 1;
    c["gateway"]["limits"]["handshake_timeout"] = "500ms";
    GatewayProcess gateway(tmp_.path(), c);
    int port = gateway.port("mqtt");
    auto dev1 = pki_->client("dev-1");

    RawTls first(port, dev1);  // holds the one connection 127.0.0.1 may have
    EXPECT_THROW(RawTls(port, dev1), std::runtime_error);
    EXPECT_EQ(gateway.status()["gateway"]["refused"].value("per_address", 0), 1);
    EXPECT_EQ(first.read_until_closed(), "");  // then its first_packet_timeout ends it

    // A TCP connection that never starts TLS is closed after handshake_timeout.
    ASSERT_TRUE(
        eventually([&] { return gateway.status()["gateway"]["connections_open"] == 0; }, 5s));
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte;
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(::recv(fd, &byte, 1, 0), 0);  // closed by the gateway, not timed out here
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    ::close(fd);
    EXPECT_EQ(gateway.status()["gateway"]["refused"].value("handshake_timeout", 0), 1);
}

TEST_F(Gateway, CheckOptionValidatesTheConfiguration) {
    json c = config(1883);
    std::ofstream(tmp_ / "brokertls.json") << c.dump();
    auto r = run({gateway_binary(), "--config", (tmp_ / "brokertls.json").string(), "--check"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    c["gateway"]["listeners"][0]["certificates"] = {"missing"};
    std::ofstream(tmp_ / "brokertls.json") << c.dump();
    r = run({gateway_binary(), "--config", (tmp_ / "brokertls.json").string(), "--check"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("gateway.listeners[0].certificates[0]: no certificate profile 'missing'"),
              std::string::npos)
        << r.err;
}

TEST_F(Gateway, SigtermDrainsAndStops) {
    auto broker = plain_mosquitto20();
    GatewayProcess gateway(tmp_.path(), config(broker->port()));
    MqttClient device(gateway.port("mqtt"), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(device.connect(), "");
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(gateway.process().stop(10s), 0) << gateway.log();
    // drain_timeout is 2 s: the open connection is closed then, not waited for.
    EXPECT_LT(std::chrono::steady_clock::now() - started, 8s);
    EXPECT_NE(gateway.log().find("draining 1 connections"), std::string::npos) << gateway.log();
    EXPECT_TRUE(device.wait_disconnected(5s));
}

// Mosquitto 2.1 reads the identity from the PROXY v2 header's SSL CN TLV.
TEST_F(Gateway, ProxyV2GivesMosquitto21TheIdentity) {
    if (mosquitto21_binary().empty()) GTEST_SKIP() << "built without BROKERTLS_MOSQUITTO21";
    PlainBroker broker(tmp_.path(), mosquitto21_binary(),
                       "enable_proxy_protocol 2\nproxy_protocol_v2_require_tls true\n"
                       "use_identity_as_username true\nrequire_certificate true\n"
                       // Without an authentication plugin 2.1 admits clients only with this;
                       // the two lines above still demand the header's certificate flags.
                       "allow_anonymous true");
    GatewayProcess gateway(tmp_.path(), config(broker.port(), "proxy_v2"));
    MqttClient device(gateway.port("mqtt"), "dev-1", pki_->root(), pki_->client("dev-1"));
    device.credentials("admin", "secret");  // ignored: the broker takes the header's identity
    ASSERT_EQ(device.connect(), "") << broker.log();
    EXPECT_TRUE(broker.wait_for_log("u'dev-1'")) << broker.log();
    EXPECT_EQ(count(broker.log(), "u'admin'"), 0u);
}

}  // namespace
}  // namespace brokertls::test
