// brokertls-service.json, as an operator (or a broken deploy tool) may write it.
#include "brokertls/error.hpp"
#include "fuzz_support.hpp"
#include "service/service_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        brokertls::parse_service_config(brokertls::fuzz::text(data, size), "/nonexistent/service.json");
    } catch (const brokertls::Error&) {
    }
    return 0;
}
