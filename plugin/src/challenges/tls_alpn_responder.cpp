// tls-alpn-01 (RFC 8737) responder: a TLS server that completes a handshake only for ALPN
// "acme-tls/1" and an SNI it holds a challenge for, presenting a self-signed certificate for
// that name with the critical acmeIdentifier extension (SHA-256 of the key authorization).
// Like the http-01 responder it listens only while challenges are presented, one listener per
// address shared by every order. IP identifiers are reached by their reverse-DNS SNI
// (RFC 8738 §6).

#include <arpa/inet.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>

#include "brokertls/error.hpp"
#include "socket_server.hpp"
#include "solvers.hpp"

namespace brokertls {
namespace {

using SslCtxPtr = std::unique_ptr<SSL_CTX, OpenSslDeleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, OpenSslDeleter<SSL_free>>;
using OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, OpenSslDeleter<ASN1_OCTET_STRING_free>>;
using ObjectPtr = std::unique_ptr<ASN1_OBJECT, OpenSslDeleter<ASN1_OBJECT_free>>;

// The ALPN protocol list of the server: one length-prefixed name.
constexpr unsigned char kAcmeAlpn[] = {10, 'a', 'c', 'm', 'e', '-', 't', 'l', 's', '/', '1'};
constexpr const char* kAcmeIdentifierOid = "1.3.6.1.5.5.7.1.31";
constexpr std::chrono::seconds kHandshakeTimeout{10};

[[noreturn]] void fail_openssl(const std::string& what) {
    fail(ErrorKind::Io, "tls-alpn-01", what + ": " + openssl_reason());
}

// The RFC 8737 §3 validation certificate: self-signed, the identifier as its only SAN, and the
// critical id-pe-acmeIdentifier extension holding an OCTET STRING of SHA-256(key authorization).
X509Ptr challenge_certificate(const AcmeIdentifier& identifier,
                              const std::string& key_authorization, const PrivateKey& key) {
    X509Ptr cert(X509_new());
    if (!cert) throw std::bad_alloc();
    X509_set_version(cert.get(), X509_VERSION_3);
    unsigned char serial_bytes[16];
    if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) fail_openssl("random serial");
    serial_bytes[0] &= 0x7f;  // a positive INTEGER
    BignumPtr serial_bn(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
    Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(serial_bn.get(), nullptr));
    if (!serial || !X509_set_serialNumber(cert.get(), serial.get())) fail_openssl("serial");
    // A day of slack for validators with a skewed clock; the certificate lives for one order.
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -86400);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7 * 86400);
    X509_NAME* name = X509_get_subject_name(cert.get());
    const std::string cn = identifier.value.substr(0, 64);
    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.data()),
                               static_cast<int>(cn.size()), -1, 0);
    X509_set_issuer_name(cert.get(), name);
    if (!X509_set_pubkey(cert.get(), key.get())) fail_openssl("public key");

    auto san =
        make_san(identifier.type == "ip" ? SubjectAltName::Type::Ip : SubjectAltName::Type::Dns,
                 identifier.value);
    GeneralNamesPtr names = to_general_names({san});
    if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) !=
        1) {
        fail_openssl("subjectAltName");
    }

    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_length = 0;
    if (EVP_Digest(key_authorization.data(), key_authorization.size(), digest, &digest_length,
                   EVP_sha256(), nullptr) != 1) {
        fail_openssl("SHA-256");
    }
    OctetStringPtr inner(ASN1_OCTET_STRING_new());
    if (!inner || !ASN1_OCTET_STRING_set(inner.get(), digest, static_cast<int>(digest_length)))
        fail_openssl("acmeIdentifier");
    unsigned char* der = nullptr;
    int der_length = i2d_ASN1_OCTET_STRING(inner.get(), &der);
    if (der_length <= 0) fail_openssl("acmeIdentifier");
    OctetStringPtr value(ASN1_OCTET_STRING_new());
    bool set = value && ASN1_OCTET_STRING_set(value.get(), der, der_length);
    OPENSSL_free(der);
    if (!set) fail_openssl("acmeIdentifier");
    ObjectPtr oid(OBJ_txt2obj(kAcmeIdentifierOid, 1));
    X509ExtPtr extension(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 1, value.get()));
    if (!oid || !extension || !X509_add_ext(cert.get(), extension.get(), -1))
        fail_openssl("acmeIdentifier");

    if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) fail_openssl("signing");
    return cert;
}

