// Rejections seen end to end: a real mosquitto with brokertls_mosquitto.so, real Paho C++
// clients, on 127.0.0.1. Each case asserts that the client is refused and why: either
// Mosquitto's own TLS handshake (OpenSSL verify against the listener's cafile) refuses it
// before the plugin sees anything, or the plugin logs its reason word.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/crl.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/signing.hpp"
#include "mosquitto_fixture.hpp"
#include "pki.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
namespace fs = std::filesystem;
using nlohmann::json;

constexpr auto kLogTimeout = 10s;

std::string read_file(const fs::path& file) {
    std::ifstream in(file);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const fs::path& file, const std::string& text) {
    // Write then rename, so the plugin's file watch never sees a half-written file.
    fs::path tmp = file;
    tmp += ".tmp";
    std::ofstream(tmp) << text;
    fs::rename(tmp, file);
}

Certificate leaf_of(const ClientCert& cert) {
    return Certificate::load_chain(cert.cert).at(0);
}

class MosquittoReject : public ::testing::Test {
  protected:
    void SetUp() override { pki_ = std::make_unique<TestPki>(tmp_.path()); }

    // brokertls.json with one profile per entry.
    fs::path write_config(const std::map<std::string, json>& profiles) {
        json config;
        config["security_profiles"] = json::object();
        for (const auto& [name, profile] : profiles) config["security_profiles"][name] = profile;
        fs::path file = tmp_ / "brokertls.json";
        write_file(file, config.dump(2));
        return file;
    }
    json default_profile() const {
        return json{{"trust_anchors", json::array({pki_->root().string()})},
                    {"crls", json::array({pki_->crl().string()})}};
    }
    ListenerSpec listener(const std::string& profile, const fs::path& cafile) const {
        ListenerSpec l;
        l.security_profile = profile;
        l.certfile = pki_->server_cert();
        l.keyfile = pki_->server_key();
        l.cafile = cafile;
        return l;
    }
    std::unique_ptr<Mosquitto> start(const fs::path& config, std::vector<ListenerSpec> listeners) {
        return std::make_unique<Mosquitto>(tmp_.path(), config, std::move(listeners));
    }
    std::unique_ptr<Mosquitto> start(const fs::path& config, const fs::path& cafile = {},
                                     const std::string& extra = "") {
        ListenerSpec l = listener("devices", cafile.empty() ? pki_->root() : cafile);
        l.extra = extra;
        return start(config, std::vector<ListenerSpec>{l});
    }

    // Concatenates PEM files into one bundle (a listener cafile with more than one CA).
    fs::path bundle(const std::string& name, const std::vector<fs::path>& files) {
        std::string text;
        for (const auto& f : files) text += read_file(f);
        fs::path out = tmp_ / name;
        write_file(out, text);
        return out;
    }

    // A key and certificate signed with sign_certificate; cert file holds `chain` after the leaf.
    ClientCert make_cert(const std::string& stem, const CertificateSpec& spec,
                         const PrivateKey& issuer_key, const Certificate& issuer,
                         const std::vector<Certificate>& chain = {}) {
        PrivateKey key = PrivateKey::generate(KeyType::EcP256);
        Certificate cert = sign_certificate(spec, key.get(), issuer_key, &issuer);
        ClientCert files{tmp_ / (stem + ".crt"), tmp_ / (stem + ".key")};
        std::string pem = cert.to_pem();
        for (const auto& c : chain) pem += c.to_pem();
        write_file(files.cert, pem);
        write_file(files.key, key.to_pem());
        return files;
    }
    static CertificateSpec spec(CertificateProfile profile, const std::string& cn,
                                Days not_before = Days(-1), Days not_after = Days(30)) {
        CertificateSpec s;
        s.profile = profile;
        s.common_name = cn;
        s.not_before = SystemClock::now() + not_before;
        s.not_after = SystemClock::now() + not_after;
        return s;
    }
    PrivateKey root_key() const { return PrivateKey::load(pki_->dir() / "root.key"); }
    Certificate root_cert() const { return Certificate::load(pki_->root()); }

    // The plugin's rejection line up to the reason word.
    static std::string rejected(const std::string& client_id, const ClientCert& cert,
                                const std::string& reason) {
        Certificate leaf = leaf_of(cert);
        return "rejected client '" + client_id + "' (subject '" + leaf.subject() + "', sha256 " +
               leaf.fingerprint_sha256() + "): " + reason + ": ";
    }
    static std::string accepted(const std::string& client_id) {
        return "accepted client '" + client_id + "'";
    }

