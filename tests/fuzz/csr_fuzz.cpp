// PKCS#10 requests (PEM or DER): parsing and what brokertls-ca reads from one.
#include "brokertls/crypto/csr.hpp"
#include "brokertls/error.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    try {
        CertificateRequest csr = CertificateRequest::parse(fuzz::text(data, size), "fuzz");
        (void)csr.subject();
        (void)csr.common_name();
        for (const auto& san : csr.subject_alt_names()) (void)san.to_string();
        (void)csr.signature_valid();
        CertificateRequest::parse(csr.to_der(), "fuzz: re-encoded");
        (void)csr.to_pem();
    } catch (const Error&) {
    }
    return 0;
}
