// brokertls-service's authentication headers (ACMEMS's Authentication, the /v1 request HMAC)
// and the address ranges of auth blocks: every byte a client sends before it is trusted.
#include "fuzz_support.hpp"
#include "service/auth.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text = brokertls::fuzz::text(data, size);
    brokertls::parse_acmems_authentication(text);
    if (auto auth = brokertls::parse_request_hmac(text))
        brokertls::request_hmac_valid(*auth, "0123456789abcdef", "POST", "/v1/certificates", text);
    if (auto range = brokertls::AddressRange::parse(text)) range->contains("192.0.2.1");
    return 0;
}
