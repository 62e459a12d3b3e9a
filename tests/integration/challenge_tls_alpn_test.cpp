#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "brokertls/crypto/certificate.hpp"
#include "challenges/solver.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OpenSslDeleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, OpenSslDeleter<SSL_free>>;
using OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, OpenSslDeleter<ASN1_OCTET_STRING_free>>;
using ObjectPtr = std::unique_ptr<ASN1_OBJECT, OpenSslDeleter<ASN1_OBJECT_free>>;

struct Handshake {
    bool ok = false;
    std::string alpn;
    X509Ptr cert;
};

// An in-process TLS client as an ACME validator is: the given SNI and ALPN offer, no chain
// verification (the certificate is self-signed by design), bounded by socket timeouts.
Handshake handshake(int port, const std::string& sni, const std::vector<std::string>& alpn) {
    Handshake result;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return result;
    }
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    SslPtr ssl(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), fd);
    if (!sni.empty()) SSL_set_tlsext_host_name(ssl.get(), sni.c_str());
    std::string wire;
    for (const auto& p : alpn) wire += static_cast<char>(p.size()) + p;
    if (!wire.empty()) {
        SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
    }
    if (SSL_connect(ssl.get()) == 1) {
        result.ok = true;
        const unsigned char* selected = nullptr;
        unsigned int length = 0;
        SSL_get0_alpn_selected(ssl.get(), &selected, &length);
        result.alpn.assign(reinterpret_cast<const char*>(selected), length);
        result.cert.reset(SSL_get1_peer_certificate(ssl.get()));
        SSL_shutdown(ssl.get());
    }
    ERR_clear_error();
    ssl.reset();
    ::close(fd);
    return result;
}

bool accepts_connections(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

std::string sha256(const std::string& data) {
    unsigned char digest[32];
    unsigned int length = 0;
    EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<char*>(digest), length);
}

// The acmeIdentifier extension's critical flag and the digest in its OCTET STRING.
struct AcmeIdentifierExtension {
    bool present = false;
    bool critical = false;
    std::string digest;
};
AcmeIdentifierExtension acme_identifier_of(X509* cert) {
    AcmeIdentifierExtension out;
    ObjectPtr oid(OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1));
    int index = X509_get_ext_by_OBJ(cert, oid.get(), -1);
    if (index < 0) return out;
    X509_EXTENSION* ext = X509_get_ext(cert, index);
    out.present = true;
    out.critical = X509_EXTENSION_get_critical(ext) == 1;
    const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
    const unsigned char* p = ASN1_STRING_get0_data(value);
    long length = ASN1_STRING_length(value);
    OctetStringPtr inner(d2i_ASN1_OCTET_STRING(nullptr, &p, length));
    // The whole extension value is exactly one OCTET STRING.
    if (inner && p == ASN1_STRING_get0_data(value) + length) {
        out.digest.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(inner.get())),
                          static_cast<std::size_t>(ASN1_STRING_length(inner.get())));
    }
    return out;
}

ChallengeTask task(std::string type, std::string name, std::string token) {
    ChallengeTask t;
    t.profile = "mqtt";
    t.identifier = {std::move(type), std::move(name)};
    t.token = std::move(token);
    t.key_authorization = t.token + ".thumbprint-xyz";
    return t;
}

class TlsAlpnTest : public ::testing::Test {
  protected:
    TlsAlpnTest() : port_(test::free_port()) {
        config_.type = ChallengeConfig::Type::TlsAlpn01;
        config_.listen = "127.0.0.1:" + std::to_string(port_);
    }
    std::unique_ptr<ChallengeSolver> solver() { return make_solver(config_, {}, gate_); }

    int port_;
    ChallengeConfig config_;
    ManualGate gate_;
};

TEST_F(TlsAlpnTest, ServesTheValidationCertificateForAcmeAlpnAndTheName) {
    auto s = solver();
    EXPECT_EQ(s->type(), "tls-alpn-01");
    auto t = task("dns", "broker.example.com", "tok1");
    s->present({t});

    auto h = handshake(port_, "broker.example.com", {"acme-tls/1"});
    ASSERT_TRUE(h.ok);
    EXPECT_EQ(h.alpn, "acme-tls/1");
    ASSERT_TRUE(h.cert);
    auto ext = acme_identifier_of(h.cert.get());
    EXPECT_TRUE(ext.present);
    EXPECT_TRUE(ext.critical);
    EXPECT_EQ(ext.digest, sha256("tok1.thumbprint-xyz"));
    Certificate cert(std::move(h.cert));
    EXPECT_EQ(cert.subject_alt_names(),
              (std::vector<SubjectAltName>{{SubjectAltName::Type::Dns, "broker.example.com"}}));
    EXPECT_TRUE(cert.is_self_signed());

    // SNI is matched case-insensitively, as DNS names are.
    EXPECT_TRUE(handshake(port_, "Broker.Example.COM", {"acme-tls/1"}).ok);
    s->cleanup({t});
}

