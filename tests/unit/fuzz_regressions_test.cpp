// Inputs the fuzz targets (tests/fuzz) found to break a parser, each kept in
// tests/fuzz/regressions/TARGET/ and checked here on the normal build.
#include <gtest/gtest.h>

#include "acme/wire.hpp"
#include "config/config.hpp"
#include "expect_error.hpp"
#include "service/service_config.hpp"

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
              SystemClock::from_time_t(9214560000));
}

// fuzz_service_config: a number beyond a double ("5e5555") made nlohmann throw out_of_range,
// which escaped as no brokertls::Error (brokertls.json shares the parser).
TEST(FuzzRegressions, NumbersBeyondADoubleAreInvalidJson) {
    const std::string text = R"({"listeners": 500000000000e5555})";
    auto reason = [](const std::string& message) {
        EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
        EXPECT_NE(message.find("number overflow"), std::string::npos) << message;
    };
    reason(test::error_of([&] { parse_service_config(text, "/etc/brokertls/service.json"); },
                          ErrorKind::Input));
    reason(test::error_of([&] { parse_config(text, "/etc/brokertls/brokertls.json"); },
                          ErrorKind::Input));
}

}  // namespace
}  // namespace brokertls

#include <openssl/asn1.h>

#include "brokertls/crypto/time.hpp"

namespace brokertls {
namespace {

// fuzz_certificate and fuzz_crl: a notAfter of 99991231235959Z (RFC 5280's "no well-defined
// expiration") overflowed TimePoint. It now means the end of representable time.
TEST(FuzzRegressions, AsnTimesBeyondWhatATimePointHoldsClamp) {
    ASN1_TIME* far = ASN1_TIME_new();
    ASSERT_TRUE(ASN1_TIME_set_string(far, "99991231235959Z"));
    EXPECT_EQ(from_asn1_time(far), TimePoint::max());
    ASSERT_TRUE(ASN1_TIME_set_string(far, "20500101000000Z"));
    EXPECT_EQ(from_asn1_time(far), SystemClock::from_time_t(2524608000));
    ASN1_TIME_free(far);
}

// fuzz_job_state and fuzz_ca_index: the same overflow through job.json and index.jsonl times.
TEST(FuzzRegressions, IsoTimesBeyondWhatATimePointHoldsAreRefused) {
    EXPECT_EQ(test::error_of([] { from_iso8601("9999-12-31T23:59:59Z"); }, ErrorKind::Input),
              "'9999-12-31T23:59:59Z' is outside the years 1678 to 2262");
    EXPECT_EQ(from_iso8601("2050-01-01T00:00:00Z"), SystemClock::from_time_t(2524608000));
}

}  // namespace
}  // namespace brokertls

#include "acme/http.hpp"

namespace brokertls {
namespace {

// fuzz_http_response: a Retry-After HTTP date in the year 4050 overflowed from_time_t.
TEST(FuzzRegressions, RetryAfterDatesBeyondThirtyYearsAreIgnored) {
    TimePoint now = SystemClock::from_time_t(1796169600);  // 2026-12-02
    EXPECT_EQ(parse_retry_after("Wed, 21 Oct 4050 07:28:00 GMT", now), std::nullopt);
    EXPECT_EQ(parse_retry_after("Wed, 02 Dec 2026 01:00:00 GMT", now),
              SystemClock::from_time_t(1796173200));
}

}  // namespace
}  // namespace brokertls
