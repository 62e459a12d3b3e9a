#pragma once
// Making certificates and CRLs. The profile, not the request, decides every extension: a CSR
// contributes only its public key and the names the caller has already allowed.

#include <string>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/crl.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/names.hpp"

namespace brokertls {

enum class CertificateProfile {
    RootCa,          // CA:TRUE critical, keyCertSign + cRLSign
    IntermediateCa,  // CA:TRUE pathlen:0 critical, keyCertSign + cRLSign
    Client,  // CA:FALSE critical, digitalSignature (+keyEncipherment for RSA), EKU clientAuth
    Server,  // CA:FALSE critical, digitalSignature (+keyEncipherment for RSA), EKU serverAuth
};

struct CertificateSpec {
    CertificateProfile profile = CertificateProfile::Client;
    std::string common_name;
    std::string organization;  // optional
    std::vector<SubjectAltName> subject_alt_names;
    TimePoint not_before;
    TimePoint not_after;
    std::string serial_hex;  // empty: a fresh random_serial()
};

// A random positive 128-bit serial (RFC 5280 allows up to 20 octets), as uppercase hex.
std::string random_serial();

// Signs `spec` for `subject_key` (a public key). With `issuer` null the certificate is
// self-signed by `issuer_key` (which must then be the subject's own key).
Certificate sign_certificate(const CertificateSpec& spec, EVP_PKEY* subject_key,
                             const PrivateKey& issuer_key, const Certificate* issuer);
// Signs `spec` for the key of `request` (whose signature the caller has checked), copying its
// SubjectPublicKeyInfo bytes: cheaper than the above under OpenSSL 3, which
// would encode and decode the key again. The result is for encoding (to_pem, to_der,
// fingerprint): its public key is not decoded, so key_algorithm() and matches_key() need it
// parsed again.
Certificate sign_certificate(const CertificateSpec& spec, const CertificateRequest& request,
                             const PrivateKey& issuer_key, const Certificate& issuer);

Crl sign_crl(const Certificate& issuer, const PrivateKey& issuer_key,
             const std::vector<RevokedCertificate>& revoked, TimePoint this_update,
             TimePoint next_update, long crl_number);

}  // namespace brokertls