std::string sni_for(const AcmeIdentifier& identifier) {
    return tls_alpn_sni_for(identifier.type, identifier.value);
}

// The certificates presented, by SNI. Two orders may validate one name at once (two profiles
// sharing a name); the newest is served, the other once the newest is cleaned up.
class CertificateTable {
  public:
    CertificateTable() : key_(PrivateKey::generate(KeyType::EcP256)) {}

    void add(const ChallengeTask& task) {
        X509Ptr cert = challenge_certificate(task.identifier, task.key_authorization, key_);
        std::lock_guard lock(mutex_);
        by_name_[sni_for(task.identifier)].push_back({task.key_authorization, std::move(cert)});
    }
    void remove(const ChallengeTask& task) {
        std::string sni = sni_for(task.identifier);
        std::lock_guard lock(mutex_);
        auto it = by_name_.find(sni);
        if (it == by_name_.end()) return;
        auto& entries = it->second;
        auto match = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) {
            return e.key_authorization == task.key_authorization;
        });
        if (match != entries.end()) entries.erase(match);
        if (entries.empty()) by_name_.erase(it);
    }
    bool empty() const {
        std::lock_guard lock(mutex_);
        return by_name_.empty();
    }
    // Sets the certificate for `sni` on the handshake; false when none is held.
    bool use_for(SSL* ssl, const std::string& sni) const {
        std::lock_guard lock(mutex_);
        auto it = by_name_.find(tls_alpn_name_key(sni));
        if (it == by_name_.end()) return false;
        return SSL_use_certificate(ssl, it->second.back().cert.get()) == 1 &&
               SSL_use_PrivateKey(ssl, key_.get()) == 1;
    }

  private:
    struct Entry {
        std::string key_authorization;
        X509Ptr cert;
    };
    PrivateKey key_;
    mutable std::mutex mutex_;
    std::map<std::string, std::vector<Entry>> by_name_;
};

// No ALPN extension at all would never reach the ALPN callback; RFC 8737 §3 wants such
// handshakes refused too.
int require_alpn(SSL* ssl, int* alert, void*) {
    const unsigned char* data = nullptr;
    size_t length = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &data,
                                  &length) != 1) {
        *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

int select_certificate(SSL* ssl, int* alert, void* arg) {
    const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!sni || !static_cast<const CertificateTable*>(arg)->use_for(ssl, sni)) {
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length,
                const unsigned char* offered, unsigned int offered_length, void*) {
    if (!offers_acme_tls_1({reinterpret_cast<const char*>(offered), offered_length}))
        return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
    *out = kAcmeAlpn + 1;
    *out_length = kAcmeAlpn[0];
    return SSL_TLSEXT_ERR_OK;
}

SslCtxPtr make_context(CertificateTable* table) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) fail_openssl("cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    // Each validation is one handshake and nothing more: no sessions to resume.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx.get(), 0);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_client_hello_cb(ctx.get(), require_alpn, nullptr);
    SSL_CTX_set_tlsext_servername_callback(ctx.get(), select_certificate);
    SSL_CTX_set_tlsext_servername_arg(ctx.get(), table);
    SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, nullptr);
    return ctx;
}

class TlsConnection : public ServedConnection {
  public:
    TlsConnection(SSL_CTX* ctx, int fd) : ssl_(SSL_new(ctx)) {
        if (!ssl_ || SSL_set_fd(ssl_.get(), fd) != 1) fail_openssl("cannot start a handshake");
    }

    short advance() override {
        int rc = SSL_accept(ssl_.get());
        if (rc == 1) {
            // RFC 8737 §3: the validator closes right after the handshake; nothing to serve.
            SSL_shutdown(ssl_.get());
            return 0;
        }
        switch (SSL_get_error(ssl_.get(), rc)) {
            case SSL_ERROR_WANT_READ:
                return POLLIN;
            case SSL_ERROR_WANT_WRITE:
                return POLLOUT;
            default:
                ERR_clear_error();
                return 0;
        }
    }

