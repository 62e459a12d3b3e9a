#pragma once
// ACME tokens end up in file names and URL paths, so they are checked against RFC 8555 §8.3
// (base64url characters only) before use: a CA cannot make us write "../../etc/x".

#include <string_view>

namespace brokertls {

inline bool is_base64url_token(std::string_view token) {
    if (token.empty()) return false;
    for (char c : token) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok) return false;
    }
    return true;
}

}  // namespace brokertls
