// PEM or DER certificates (a chain): parsing, and every accessor the trust code and
// brokertls-ca use on a parsed certificate.
#include "brokertls/crypto/certificate.hpp"
#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    try {
        for (const Certificate& cert : Certificate::parse_chain(fuzz::text(data, size), "fuzz")) {
            (void)printable(cert.subject());
            (void)printable(cert.issuer());
            (void)identity_problem(cert.common_name());
            (void)cert.serial_hex();
            for (const auto& san : cert.subject_alt_names()) (void)san.to_string();
            (void)cert.not_before();
            (void)cert.not_after();
            (void)cert.extended_key_usage();
            (void)cert.key_usage();
            (void)cert.basic_constraints();
            (void)cert.is_self_signed();
            (void)cert.fingerprint_sha256();
            (void)cert.key_algorithm();
            (void)cert.signed_by(cert);
            Certificate::parse(cert.to_der(), "fuzz: re-encoded");
            (void)cert.to_pem();
        }
    } catch (const Error&) {
    }
    return 0;
}