TEST_F(TlsAlpnTest, RefusesOtherAlpnNoAlpnAndUnknownNames) {
    auto s = solver();
    auto t = task("dns", "broker.example.com", "tok1");
    s->present({t});
    EXPECT_FALSE(handshake(port_, "broker.example.com", {"http/1.1"}).ok);
    EXPECT_FALSE(handshake(port_, "broker.example.com", {}).ok);
    EXPECT_FALSE(handshake(port_, "other.example.com", {"acme-tls/1"}).ok);
    EXPECT_FALSE(handshake(port_, "", {"acme-tls/1"}).ok);
    // Offered among others, acme-tls/1 is the one chosen.
    auto h = handshake(port_, "broker.example.com", {"h2", "acme-tls/1"});
    EXPECT_TRUE(h.ok);
    EXPECT_EQ(h.alpn, "acme-tls/1");
    s->cleanup({t});
}

TEST_F(TlsAlpnTest, IpIdentifiersAnswerTheirReverseDnsName) {
    auto s = solver();
    auto v4 = task("ip", "127.0.0.1", "tok4");
    auto v6 = task("ip", "2001:db8::1", "tok6");
    s->present({v4, v6});

    auto h4 = handshake(port_, "1.0.0.127.in-addr.arpa", {"acme-tls/1"});
    ASSERT_TRUE(h4.ok);
    EXPECT_EQ(acme_identifier_of(h4.cert.get()).digest, sha256("tok4.thumbprint-xyz"));
    EXPECT_EQ(Certificate(std::move(h4.cert)).subject_alt_names(),
              (std::vector<SubjectAltName>{{SubjectAltName::Type::Ip, "127.0.0.1"}}));

    auto h6 =
        handshake(port_, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
                  {"acme-tls/1"});
    ASSERT_TRUE(h6.ok);
    EXPECT_EQ(acme_identifier_of(h6.cert.get()).digest, sha256("tok6.thumbprint-xyz"));
    EXPECT_EQ(Certificate(std::move(h6.cert)).subject_alt_names(),
              (std::vector<SubjectAltName>{{SubjectAltName::Type::Ip, "2001:db8::1"}}));
    s->cleanup({v4, v6});
}

TEST_F(TlsAlpnTest, ListensOnlyWhilePresentedAndSharesTheListener) {
    auto first = solver();
    auto second = solver();
    EXPECT_FALSE(accepts_connections(port_));
    auto older = task("dns", "broker.example.com", "older");
    auto newer = task("dns", "broker.example.com", "newer");
    first->present({older});
    second->present({newer});
    // Two orders for one name: the newest challenge is served, then the other one.
    auto h = handshake(port_, "broker.example.com", {"acme-tls/1"});
    ASSERT_TRUE(h.ok);
    EXPECT_EQ(acme_identifier_of(h.cert.get()).digest, sha256("newer.thumbprint-xyz"));
    second->cleanup({newer});
    h = handshake(port_, "broker.example.com", {"acme-tls/1"});
    ASSERT_TRUE(h.ok);
    EXPECT_EQ(acme_identifier_of(h.cert.get()).digest, sha256("older.thumbprint-xyz"));
    first->cleanup({older});
    EXPECT_FALSE(accepts_connections(port_));
}

TEST_F(TlsAlpnTest, OpensslSClientSeesTheAcmeProtocol) {
    auto s = solver();
    auto t = task("dns", "broker.example.com", "tok1");
    s->present({t});
    std::string connect = "127.0.0.1:" + std::to_string(port_);
    auto ok = test::run({"openssl", "s_client", "-connect", connect, "-alpn", "acme-tls/1",
                         "-servername", "broker.example.com"},
                        "", 10s);
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_NE(ok.out.find("ALPN protocol: acme-tls/1"), std::string::npos) << ok.out;
    auto refused = test::run({"openssl", "s_client", "-connect", connect, "-alpn", "http/1.1",
                              "-servername", "broker.example.com"},
                             "", 10s);
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("no application protocol"), std::string::npos) << refused.err;
    s->cleanup({t});
}

}  // namespace
}  // namespace brokertls
