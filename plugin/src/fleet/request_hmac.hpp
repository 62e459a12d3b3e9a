#pragma once
// The request HMAC of brokertls-service's /v1 API, for both ends: clients (brokertls-enroll,
// the broker's `service` certificate source) sign with it, the service checks it.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "brokertls/crypto/time.hpp"

namespace brokertls {

// The parameters of an Authorization-style header, "k1=v1, k2=v2" or "k1=v1 k2=v2": names
// [a-z]+, values of printable characters without blanks, commas or quotes, each name once.
// nullopt for anything else.
std::optional<std::map<std::string, std::string>> parse_auth_params(std::string_view text);
bool is_hex_text(std::string_view text);  // one or more hex digits, nothing else
std::string ascii_lower(std::string_view text);
// Random bytes as lower-case hex (OpenSSL's RAND_bytes).
std::string random_hex(std::size_t bytes);

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

}  // namespace brokertls
