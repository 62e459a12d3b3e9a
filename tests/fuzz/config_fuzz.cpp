// brokertls.json: parse_config must refuse any text with brokertls::Error and nothing else.
#include "brokertls/error.hpp"
#include "config/config.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        brokertls::parse_config(brokertls::fuzz::text(data, size), "fuzz/brokertls.json");
    } catch (const brokertls::Error&) {
    }
    return 0;
}
