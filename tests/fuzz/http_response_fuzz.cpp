// An HTTP answer from an ACME CA: header lookup, Link (rel) targets, Retry-After, and the
// problem document an error answer carries.
#include "acme/http.hpp"
#include "acme/problem.hpp"
#include "brokertls/error.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    HttpResponse response = fuzz::http_response(fuzz::text(data, size));
    (void)response.header("location");
    (void)response.header_values("link");
    (void)response.links("alternate");
    (void)response.links("up");
    for (const auto& value : response.header_values("retry-after"))
        (void)parse_retry_after(value, TimePoint{});
    try {
        (void)parse_problem(response, TimePoint{}).to_string();
    } catch (const Error&) {
    }
    return 0;
}
