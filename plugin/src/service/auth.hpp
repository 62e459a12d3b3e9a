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

namespace brokertls {

// ACMEMS: "Authentication: hmac name=sha256, hash=HEX" (its README shows the comma both with
// and without). `digest` as OpenSSL names it ("SHA256"), `hash` in lower case.
struct AcmemsHmac {
    std::string digest;
    std::string hash;
};
std::optional<AcmemsHmac> parse_acmems_authentication(std::string_view header);

// /v1: "Authorization: BTLS-HMAC-SHA256 keyid=ID, ts=UNIX_SECONDS, nonce=HEX, sig=HEX".
// ACMEMS's MAC covers the body only and cfssl's timestamp is never checked, so a recorded
// request can be sent again; ours covers the method and target, and the time and nonce let
// the service accept it once.
inline constexpr std::string_view kRequestHmacScheme = "BTLS-HMAC-SHA256";
struct RequestHmac {
    std::string key_id;
    std::int64_t timestamp = 0;
    std::string nonce;      // 16 to 64 hex digits
    std::string signature;  // 64 hex digits, lower case
};
std::optional<RequestHmac> parse_request_hmac(std::string_view header);
// What the MAC is computed over: the scheme, method, target, timestamp, nonce and the body's
// SHA-256 in hex, one per line.
std::string request_hmac_message(std::string_view method, std::string_view target,
                                 std::int64_t timestamp, std::string_view nonce,
                                 std::string_view body);
// The Authorization value a client sends; `nonce` empty: a random one.
std::string sign_request_hmac(std::string_view key_id, std::string_view key,
                              std::string_view method, std::string_view target,
                              std::string_view body, TimePoint now, std::string nonce = "");
// Whether `auth` is a correct MAC under `key` for this request (constant time).
bool request_hmac_valid(const RequestHmac& auth, std::string_view key, std::string_view method,
                        std::string_view target, std::string_view body);

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
