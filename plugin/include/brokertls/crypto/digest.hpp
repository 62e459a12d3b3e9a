#pragma once

#include <string>
#include <string_view>

namespace brokertls {

// SHA-256 of `data` as 64 lowercase hex digits (stable file and folder names).
std::string sha256_hex(std::string_view data);

// HMAC of `data` under `key` with digest `digest` ("SHA256", "SHA512"), as lowercase hex.
// Throws Error(Usage) for a digest OpenSSL does not know.
std::string hmac_hex(std::string_view digest, std::string_view key, std::string_view data);

// Compares two strings in time that depends only on their lengths (secrets, MACs).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace brokertls
