#include "brokertls/crypto/signing.hpp"

#include <openssl/rand.h>

#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"  // printable()

namespace brokertls {

namespace {

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    X509ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
    if (!ext || !X509_add_ext(cert, ext.get(), -1))
        throw Error(ErrorKind::Io, std::string("cannot add extension ") + OBJ_nid2sn(nid) + ": " +
                                       openssl_reason());
}

Asn1IntegerPtr serial_from_hex(const std::string& hex) {
    BIGNUM* raw = nullptr;
    // BN_hex2bn stops at the first non-hex digit and accepts a '-': "12zz" would become 0x12.
    int used = BN_hex2bn(&raw, hex.c_str());
    BignumPtr bn(raw);
    if (used == 0 || static_cast<size_t>(used) != hex.size())
        fail(ErrorKind::Input, hex, "not a hexadecimal serial number");
    if (BN_is_negative(bn.get()) || BN_is_zero(bn.get()))
        fail(ErrorKind::Input, hex, "a serial number must be positive (RFC 5280)");
    Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    if (!serial) throw std::bad_alloc();
    return serial;
}

void set_time(ASN1_TIME* field, TimePoint t) {
    if (!ASN1_TIME_set(field, SystemClock::to_time_t(t)))
        throw Error(ErrorKind::Io, "cannot set certificate time");
}

}  // namespace

std::string random_serial() {
    unsigned char bytes[16];
    do {
        if (RAND_bytes(bytes, sizeof bytes) != 1)
            throw Error(ErrorKind::Io, "random generator failed");
        bytes[0] &= 0x7f;     // positive as a DER INTEGER
    } while (bytes[0] == 0);  // keep it 16 octets, so serials never look short
    BignumPtr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
    char* hex = BN_bn2hex(bn.get());
    std::string out(hex);
    OPENSSL_free(hex);
    return out;
}

namespace {

// Gives `cert` the request's SubjectPublicKeyInfo bytes as they are. X509_set_pubkey would
// encode the key and decode it again through OpenSSL 3's decoders: most of the cost of
// signing a certificate. The request's key was decoded (and so checked) when it was parsed.
void copy_public_key(X509* cert, X509_REQ* req) {
    ASN1_OBJECT* algorithm = nullptr;
    const unsigned char* bits = nullptr;
    int length = 0;
    X509_ALGOR* algor = nullptr;
    if (!X509_PUBKEY_get0_param(&algorithm, &bits, &length, &algor, X509_REQ_get_X509_PUBKEY(req)))
        throw Error(ErrorKind::Input, "unusable public key: " + openssl_reason());
    const ASN1_OBJECT* param_object = nullptr;
    int param_type = V_ASN1_UNDEF;
    const void* param = nullptr;
    X509_ALGOR_get0(&param_object, &param_type, &param, algor);
    void* param_copy = nullptr;
    switch (param_type) {
        case V_ASN1_UNDEF:  // Ed25519
        case V_ASN1_NULL:   // RSA
            break;
        case V_ASN1_OBJECT:  // EC: the named curve
            param_copy = OBJ_dup(static_cast<const ASN1_OBJECT*>(param));
            break;
        case V_ASN1_SEQUENCE:  // RSA-PSS parameters
            param_copy = ASN1_STRING_dup(static_cast<const ASN1_STRING*>(param));
            break;
        default:
            throw Error(ErrorKind::Input, "unusable public key: unexpected algorithm parameters");
    }
    ASN1_OBJECT* algorithm_copy = OBJ_dup(algorithm);
    auto* bits_copy = static_cast<unsigned char*>(OPENSSL_memdup(bits, length));
    if (algorithm_copy && bits_copy &&
        (param_copy || param_type == V_ASN1_UNDEF || param_type == V_ASN1_NULL) &&
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), algorithm_copy, param_type, param_copy,
                               bits_copy, length))
        return;
    ASN1_OBJECT_free(algorithm_copy);
    OPENSSL_free(bits_copy);
    if (param_type == V_ASN1_OBJECT) ASN1_OBJECT_free(static_cast<ASN1_OBJECT*>(param_copy));
    if (param_type == V_ASN1_SEQUENCE) ASN1_STRING_free(static_cast<ASN1_STRING*>(param_copy));
    throw std::bad_alloc();
}

