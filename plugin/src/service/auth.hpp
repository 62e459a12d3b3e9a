#pragma once
// How brokertls-service knows who is asking: ACMEMS's HMAC over the body, our request HMAC for
// /v1 (method, target, time, nonce and body, with a replay window), and source address ranges.
// The parsers take hostile input: strict grammar, bounded sizes, nullopt for anything else.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "brokertls/crypto/time.hpp"
#include "brokertls/error.hpp"
#include "fleet/request_hmac.hpp"

namespace brokertls {

// ACMEMS: "Authentication: hmac name=sha256, hash=HEX" (its README shows the comma both with
// and without). `digest` as OpenSSL names it ("SHA256"), `hash` in lower case.
struct AcmemsHmac {
    std::string digest;
    std::string hash;
};
std::optional<AcmemsHmac> parse_acmems_authentication(std::string_view header);

// Accepts each (key id, nonce) once within `window` of the service's clock on either side.
// Remembers at most `capacity` pairs; when full, the oldest are forgotten, and requests
// older than the oldest remembered one are refused, so a forgotten nonce cannot come back.
class ReplayGuard {
  public:
    explicit ReplayGuard(std::chrono::seconds window, std::size_t capacity = 1'000'000);
    // The reason to refuse, or nullopt (and the nonce is now used).
    Problem admit(const RequestHmac& auth, TimePoint now);

  private:
    std::chrono::seconds window_;
    std::size_t capacity_;
    std::mutex mutex_;
    std::unordered_set<std::string> seen_;
    std::deque<std::pair<std::int64_t, std::string>> order_;  // (timestamp, key) by arrival
    std::int64_t floor_ = INT64_MIN;  // requests at or before this time are refused
};

// An IPv4 or IPv6 network ("192.0.2.0/24", "2001:db8::/32") or one address.
class AddressRange {
  public:
    static std::optional<AddressRange> parse(std::string_view text);
    bool contains(std::string_view address) const;

  private:
    int family_ = 0;
    unsigned char bytes_[16] = {};
    int prefix_ = 0;
};

}  // namespace brokertls
