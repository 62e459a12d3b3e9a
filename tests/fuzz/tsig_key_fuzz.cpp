// BIND TSIG key files (tsig-keygen format) for the rfc2136 solver.
#include "brokertls/error.hpp"
#include "challenges/dns_tsig_key.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        brokertls::parse_tsig_key(brokertls::fuzz::text(data, size), "fuzz/tsig.key");
    } catch (const brokertls::Error&) {
    }
    return 0;
}