Certificate sign(const CertificateSpec& spec, EVP_PKEY* subject_key, X509_REQ* request,
                 const PrivateKey& issuer_key, const Certificate* issuer) {
    X509Ptr cert(X509_new());
    if (!cert) throw std::bad_alloc();
    X509_set_version(cert.get(), X509_VERSION_3);
    Asn1IntegerPtr serial =
        serial_from_hex(spec.serial_hex.empty() ? random_serial() : spec.serial_hex);
    X509_set_serialNumber(cert.get(), serial.get());
    set_time(X509_getm_notBefore(cert.get()), spec.not_before);
    set_time(X509_getm_notAfter(cert.get()), spec.not_after);

    X509_NAME* name = X509_get_subject_name(cert.get());
    // Explicit lengths, and no NUL: a C string would end the name early (admin\0.example).
    auto add_entry = [name](int nid, const std::string& value, const char* what) {
        if (value.empty()) return;
        if (value.find('\0') != std::string::npos)
            fail(ErrorKind::Usage, printable(value),
                 std::string("cannot be used as ") + what + ": contains a NUL byte");
        if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                        reinterpret_cast<const unsigned char*>(value.data()),
                                        static_cast<int>(value.size()), -1, 0))
            fail(ErrorKind::Usage, value,
                 std::string("cannot be used as ") + what + " (at most 64 characters)");
    };
    add_entry(NID_organizationName, spec.organization, "an organization name");
    add_entry(NID_commonName, spec.common_name, "a common name");
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer->get()) : name);
    if (request)
        copy_public_key(cert.get(), request);
    else if (!X509_set_pubkey(cert.get(), subject_key))
        throw Error(ErrorKind::Input, "unusable public key: " + openssl_reason());

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer->get() : cert.get(), cert.get(), nullptr, nullptr, 0);

    bool rsa = EVP_PKEY_is_a(subject_key, "RSA");
    switch (spec.profile) {
        case CertificateProfile::RootCa:
            add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
            add_extension(cert.get(), &ctx, NID_key_usage,
                          "critical,digitalSignature,keyCertSign,cRLSign");
            break;
        case CertificateProfile::IntermediateCa:
            add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
            add_extension(cert.get(), &ctx, NID_key_usage,
                          "critical,digitalSignature,keyCertSign,cRLSign");
            break;
        case CertificateProfile::Client:
        case CertificateProfile::Server:
            add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
            add_extension(
                cert.get(), &ctx, NID_key_usage,
                rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
            add_extension(cert.get(), &ctx, NID_ext_key_usage,
                          spec.profile == CertificateProfile::Client ? "clientAuth" : "serverAuth");
            break;
    }
    add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
    if (issuer) add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    if (!spec.subject_alt_names.empty()) {
        GeneralNamesPtr names = to_general_names(spec.subject_alt_names);
        // RFC 5280: the SAN extension is critical when the subject is empty.
        int critical = spec.common_name.empty() && spec.organization.empty() ? 1 : 0;
        if (!X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), critical,
                               X509V3_ADD_DEFAULT))
            throw Error(ErrorKind::Io, "cannot add subjectAltName: " + openssl_reason());
    }

    if (X509_sign(cert.get(), issuer_key.get(), issuer_key.signature_digest()) <= 0)
        throw Error(ErrorKind::Io, "cannot sign certificate: " + openssl_reason());
    return Certificate(std::move(cert));
}

}  // namespace

Certificate sign_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key,
                             const PrivateKey& issuer_key, const Certificate* issuer) {
    return sign(spec, subject_key, nullptr, issuer_key, issuer);
}

Certificate sign_certificate(const CertificateSpec& spec, const CertificateRequest& request,
                             const PrivateKey& issuer_key, const Certificate& issuer) {
    return sign(spec, request.public_key(), request.get(), issuer_key, &issuer);
}

Crl sign_crl(const Certificate& issuer, const PrivateKey& issuer_key,
             const std::vector<RevokedCertificate>& revoked, TimePoint this_update,
             TimePoint next_update, long crl_number) {
    X509CrlPtr crl(X509_CRL_new());
    if (!crl) throw std::bad_alloc();
    X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2);
    X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.get()));
    Asn1TimePtr last(ASN1_TIME_set(nullptr, SystemClock::to_time_t(this_update)));
    Asn1TimePtr next(ASN1_TIME_set(nullptr, SystemClock::to_time_t(next_update)));
    X509_CRL_set1_lastUpdate(crl.get(), last.get());
    X509_CRL_set1_nextUpdate(crl.get(), next.get());

    for (const auto& entry : revoked) {
        X509RevokedPtr rev(X509_REVOKED_new());
        Asn1IntegerPtr serial = serial_from_hex(entry.serial_hex);
        Asn1TimePtr when(ASN1_TIME_set(nullptr, SystemClock::to_time_t(entry.revoked_at)));
        X509_REVOKED_set_serialNumber(rev.get(), serial.get());
        X509_REVOKED_set_revocationDate(rev.get(), when.get());
        if (entry.reason != RevocationReason::Unspecified) {
            using EnumPtr = std::unique_ptr<ASN1_ENUMERATED, OpenSslDeleter<ASN1_ENUMERATED_free>>;
            EnumPtr code(ASN1_ENUMERATED_new());
            ASN1_ENUMERATED_set(code.get(), static_cast<long>(entry.reason));
            X509_REVOKED_add1_ext_i2d(rev.get(), NID_crl_reason, code.get(), 0, 0);
        }
        if (!X509_CRL_add0_revoked(crl.get(), rev.get())) throw std::bad_alloc();
        rev.release();
    }
    X509_CRL_sort(crl.get());

    Asn1IntegerPtr number(ASN1_INTEGER_new());
    ASN1_INTEGER_set(number.get(), crl_number);
    X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer.get(), nullptr, nullptr, crl.get(), 0);
    X509ExtPtr aki(
        X509V3_EXT_nconf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
    if (!aki || !X509_CRL_add_ext(crl.get(), aki.get(), -1))
        throw Error(ErrorKind::Io, "cannot add CRL extension: " + openssl_reason());

    if (X509_CRL_sign(crl.get(), issuer_key.get(), issuer_key.signature_digest()) <= 0)
        throw Error(ErrorKind::Io, "cannot sign CRL: " + openssl_reason());
    return Crl(std::move(crl));
}

}  // namespace brokertls
