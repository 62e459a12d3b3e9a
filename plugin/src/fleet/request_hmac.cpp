#include "fleet/request_hmac.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "brokertls/crypto/digest.hpp"
#include "brokertls/error.hpp"

namespace brokertls {

namespace {
constexpr std::size_t kMaxHeader = 1024;
}  // namespace

bool is_hex_text(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
}

std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::optional<std::map<std::string, std::string>> parse_auth_params(std::string_view text) {
    std::map<std::string, std::string> params;
    std::size_t i = 0;
    auto blank = [&] {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    };
    while (true) {
        blank();
        if (i == text.size()) break;
        std::size_t name_start = i;
        while (i < text.size() && text[i] >= 'a' && text[i] <= 'z') ++i;
        if (i == name_start || i == text.size() || text[i] != '=') return std::nullopt;
        std::string name(text.substr(name_start, i - name_start));
        std::size_t value_start = ++i;
        while (i < text.size() && text[i] > ' ' && text[i] < 0x7f && text[i] != ',' &&
               text[i] != '"')
            ++i;
        if (i == value_start) return std::nullopt;
        if (!params.emplace(name, std::string(text.substr(value_start, i - value_start))).second)
            return std::nullopt;
        blank();
        if (i < text.size() && text[i] == ',') ++i;
    }
    if (params.empty()) return std::nullopt;
    return params;
}

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
        fail(ErrorKind::Io, "random", "no randomness: " + openssl_reason());
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : raw) {
        out += kHex[b >> 4];
        out += kHex[b & 0xf];
    }
    return out;
}

std::optional<RequestHmac> parse_request_hmac(std::string_view header) {
    if (header.size() > kMaxHeader || !header.starts_with(kRequestHmacScheme) ||
        header.size() == kRequestHmacScheme.size() || header[kRequestHmacScheme.size()] != ' ')
        return std::nullopt;
    auto params = parse_auth_params(header.substr(kRequestHmacScheme.size()));
    if (!params || params->size() != 4) return std::nullopt;
    for (const char* k : {"keyid", "ts", "nonce", "sig"})
        if (!params->count(k)) return std::nullopt;
    RequestHmac auth;
    auth.key_id = params->at("keyid");
    if (auth.key_id.size() > 128) return std::nullopt;
    const std::string& ts = params->at("ts");
    auto [end, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), auth.timestamp);
    if (ec != std::errc() || end != ts.data() + ts.size() || auth.timestamp < 0)
        return std::nullopt;
    auth.nonce = ascii_lower(params->at("nonce"));
    auth.signature = ascii_lower(params->at("sig"));
    if (!is_hex_text(auth.nonce) || auth.nonce.size() < 16 || auth.nonce.size() > 64 ||
        !is_hex_text(auth.signature) || auth.signature.size() != 64)
        return std::nullopt;
    return auth;
}

std::string request_hmac_message(std::string_view method, std::string_view target,
                                 std::int64_t timestamp, std::string_view nonce,
                                 std::string_view body) {
    std::string m(kRequestHmacScheme);
    m += '\n';
    m += method;
    m += '\n';
    m += target;
    m += '\n' + std::to_string(timestamp) + '\n';
    m += nonce;
    m += '\n' + sha256_hex(body);
    return m;
}

std::string sign_request_hmac(std::string_view key_id, std::string_view key,
                              std::string_view method, std::string_view target,
                              std::string_view body, TimePoint now, std::string nonce) {
    if (nonce.empty()) nonce = random_hex(16);
    std::int64_t ts =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    std::string sig =
        hmac_hex("SHA256", key, request_hmac_message(method, target, ts, nonce, body));
    return std::string(kRequestHmacScheme) + " keyid=" + std::string(key_id) +
           ", ts=" + std::to_string(ts) + ", nonce=" + nonce + ", sig=" + sig;
}

bool request_hmac_valid(const RequestHmac& auth, std::string_view key, std::string_view method,
                        std::string_view target, std::string_view body) {
    std::string expected = hmac_hex(
        "SHA256", key, request_hmac_message(method, target, auth.timestamp, auth.nonce, body));
    return constant_time_equal(expected, auth.signature);
}

}  // namespace brokertls
