#pragma once

#include <chrono>
#include <string>

#include <openssl/asn1.h>

namespace brokertls {

using SystemClock = std::chrono::system_clock;
using TimePoint = SystemClock::time_point;
using Days = std::chrono::duration<long, std::ratio<86400>>;

TimePoint from_asn1_time(const ASN1_TIME* t);
// "2026-11-24T17:05:00Z"
std::string to_iso8601(TimePoint t);
// Parses the form to_iso8601 writes; throws Error(Input).
TimePoint from_iso8601(const std::string& text);

}  // namespace brokertls
