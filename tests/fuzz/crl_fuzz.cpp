// CRLs (PEM or DER): parsing and what the trust snapshot reads from one.
#include "brokertls/crypto/crl.hpp"
#include "brokertls/error.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    try {
        Crl crl = Crl::parse(fuzz::text(data, size), "fuzz");
        (void)crl.issuer();
        (void)crl.this_update();
        (void)crl.next_update();
        (void)crl.number();
        for (const auto& r : crl.revoked()) (void)revocation_reason_name(r.reason);
        Crl::parse(crl.to_der(), "fuzz: re-encoded");
        (void)crl.to_pem();
    } catch (const Error&) {
    }
    return 0;
}
