#include "brokertls/identity.hpp"

#include <cstdio>

namespace brokertls {

namespace {

// Decodes one UTF-8 sequence at text[i]: the code point and its length, or length 0 when the
// bytes are not well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
std::pair<char32_t, size_t> decode_utf8(std::string_view text, size_t i) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    unsigned char b0 = byte(i);
    if (b0 < 0x80) return {b0, 1};
    size_t len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
    if (len == 0 || b0 > 0xF4 || i + len > text.size()) return {0, 0};
    char32_t cp = b0 & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return {0, 0};
        cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {0, 0};
    return {cp, len};
}

bool is_control(char32_t cp) {
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

bool is_noncharacter(char32_t cp) {
    return (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
}

std::string code_point(char32_t cp) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
    return buf;
}

std::string hex_byte(unsigned char b) {
    char buf[5];
    std::snprintf(buf, sizeof buf, "\\x%02x", b);
    return buf;
}

}  // namespace

Problem identity_problem(std::string_view identity, IdentityRules rules) {
    if (identity.empty()) return "is empty";
    if (identity.size() > 65535) return "is longer than 65535 bytes";
    for (size_t i = 0; i < identity.size();) {
        auto [cp, len] = decode_utf8(identity, i);
        if (len == 0)
            return "is not valid UTF-8 (byte " + hex_byte(static_cast<unsigned char>(identity[i])) +
                   " at offset " + std::to_string(i) + ")";
        if (cp == 0) return "contains a NUL byte at offset " + std::to_string(i);
        if (is_control(cp))
            return "contains a control character (" + code_point(cp) + " at offset " +
                   std::to_string(i) + ")";
        if (is_noncharacter(cp)) return "contains a Unicode noncharacter";
        if (cp == '+' || cp == '#')
            return "contains '" + std::string(1, char(cp)) + "' (an MQTT topic wildcard)";
        if (cp == '/' && !rules.allow_slash) return "contains '/' (an MQTT topic level separator)";
        i += len;
    }
    return std::nullopt;
}

std::string printable(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (size_t i = 0; i < bytes.size();) {
        auto [cp, len] = decode_utf8(bytes, i);
        if (len == 0 || is_control(cp)) {
            // Invalid bytes one at a time; a C1 control (two bytes) as both of its bytes.
            size_t n = len == 0 ? 1 : len;
            for (size_t k = 0; k < n; ++k)
                out += hex_byte(static_cast<unsigned char>(bytes[i + k]));
            i += n;
            continue;
        }
        if (cp == '\\')
            out += "\\\\";
        else
            out.append(bytes.substr(i, len));
        i += len;
    }
    return out;
}

}  // namespace brokertls