    // Connect must fail; returns the error text for messages.
    static std::string expect_refused(Mosquitto& broker, const std::string& client_id,
                                      const fs::path& ca, const ClientCert& cert) {
        MqttClient client(broker.port(), client_id, ca, cert);
        std::string err = client.connect();
        EXPECT_NE(err, "") << client_id << " was let in";
        return err;
    }

    TempDir tmp_;
    std::unique_ptr<TestPki> pki_;
};

// The handshake (OpenSSL verify of require_certificate + cafile) refuses these before
// brokertls is asked, so the plugin must not have accepted them either.
TEST_F(MosquittoReject, HandshakeRefusesNoCertForeignCaExpiredAndNotYetValid) {
    TestPki foreign(tmp_ / "foreign", "foreign CA");
    auto broker = start(write_config({{"devices", default_profile()}}));

    expect_refused(*broker, "nocert", pki_->root(), ClientCert{});
    expect_refused(*broker, "foreign", pki_->root(), foreign.client("foreign"));
    auto key = root_key();
    auto root = root_cert();
    expect_refused(
        *broker, "expired", pki_->root(),
        make_cert("expired", spec(CertificateProfile::Client, "expired", Days(-30), Days(-1)), key,
                  root));
    expect_refused(
        *broker, "future", pki_->root(),
        make_cert("future", spec(CertificateProfile::Client, "future", Days(1), Days(30)), key,
                  root));

    // A good client afterwards proves the broker is up and the plugin logs acceptances.
    MqttClient good(broker->port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(good.connect(), "");
    EXPECT_TRUE(broker->wait_for_log(accepted("dev-1"), kLogTimeout));
    std::string log = broker->log();
    for (const char* id : {"nocert", "foreign", "expired", "future"})
        EXPECT_EQ(log.find(accepted(id)), std::string::npos) << id << "\n" << log;
}

// The listener's cafile trusts both CAs, the security profile only ours: the handshake lets the
// foreign client through and brokertls refuses it.
TEST_F(MosquittoReject, ForeignCaTrustedByListenerButNotByProfileIsUntrusted) {
    TestPki foreign(tmp_ / "foreign", "foreign CA");
    fs::path both = bundle("both-roots.pem", {pki_->root(), foreign.root()});
    auto broker = start(write_config({{"devices", default_profile()}}), both);

    auto stranger = foreign.client("dev-9");
    expect_refused(*broker, "dev-9", pki_->root(), stranger);
    EXPECT_TRUE(broker->wait_for_log(rejected("dev-9", stranger, "untrusted"), kLogTimeout))
        << broker->log();

    MqttClient ours(broker->port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    EXPECT_EQ(ours.connect(), "");
    EXPECT_TRUE(broker->wait_for_log(accepted("dev-1"), kLogTimeout));
}

TEST_F(MosquittoReject, ServerAuthOnlyCertificateIsRefused) {
    auto broker = start(write_config({{"devices", default_profile()}}));
    auto server_only =
        make_cert("srv", spec(CertificateProfile::Server, "dev-srv"), root_key(), root_cert());
    expect_refused(*broker, "dev-srv", pki_->root(), server_only);
    // Observed: OpenSSL in Mosquitto's handshake checks the ssl_client purpose and refuses an
    // EKU of serverAuth only; Mosquitto logs just "certificate verify failed", and brokertls
    // never sees the client (so no missing_eku here; see the no-EKU case below for that).
    EXPECT_TRUE(broker->wait_for_log("certificate verify failed", kLogTimeout)) << broker->log();
    std::string log = broker->log();
    EXPECT_EQ(log.find(accepted("dev-srv")), std::string::npos) << log;
    EXPECT_EQ(log.find("rejected client 'dev-srv'"), std::string::npos) << log;
}

// No extendedKeyUsage at all means "any purpose" to OpenSSL, so the handshake accepts it; the
// profile's required_eku (clientAuth) does not.
TEST_F(MosquittoReject, CertificateWithoutEkuPassesHandshakeButIsMissingEku) {
    auto broker = start(write_config({{"devices", default_profile()}}));
    ClientCert noeku{tmp_ / "noeku.crt", tmp_ / "noeku.key"};
    fs::path csr = tmp_ / "noeku.csr", ext = tmp_ / "noeku.ext";
    std::ofstream(ext) << "[v3]\nbasicConstraints=critical,CA:FALSE\n"
                          "keyUsage=critical,digitalSignature\n";
    auto req = run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", noeku.key.string(), "-subj",
                    "/CN=dev-noeku", "-out", csr.string()});
    ASSERT_EQ(req.exit_code, 0) << req.err;
    auto sign =
        run({"openssl", "x509", "-req", "-in", csr.string(), "-CA", pki_->root().string(), "-CAkey",
             (pki_->dir() / "root.key").string(), "-set_serial", "0x5eed0001", "-days", "30",
             "-extfile", ext.string(), "-extensions", "v3", "-out", noeku.cert.string()});
    ASSERT_EQ(sign.exit_code, 0) << sign.err;
    ASSERT_TRUE(leaf_of(noeku).extended_key_usage().empty());

    expect_refused(*broker, "dev-noeku", pki_->root(), noeku);
    EXPECT_TRUE(broker->wait_for_log(rejected("dev-noeku", noeku, "missing_eku"), kLogTimeout))
        << broker->log();
}

