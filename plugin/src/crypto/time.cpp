#include "brokertls/crypto/time.hpp"

#include <ctime>

#include "brokertls/error.hpp"

namespace brokertls {

namespace {

// A TimePoint counts nanoseconds in 64 bits: years 1678 to 2262. Outside that, from_time_t
// overflows (undefined behaviour).
bool representable(std::time_t t) {
    return t >= SystemClock::to_time_t(TimePoint::min()) + 1 &&
           t <= SystemClock::to_time_t(TimePoint::max()) - 1;
}

}  // namespace

TimePoint from_asn1_time(const ASN1_TIME* t) {
    struct tm tm = {};
    if (!t || !ASN1_TIME_to_tm(t, &tm)) throw Error(ErrorKind::Input, "invalid ASN.1 time");
    std::time_t seconds = timegm(&tm);
    // RFC 5280 4.1.2.5: 99991231235959Z means "no well-defined expiration" (IEEE 802.1AR device
    // certificates use it). Such far times are as good as the end of representable time.
    if (!representable(seconds)) return seconds > 0 ? TimePoint::max() : TimePoint::min();
    return SystemClock::from_time_t(seconds);
}

std::string to_iso8601(TimePoint t) {
    std::time_t tt = SystemClock::to_time_t(t);
    struct tm tm = {};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

TimePoint from_iso8601(const std::string& text) {
    struct tm tm = {};
    const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end != '\0')
        throw Error(ErrorKind::Input, "'" + text + "' is not an ISO 8601 UTC time");
    std::time_t seconds = timegm(&tm);
    if (!representable(seconds))
        throw Error(ErrorKind::Input, "'" + text + "' is outside the years 1678 to 2262");
    return SystemClock::from_time_t(seconds);
}

}  // namespace brokertls
