#include "brokertls/crypto/time.hpp"

#include <ctime>

#include "brokertls/error.hpp"

namespace brokertls {

TimePoint from_asn1_time(const ASN1_TIME* t) {
    struct tm tm = {};
    if (!t || !ASN1_TIME_to_tm(t, &tm)) throw Error(ErrorKind::Input, "invalid ASN.1 time");
    return Clock::from_time_t(timegm(&tm));
}

std::string to_iso8601(TimePoint t) {
    std::time_t tt = Clock::to_time_t(t);
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
    return Clock::from_time_t(timegm(&tm));
}

}  // namespace brokertls
