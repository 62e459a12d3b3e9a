#pragma once
// A throwaway PKI for broker tests, made with brokertls' own CA library in-process.

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <optional>
#include <string>

#include "brokertls/ca/authority.hpp"
#include "brokertls/crypto/csr.hpp"
#include "mosquitto_fixture.hpp"

namespace brokertls::test {

class TestPki {
  public:
    // A root CA in DIR/ca, a server certificate for localhost + 127.0.0.1 in DIR/certs.
    explicit TestPki(const std::filesystem::path& dir,
                     const std::string& ca_name = "brokertls test CA");

    ClientCert client(const std::string& name, int days = 30);
    std::filesystem::path root() const { return dir_ / "root.crt"; }
    std::filesystem::path crl() const { return dir_ / "crl.pem"; }
    std::filesystem::path server_cert() const { return certs_ / "localhost.chain.pem"; }
    std::filesystem::path server_key() const { return certs_ / "localhost.key"; }
    // Revokes and rewrites crl.pem (atomically, as brokertls-ca does).
    void revoke(const ClientCert& cert);
    void write_crl();
    CertificateAuthority open();
    const std::filesystem::path& dir() const { return dir_; }

  private:
    std::filesystem::path dir_, certs_;
};

// Names as an attacker writes them: raw bytes with an explicit ASN.1 length, so they may hold a
// NUL ("admin\0.mqtt.example"). Header-only, so unit tests can use these without the broker
// fixture library.
namespace raw {

inline void add_cn(X509_NAME* name, const std::string& cn) {
    if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(cn.data()),
                                    static_cast<int>(cn.size()), -1, 0))
        throw std::runtime_error("cannot add CN");
}

// Through DER and back, so OpenSSL's cached extension flags match the edited certificate.
inline Certificate reparsed(X509Ptr x) {
    return Certificate::parse(Certificate(std::move(x)).to_der(), "edited certificate");
}

// A subjectAltName extension with one DNS name of these bytes.
inline X509ExtPtr dns_san(const std::string& dns) {
    GeneralNamesPtr names(GENERAL_NAMES_new());
    GENERAL_NAME* gen = GENERAL_NAME_new();
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    ASN1_STRING_set(ia5, dns.data(), static_cast<int>(dns.size()));
    GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
    sk_GENERAL_NAME_push(names.get(), gen);
    return X509ExtPtr(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
}

// A CSR signed by `key` naming `cn` (skipped when empty) and, when given, one DNS SAN.
inline std::string csr_pem(const PrivateKey& key, const std::string& cn,
                           const std::optional<std::string>& san_dns = std::nullopt) {
    X509ReqPtr req(X509_REQ_new());
    if (!cn.empty()) add_cn(X509_REQ_get_subject_name(req.get()), cn);
    if (san_dns) {
        STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(exts, dns_san(*san_dns).release());
        X509_REQ_add_extensions(req.get(), exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    X509_REQ_set_pubkey(req.get(), key.get());
    if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0)
        throw std::runtime_error("cannot sign CSR");
    BioPtr bio = memory_bio();
    PEM_write_bio_X509_REQ(bio.get(), req.get());
    return bio_contents(bio.get());
}

// `cert` with its subject CN and/or its subjectAltName replaced by these bytes, re-signed by
// `issuer_key` (so it still chains to the issuer that made `cert`).
inline Certificate with_names(const Certificate& cert, const PrivateKey& issuer_key,
                              const std::optional<std::string>& cn,
                              const std::optional<std::string>& san_dns = std::nullopt) {
    X509Ptr x(X509_dup(cert.get()));
    if (cn) {
        X509NamePtr name(X509_NAME_new());
        add_cn(name.get(), *cn);
        X509_set_subject_name(x.get(), name.get());
    }
    if (san_dns) {
        int at = X509_get_ext_by_NID(x.get(), NID_subject_alt_name, -1);
        if (at >= 0) X509_EXTENSION_free(X509_delete_ext(x.get(), at));
        X509_add_ext(x.get(), dns_san(*san_dns).get(), -1);
    }
    if (X509_sign(x.get(), issuer_key.get(), EVP_sha256()) <= 0)
        throw std::runtime_error("cannot sign certificate");
    return reparsed(std::move(x));
}

// `cert` with one more extension (OpenSSL config syntax, e.g. NID_name_constraints,
// "critical,permitted;DNS:.devices.example"), re-signed by `issuer_key`.
inline Certificate with_extension(const Certificate& cert, const PrivateKey& issuer_key, int nid,
                                  const std::string& value) {
    X509Ptr x(X509_dup(cert.get()));
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, nullptr, x.get(), nullptr, nullptr, 0);
    X509ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || !X509_add_ext(x.get(), ext.get(), -1) ||
        X509_sign(x.get(), issuer_key.get(), EVP_sha256()) <= 0)
        throw std::runtime_error("cannot add extension " + value);
    return reparsed(std::move(x));
}

}  // namespace raw

}  // namespace brokertls::test
