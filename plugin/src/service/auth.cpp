#include "service/auth.hpp"

#include <arpa/inet.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

#include "brokertls/crypto/digest.hpp"

namespace brokertls {

namespace {

constexpr std::size_t kMaxHeader = 1024;

bool is_hex(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// "k1=v1, k2=v2" or "k1=v1 k2=v2": names [a-z]+, values of printable characters without
// blanks, commas or quotes; each name once. nullopt for anything else.
std::optional<std::map<std::string, std::string>> parse_params(std::string_view text) {
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

}  // namespace

std::optional<AcmemsHmac> parse_acmems_authentication(std::string_view header) {
    if (header.size() > kMaxHeader) return std::nullopt;
    constexpr std::string_view kScheme = "hmac";
    if (header.size() <= kScheme.size() || lower(header.substr(0, kScheme.size())) != kScheme ||
        (header[kScheme.size()] != ' ' && header[kScheme.size()] != '\t'))
        return std::nullopt;
    auto params = parse_params(header.substr(kScheme.size()));
    if (!params || params->size() != 2 || !params->count("name") || !params->count("hash"))
        return std::nullopt;
    std::string name = lower(params->at("name"));
    // The digests ACMEMS clients name (Python hashlib names); nothing weaker than SHA-256.
    static const std::map<std::string, std::string> kDigests = {
        {"sha256", "SHA256"}, {"sha384", "SHA384"}, {"sha512", "SHA512"}};
    auto digest = kDigests.find(name);
    const std::string& hash = params->at("hash");
    if (digest == kDigests.end() || !is_hex(hash) || hash.size() > 128) return std::nullopt;
    return AcmemsHmac{digest->second, lower(hash)};
}

std::optional<RequestHmac> parse_request_hmac(std::string_view header) {
    if (header.size() > kMaxHeader || !header.starts_with(kRequestHmacScheme) ||
        header.size() == kRequestHmacScheme.size() || header[kRequestHmacScheme.size()] != ' ')
        return std::nullopt;
    auto params = parse_params(header.substr(kRequestHmacScheme.size()));
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
    auth.nonce = lower(params->at("nonce"));
    auth.signature = lower(params->at("sig"));
    if (!is_hex(auth.nonce) || auth.nonce.size() < 16 || auth.nonce.size() > 64 ||
        !is_hex(auth.signature) || auth.signature.size() != 64)
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
    if (nonce.empty()) {
        unsigned char random[16];
        if (RAND_bytes(random, sizeof random) != 1)
            fail(ErrorKind::Io, "nonce", "no randomness: " + openssl_reason());
        static constexpr char kHex[] = "0123456789abcdef";
        for (unsigned char b : random) {
            nonce += kHex[b >> 4];
            nonce += kHex[b & 0xf];
        }
    }
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

ReplayGuard::ReplayGuard(std::chrono::seconds window, std::size_t capacity)
    : window_(window), capacity_(std::max<std::size_t>(capacity, 1)) {}

Problem ReplayGuard::admit(const RequestHmac& auth, TimePoint now) {
    std::int64_t t =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    std::int64_t w = window_.count();
    if (auth.timestamp < t - w || auth.timestamp > t + w)
        return "timestamp " + std::to_string(auth.timestamp) + " is more than " +
               std::to_string(w) + " s from the service's time " + std::to_string(t) +
               " (check the client's clock)";
    std::lock_guard lock(mutex_);
    // Pairs that have left the window can never be admitted again: forget them.
    while (!order_.empty() && order_.front().first < t - w) {
        seen_.erase(order_.front().second);
        order_.pop_front();
    }
    if (auth.timestamp <= floor_)
        return "too many requests in the replay window to remember this one: send it again";
    std::string key = auth.key_id + ' ' + auth.nonce;
    if (!seen_.insert(key).second) return "this request was sent before (nonce already used)";
    order_.emplace_back(auth.timestamp, key);
    while (order_.size() > capacity_) {
        floor_ = std::max(floor_, order_.front().first);
        seen_.erase(order_.front().second);
        order_.pop_front();
    }
    return std::nullopt;
}

std::optional<AddressRange> AddressRange::parse(std::string_view text) {
    if (text.size() > 64) return std::nullopt;
    std::string address(text.substr(0, text.find('/')));
    AddressRange range;
    if (inet_pton(AF_INET, address.c_str(), range.bytes_) == 1) {
        range.family_ = AF_INET;
        range.prefix_ = 32;
    } else if (inet_pton(AF_INET6, address.c_str(), range.bytes_) == 1) {
        range.family_ = AF_INET6;
        range.prefix_ = 128;
    } else {
        return std::nullopt;
    }
    if (auto slash = text.find('/'); slash != std::string_view::npos) {
        std::string_view digits = text.substr(slash + 1);
        int prefix = -1;
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (ec != std::errc() || end != digits.data() + digits.size() || prefix < 0 ||
            prefix > range.prefix_ || digits.empty())
            return std::nullopt;
        range.prefix_ = prefix;
    }
    return range;
}

bool AddressRange::contains(std::string_view address) const {
    unsigned char bytes[16] = {};
    std::string text(address);
    if (inet_pton(family_, text.c_str(), bytes) != 1) return false;
    int full = prefix_ / 8, rest = prefix_ % 8;
    if (!std::equal(bytes, bytes + full, bytes_)) return false;
    if (rest == 0) return true;
    unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (bytes[full] & mask) == (bytes_[full] & mask);
}

}  // namespace brokertls