  private:
    SslPtr ssl_;
};

struct Listener {
    std::unique_ptr<CertificateTable> table;
    SslCtxPtr ctx;
    std::unique_ptr<SocketServer> server;  // declared last: stopped before the rest goes
};
std::mutex listeners_mutex;
std::map<std::string, Listener> listeners;

class TlsAlpnResponder : public ChallengeSolver {
  public:
    TlsAlpnResponder(const ChallengeConfig& config, SolverContext context)
        : listen_(config.listen.empty() ? "0.0.0.0:443" : config.listen),
          context_(std::move(context)) {}

    std::string type() const override { return "tls-alpn-01"; }

    void present(const std::vector<ChallengeTask>& tasks) override {
        if (tasks.empty()) return;
        std::lock_guard lock(listeners_mutex);
        auto it = listeners.find(listen_);
        if (it == listeners.end()) {
            // OpenSSL writes with write(): a validator resetting mid-handshake must not raise
            // SIGPIPE in the broker (run_subprocess makes the same choice).
            ::signal(SIGPIPE, SIG_IGN);
            Listener listener;
            listener.table = std::make_unique<CertificateTable>();
            listener.ctx = make_context(listener.table.get());
            SSL_CTX* ctx = listener.ctx.get();
            listener.server = std::make_unique<SocketServer>(
                listen_, "tls-alpn-01",
                [ctx](int fd) { return std::make_unique<TlsConnection>(ctx, fd); },
                kHandshakeTimeout);
            it = listeners.emplace(listen_, std::move(listener)).first;
            context_.log("tls-alpn-01: listening on " + listen_);
        }
        try {
            for (const auto& task : tasks) it->second.table->add(task);
        } catch (...) {
            if (it->second.table->empty()) listeners.erase(it);
            throw;
        }
    }

    void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override {
        try {
            std::lock_guard lock(listeners_mutex);
            auto it = listeners.find(listen_);
            if (it == listeners.end()) return;
            for (const auto& task : tasks) it->second.table->remove(task);
            if (it->second.table->empty()) {
                listeners.erase(it);
                context_.log("tls-alpn-01: stopped listening on " + listen_);
            }
        } catch (const std::exception& e) {
            context_.log(std::string("tls-alpn-01: cleanup: ") + e.what());
        }
    }

  private:
    std::string listen_;
    SolverContext context_;
};

}  // namespace

bool offers_acme_tls_1(std::string_view protocol_list) {
    unsigned char* chosen = nullptr;
    unsigned char chosen_length = 0;
    return SSL_select_next_proto(&chosen, &chosen_length, kAcmeAlpn, sizeof kAcmeAlpn,
                                 reinterpret_cast<const unsigned char*>(protocol_list.data()),
                                 static_cast<unsigned int>(protocol_list.size())) ==
           OPENSSL_NPN_NEGOTIATED;
}

std::string tls_alpn_name_key(std::string_view name) {
    std::string key(name);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!key.empty() && key.back() == '.') key.pop_back();
    return key;
}

std::string tls_alpn_sni_for(std::string_view type, const std::string& value) {
    if (type != "ip") return tls_alpn_name_key(value);
    unsigned char bytes[16];
    static const char* hex = "0123456789abcdef";
    std::string out;
    if (inet_pton(AF_INET, value.c_str(), bytes) == 1) {
        for (int i = 3; i >= 0; --i) out += std::to_string(bytes[i]) + ".";
        return out + "in-addr.arpa";
    }
    if (inet_pton(AF_INET6, value.c_str(), bytes) == 1) {
        for (int i = 15; i >= 0; --i) {
            out += hex[bytes[i] & 0x0f];
            out += '.';
            out += hex[bytes[i] >> 4];
            out += '.';
        }
        return out + "ip6.arpa";
    }
    fail(ErrorKind::Input, "tls-alpn-01", "\"" + value + "\" is not an IP address");
}

std::unique_ptr<ChallengeSolver> make_tls_alpn_responder(const ChallengeConfig& config,
                                                         SolverContext context) {
    return std::make_unique<TlsAlpnResponder>(config, std::move(context));
}

}  // namespace brokertls