TEST_F(MosquittoReject, CaCertificatePresentedAsLeafIsRefused) {
    auto broker = start(write_config({{"devices", default_profile()}}));
    auto ca_leaf = make_cert("subca", spec(CertificateProfile::IntermediateCa, "sub CA"),
                             root_key(), root_cert());
    expect_refused(*broker, "subca", pki_->root(), ca_leaf);
    // Observed: the handshake lets it through (OpenSSL's ssl_client purpose check accepts this
    // CA:TRUE certificate as a client certificate); brokertls refuses it.
    EXPECT_TRUE(broker->wait_for_log(rejected("subca", ca_leaf, "ca_as_leaf"), kLogTimeout))
        << broker->log();
    EXPECT_EQ(broker->log().find(accepted("subca")), std::string::npos);
}

TEST_F(MosquittoReject, ChainDeeperThanMaxChainDepthIsChainTooDeep) {
    auto rkey = root_key();
    auto root = root_cert();
    PrivateKey ikey = PrivateKey::generate(KeyType::EcP256);
    Certificate inter = sign_certificate(spec(CertificateProfile::IntermediateCa, "sub CA"),
                                         ikey.get(), rkey, &root);
    fs::path anchors = tmp_ / "anchors.pem";
    write_file(anchors, root.to_pem() + inter.to_pem());
    auto deep =
        make_cert("deep", spec(CertificateProfile::Client, "dev-deep"), ikey, inter, {inter});

    json profile{{"trust_anchors", json::array({anchors.string()})}, {"max_chain_depth", 1}};
    auto broker = start(write_config({{"devices", profile}}), anchors);

    expect_refused(*broker, "dev-deep", pki_->root(), deep);
    EXPECT_TRUE(broker->wait_for_log(rejected("dev-deep", deep, "chain_too_deep"), kLogTimeout))
        << broker->log();
    EXPECT_TRUE(broker->wait_for_log("2 certificates above the leaf, max_chain_depth is 1"));

    // Directly under the root is one certificate above the leaf: within the limit.
    MqttClient shallow(broker->port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    EXPECT_EQ(shallow.connect(), "");
    EXPECT_TRUE(broker->wait_for_log(accepted("dev-1"), kLogTimeout));
}

TEST_F(MosquittoReject, FingerprintPinsDenyAndAllow) {
    auto dev1 = pki_->client("dev-1");
    auto dev2 = pki_->client("dev-2");
    auto dev3 = pki_->client("dev-3");
    json profile = default_profile();
    profile["deny_fingerprints"] = json::array({leaf_of(dev1).fingerprint_sha256()});
    // dev-1 is on both lists: the deny pin wins.
    profile["allow_fingerprints"] =
        json::array({leaf_of(dev1).fingerprint_sha256(), leaf_of(dev2).fingerprint_sha256()});
    auto broker = start(write_config({{"devices", profile}}));

    expect_refused(*broker, "dev-1", pki_->root(), dev1);
    EXPECT_TRUE(broker->wait_for_log(rejected("dev-1", dev1, "deny_pinned"), kLogTimeout))
        << broker->log();
    expect_refused(*broker, "dev-3", pki_->root(), dev3);
    EXPECT_TRUE(broker->wait_for_log(rejected("dev-3", dev3, "not_allow_pinned"), kLogTimeout))
        << broker->log();

    MqttClient allowed(broker->port(), "dev-2", pki_->root(), dev2);
    EXPECT_EQ(allowed.connect(), "");
    EXPECT_TRUE(broker->wait_for_log(accepted("dev-2"), kLogTimeout));
}

TEST_F(MosquittoReject, ClientIdMustMatchIdentity) {
    json profile = default_profile();
    profile["client_id_must_match_identity"] = true;
    auto broker = start(write_config({{"devices", profile}}));
    auto dev1 = pki_->client("dev-1");

    expect_refused(*broker, "dev-2", pki_->root(), dev1);
    EXPECT_TRUE(broker->wait_for_log(rejected("dev-2", dev1, "client_id_mismatch"), kLogTimeout))
        << broker->log();
    EXPECT_TRUE(broker->wait_for_log("client id 'dev-2' is not the identity 'dev-1'"));

    MqttClient right(broker->port(), "dev-1", pki_->root(), dev1);
    EXPECT_EQ(right.connect(), "");
    EXPECT_TRUE(broker->wait_for_log("accepted client 'dev-1' as 'dev-1'", kLogTimeout));
}

// Two listeners, two profiles of one brokertls.json: san_uri and fingerprint identities.
TEST_F(MosquittoReject, IdentityFromSanUriAndFromFingerprint) {
    const std::string uri = "spiffe://example.org/device/7";
    LeafRequest req;
    req.profile = CertificateProfile::Client;
    req.name = "dev-7";
    req.subject_alt_names = {classify_name(uri)};
    req.days = 30;
    auto issued = pki_->open().issue({req}, tmp_ / "issued", Overwrite::Refuse);
    ClientCert dev7{issued.at(0).chain, issued.at(0).key};
    auto dev1 = pki_->client("dev-1");

    json by_uri = default_profile();
    by_uri["identity"] = "san_uri";
    by_uri["identity_allow_slash"] = true;
    by_uri["client_id_must_match_identity"] = false;
    json by_fp = default_profile();
    by_fp["identity"] = "fingerprint";
    by_fp["client_id_must_match_identity"] = false;
    auto broker = start(write_config({{"uri", by_uri}, {"fp", by_fp}}),
                        {listener("uri", pki_->root()), listener("fp", pki_->root())});

    MqttClient c7(broker->port(0), "dev-7", pki_->root(), dev7);
    ASSERT_EQ(c7.connect(), "");
    EXPECT_TRUE(broker->wait_for_log("accepted client 'dev-7' as '" + uri + "'", kLogTimeout))
        << broker->log();
    EXPECT_TRUE(broker->wait_for_log("u'" + uri + "'", kLogTimeout));

    // A certificate without a URI SAN has no identity under san_uri.
    expect_refused(*broker, "dev-1", pki_->root(), dev1);
    EXPECT_TRUE(broker->wait_for_log(rejected("dev-1", dev1, "no_identity"), kLogTimeout))
        << broker->log();

    std::string fp = leaf_of(dev1).fingerprint_sha256();
    ASSERT_EQ(fp.size(), 64u);
    MqttClient c1(broker->port(1), "dev-1-fp", pki_->root(), dev1);
    ASSERT_EQ(c1.connect(), "");
    EXPECT_TRUE(broker->wait_for_log("accepted client 'dev-1-fp' as '" + fp + "'", kLogTimeout))
        << broker->log();
}

// "admin\0x" is "admin" to C string readers: without the NUL check it became username admin.
TEST_F(MosquittoReject, CommonNameWithNulIsRejectedAndNeverBecomesAdmin) {
    auto broker = start(write_config({{"devices", default_profile()}}));
    ClientCert nul =
        make_cert("nul", spec(CertificateProfile::Client, "dev-nul"), root_key(), root_cert());
    write_file(nul.cert, raw::with_names(leaf_of(nul), root_key(), "admin\0x"s).to_pem());

    expect_refused(*broker, "admin", pki_->root(), nul);
    // (The subject is matched loosely: how the log escapes the NUL is not the point here.)
    EXPECT_TRUE(broker->wait_for_log("rejected client 'admin' (subject 'CN=admin", kLogTimeout))
        << broker->log();
    EXPECT_TRUE(broker->wait_for_log(
        ": bad_identity: certificate subject CN: contains a NUL byte (admin", kLogTimeout))
        << broker->log();
    MqttClient good(broker->port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(good.connect(), "");
    EXPECT_TRUE(broker->wait_for_log(accepted("dev-1"), kLogTimeout));
    std::string log = broker->log();
    EXPECT_EQ(log.find(accepted("admin")), std::string::npos) << log;
    EXPECT_EQ(log.find("u'admin'"), std::string::npos) << log;
}

// `pattern readwrite devices/%u/#`: the identity "dev-1/x" would own devices/dev-1/x/#, inside
// dev-1's tree.
TEST_F(MosquittoReject, IdentityWithSlashIsRefusedUnderAclPatterns) {
    fs::path acl = tmp_ / "acl";
    std::ofstream(acl) << "pattern readwrite devices/%u/#\nuser monitor\ntopic read devices/#\n";
    auto broker =
        start(write_config({{"devices", default_profile()}}), {}, "acl_file " + acl.string());
    MqttClient monitor(broker->port(), "monitor", pki_->root(), pki_->client("monitor"));
    ASSERT_EQ(monitor.connect(), "") << broker->log();
    monitor.subscribe("devices/#");

    auto slash =
        make_cert("dev-1-x", spec(CertificateProfile::Client, "dev-1/x"), root_key(), root_cert());
    expect_refused(*broker, "dev-1/x", pki_->root(), slash);
    EXPECT_TRUE(broker->wait_for_log(
        rejected("dev-1/x", slash, "bad_identity") +
            "identity 'dev-1/x' (cn) contains '/' (an MQTT topic level separator)",
        kLogTimeout))
        << broker->log();
    EXPECT_EQ(broker->log().find("u'dev-1/x'"), std::string::npos);

    // The first message the monitor sees in dev-1's tree is dev-1's own.
    MqttClient dev1(broker->port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(dev1.connect(), "");
    dev1.publish("devices/dev-1/temp", "21.5");
    EXPECT_EQ(monitor.next_message(5s).value_or("(none)"), "devices/dev-1/temp 21.5");
}

// root -> intermediate -> leaf; the root's CRL revokes the intermediate. The listener has no
// crlfile, so only brokertls stands between the leaf and the broker.
TEST_F(MosquittoReject, LeafUnderARevokedIntermediateIsRevoked) {
    auto rkey = root_key();
    auto root = root_cert();
    PrivateKey ikey = PrivateKey::generate(KeyType::EcP256);
    Certificate inter = sign_certificate(spec(CertificateProfile::IntermediateCa, "sub CA"),
                                         ikey.get(), rkey, &root);
    fs::path inter_file = tmp_ / "inter.pem";
    write_file(inter_file, inter.to_pem());
    fs::path root_crl = tmp_ / "root-crl.pem";
    write_file(root_crl,
               sign_crl(root, rkey,
                        {{inter.serial_hex(), SystemClock::now(), RevocationReason::CaCompromise}},
                        SystemClock::now() - Days(1), SystemClock::now() + Days(7), 100)
                   .to_pem());
    json profile{{"trust_anchors", json::array({pki_->root().string()})},
                 {"intermediates", json::array({inter_file.string()})},
                 {"crls", json::array({root_crl.string()})}};
    auto broker = start(write_config({{"devices", profile}}),
                        bundle("root-and-sub.pem", {pki_->root(), inter_file}));

    auto leaf =
        make_cert("dev-sub", spec(CertificateProfile::Client, "dev-sub"), ikey, inter, {inter});
    expect_refused(*broker, "dev-sub", pki_->root(), leaf);
    EXPECT_TRUE(broker->wait_for_log(rejected("dev-sub", leaf, "revoked") +
                                         "issuing CA 'CN=sub CA' (serial " + inter.serial_hex() +
                                         ") is on the CRL of " + root.subject(),
                                     kLogTimeout))
        << broker->log();
    MqttClient direct(broker->port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    EXPECT_EQ(direct.connect(), "");
    EXPECT_TRUE(broker->wait_for_log(accepted("dev-1"), kLogTimeout));
}

// Under an intermediate whose nameConstraints permit only .devices.example, OpenSSL (the
// handshake too) lets CN=admin through: a CN that is not host-name-like is not constrained.
TEST_F(MosquittoReject, CnIdentityUnderANameConstrainedIntermediateMustBeAPermittedDnsName) {
    auto rkey = root_key();
    auto root = root_cert();
    PrivateKey ikey = PrivateKey::generate(KeyType::EcP256);
    Certificate inter =
        raw::with_extension(sign_certificate(spec(CertificateProfile::IntermediateCa, "devices CA"),
                                             ikey.get(), rkey, &root),
                            rkey, NID_name_constraints, "critical,permitted;DNS:.devices.example");
    fs::path inter_file = tmp_ / "devices-ca.pem";
    write_file(inter_file, inter.to_pem());
    json profile = default_profile();
    profile["intermediates"] = json::array({inter_file.string()});
    auto broker = start(write_config({{"devices", profile}}),
                        bundle("root-and-devices.pem", {pki_->root(), inter_file}));

    auto admin =
        make_cert("admin", spec(CertificateProfile::Client, "admin"), ikey, inter, {inter});
    expect_refused(*broker, "admin", pki_->root(), admin);
    EXPECT_TRUE(broker->wait_for_log(rejected("admin", admin, "name_constraints") +
                                         "CN 'admin' is not a DNS name of the certificate",
                                     kLogTimeout))
        << broker->log();

    auto named = spec(CertificateProfile::Client, "dev-1.devices.example");
    named.subject_alt_names = {classify_name("dev-1.devices.example")};
    auto dev = make_cert("dev-1-named", named, ikey, inter, {inter});
    MqttClient ok(broker->port(), "dev-1.devices.example", pki_->root(), dev);
    EXPECT_EQ(ok.connect(), "") << broker->log();
    EXPECT_TRUE(broker->wait_for_log(accepted("dev-1.devices.example"), kLogTimeout));
    EXPECT_EQ(broker->log().find(accepted("admin")), std::string::npos);
}

// An older CRL written over the current one (a restore from backup, a stale sync) must not
// un-revoke dev-rev.
TEST_F(MosquittoReject, StaleCrlWrittenOverTheCurrentOneDoesNotUnrevoke) {
    std::string older = read_file(pki_->crl());
    auto rev = pki_->client("dev-rev");
    pki_->revoke(rev);
    ASSERT_NE(read_file(pki_->crl()), older);
    auto broker = start(write_config({{"devices", default_profile()}}));
    expect_refused(*broker, "dev-rev", pki_->root(), rev);
    ASSERT_TRUE(broker->wait_for_log(rejected("dev-rev", rev, "revoked"), kLogTimeout))
        << broker->log();

    size_t mark = broker->log_mark();
    write_file(pki_->crl(), older);
    EXPECT_TRUE(
        broker->wait_for_log_after(mark, pki_->crl().string() + ": CRL number ", kLogTimeout))
        << broker->log();
    EXPECT_TRUE(broker->wait_for_log_after(mark, "is older than the CRL in force", kLogTimeout));
    EXPECT_TRUE(broker->wait_for_log_after(mark, "configuration reloaded", kLogTimeout));

    size_t again = broker->log_mark();
    expect_refused(*broker, "dev-rev", pki_->root(), rev);
    EXPECT_TRUE(broker->wait_for_log_after(again, rejected("dev-rev", rev, "revoked"), kLogTimeout))
        << broker->log();
}

// With the default profile a valid device cannot take over another device's session by
// connecting with its client id.
TEST_F(MosquittoReject, ClientIdTakeoverIsRefusedByDefault) {
    auto broker = start(write_config({{"devices", default_profile()}}));
    MqttClient dev1(broker->port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(dev1.connect(), "");
    dev1.subscribe("t/#");

    auto dev2 = pki_->client("dev-2");
    expect_refused(*broker, "dev-1", pki_->root(), dev2);
    EXPECT_TRUE(broker->wait_for_log(rejected("dev-1", dev2, "client_id_mismatch") +
                                         "client id 'dev-1' is not the identity 'dev-2'",
                                     kLogTimeout))
        << broker->log();
    EXPECT_TRUE(dev1.connected());
    dev1.publish("t/x", "still mine");
    EXPECT_EQ(dev1.next_message(5s).value_or("(none)"), "t/x still mine");
}

TEST_F(MosquittoReject, BrokenConfigAtReloadIsRefusedAndPreviousStaysInForce) {
    fs::path config = write_config({{"devices", default_profile()}});
    auto broker = start(config);
    MqttClient before(broker->port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(before.connect(), "");

    size_t mark = broker->log_mark();
    json broken = default_profile();
    broken["trust_anchors"] = json::array({(tmp_ / "missing.pem").string()});
    write_config({{"devices", broken}});  // the plugin's file watch notices and reloads
    // Mosquitto 2.0 with per_listener_settings sends no TICK: the refusal reaches the log at the
    // broker's next event, a client connecting (never through a SIGHUP of its own). 2.1 logs it
    // on TICK; the probes only wait there.
    auto client = pki_->client("dev-3");
    EXPECT_TRUE(eventually(
        [&] {
            MqttClient probe(broker->port(), "dev-3", pki_->root(), client);
            probe.connect();
            return broker->log().find("reload refused, previous configuration stays in force",
                                      mark) != std::string::npos;
        },
        kLogTimeout, 100ms))
        << broker->log();
    EXPECT_EQ(broker->log().find("Reloading config", mark), std::string::npos);
    EXPECT_TRUE(broker->running());

    MqttClient after(broker->port(), "dev-2", pki_->root(), pki_->client("dev-2"));
    EXPECT_EQ(after.connect(), "");
    EXPECT_TRUE(broker->wait_for_log(accepted("dev-2"), kLogTimeout));
    EXPECT_TRUE(before.connected());
}

// Mosquitto's dynamic-security plugin loaded after brokertls on the same listener: brokertls
// authenticates (and sets the username to the CN), dynamic-security authorises by that username.
TEST_F(MosquittoReject, ComposesWithDynamicSecurityAcls) {
    ASSERT_TRUE(fs::exists(broker_under_test().dynsec_plugin));
    fs::path dynsec = tmp_ / "dynamic-security.json";
    auto init = run({broker_under_test().ctrl, "dynsec", "init", dynsec.string(), "admin"},
                    "admin-password\nadmin-password\n", 20s);
    ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
    json ds = json::parse(read_file(dynsec));
    ds["clients"].push_back(
        {{"username", "dev-1"}, {"roles", json::array({json{{"rolename", "device-1"}}})}});
    ds["clients"].push_back(
        {{"username", "monitor"}, {"roles", json::array({json{{"rolename", "monitor"}}})}});
    json acls = json::array();
    for (const char* type : {"publishClientSend", "subscribePattern", "publishClientReceive"})
        acls.push_back({{"acltype", type}, {"topic", "devices/dev-1/#"}, {"allow", true}});
    ds["roles"].push_back({{"rolename", "device-1"}, {"acls", acls}});
    ds["roles"].push_back({{"rolename", "monitor"},
                           {"acls", json::array({json{{"acltype", "subscribePattern"},
                                                      {"topic", "devices/#"},
                                                      {"allow", true}}})}});
    ds["defaultACLAccess"]["publishClientSend"] = false;
    write_file(dynsec, ds.dump(2));

    auto broker = start(write_config({{"devices", default_profile()}}), {},
                        std::string("plugin ") + broker_under_test().dynsec_plugin +
                            "\nplugin_opt_config_file " + dynsec.string() + "\n");

    MqttClient monitor(broker->port(), "monitor", pki_->root(), pki_->client("monitor"));
    ASSERT_EQ(monitor.connect(), "") << broker->log();
    monitor.subscribe("devices/#");
    MqttClient dev1(broker->port(), "dev-1", pki_->root(), pki_->client("dev-1"));
    ASSERT_EQ(dev1.connect(), "") << broker->log();
    EXPECT_TRUE(broker->wait_for_log("accepted client 'dev-1' as 'dev-1'", kLogTimeout));
    dev1.subscribe("devices/dev-1/#");

    dev1.publish("devices/other/x", "spoofed");  // not in its role: dynamic-security denies it
    dev1.publish("devices/dev-1/x", "21.5");
    EXPECT_EQ(dev1.next_message(5s).value_or("(none)"), "devices/dev-1/x 21.5");
    // Messages of one client arrive in order, so the denied one would have come first.
    EXPECT_EQ(monitor.next_message(5s).value_or("(none)"), "devices/dev-1/x 21.5");
    EXPECT_TRUE(broker->wait_for_log("Denied PUBLISH from dev-1", kLogTimeout)) << broker->log();
}

}  // namespace
}  // namespace brokertls::test
