// Inputs the fuzz targets (tests/fuzz) found to break a parser, each kept in
// tests/fuzz/regressions/TARGET/ and checked here on the normal build.
#include <gtest/gtest.h>

#include "acme/wire.hpp"
#include "expect_error.hpp"

namespace brokertls {
namespace {

// fuzz_acme (renewalInfo): a window in the year 9999 overflowed TimePoint (UBSan: signed
// integer overflow in std::chrono) instead of being refused.
TEST(FuzzRegressions, AcmeTimeBeyondWhatATimePointHoldsIsRefused) {
    for (const char* text :
         {"9999-12-31T23:59:59Z", "2262-04-12T00:00:00Z", "-999-01-01T00:00:00Z"})
        EXPECT_EQ(test::error_of([&] { acme_wire::parse_rfc3339(text, "acme renewalInfo u"); },
                                 ErrorKind::Input),
                  std::string("acme renewalInfo u: time out of range: ") + text);
    EXPECT_EQ(acme_wire::parse_rfc3339("2261-12-31T00:00:00Z", "u"),
              Clock::from_time_t(9214560000));
}

}  // namespace
}  // namespace brokertls
