// CRLs (PEM or DER): OpenSSL's parse and what the trust snapshot reads from one, and the
// snapshot's own DER walk (CrlInForce, RevocationIndex), which must agree with OpenSSL on every
// CRL both accept: same issuer, number and revoked serials.
#include "brokertls/crypto/crl.hpp"
#include "brokertls/error.hpp"
#include "fuzz_support.hpp"
#include "trust/revocation_index.hpp"

#include <cstdlib>
#include <optional>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    std::optional<Crl> crl;
    try {
        crl = Crl::parse(fuzz::text(data, size), "fuzz");
        (void)crl->issuer();
        (void)crl->this_update();
        (void)crl->next_update();
        (void)crl->number();
        for (const auto& r : crl->revoked()) (void)revocation_reason_name(r.reason);
        Crl::parse(crl->to_der(), "fuzz: re-encoded");
        (void)crl->to_pem();
    } catch (const Error&) {
        crl.reset();
    }
    try {
        CrlInForce compact = CrlInForce::parse(fuzz::text(data, size), "fuzz");
        (void)compact.version_text();
        (void)compact.to_pem();
        RevocationIndex index;
        index.add(compact);
        if (crl) {
            // Both read it: they must read the same.
            if (compact.issuer() != crl->issuer() || compact.number() != crl->number()) abort();
            for (const auto& r : crl->revoked())
                if (!index.contains(crl->issuer(), r.serial_hex)) abort();
        }
    } catch (const Error&) {
    }
    return 0;
}
