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

}  // namespace

std::optional<AcmemsHmac> parse_acmems_authentication(std::string_view header) {
    if (header.size() > kMaxHeader) return std::nullopt;
    constexpr std::string_view kScheme = "hmac";
    if (header.size() <= kScheme.size() ||
        ascii_lower(header.substr(0, kScheme.size())) != kScheme ||
        (header[kScheme.size()] != ' ' && header[kScheme.size()] != '\t'))
        return std::nullopt;
    auto params = parse_auth_params(header.substr(kScheme.size()));
    if (!params || params->size() != 2 || !params->count("name") || !params->count("hash"))
        return std::nullopt;
    std::string name = ascii_lower(params->at("name"));
    // The digests ACMEMS clients name, nothing weaker than SHA-256: Python's names, and OpenSSL
    // 3's, whose `openssl dgst -hmac` prints "HMAC-SHA2-256(...)" where 1.1 printed
    // "HMAC-SHA256(...)", so the seed's sed one-liner now says "name=sha2-256".
    static const std::map<std::string, std::string> kDigests = {
        {"sha256", "SHA256"},   {"sha384", "SHA384"},   {"sha512", "SHA512"},
        {"sha2-256", "SHA256"}, {"sha2-384", "SHA384"}, {"sha2-512", "SHA512"}};
    auto digest = kDigests.find(name);
    const std::string& hash = params->at("hash");
    if (digest == kDigests.end() || !is_hex_text(hash) || hash.size() > 128) return std::nullopt;
    return AcmemsHmac{digest->second, ascii_lower(hash)};
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
