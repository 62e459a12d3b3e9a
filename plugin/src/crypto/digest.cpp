#include "brokertls/crypto/digest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <new>
#include <string>

#include "brokertls/error.hpp"

namespace brokertls {

namespace {

std::string to_hex(const unsigned char* bytes, size_t size) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * size);
    for (size_t i = 0; i < size; ++i) {
        out += kHex[bytes[i] >> 4];
        out += kHex[bytes[i] & 0xf];
    }
    return out;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (!EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr))
        throw std::bad_alloc();
    return to_hex(digest, size);
}

std::string hmac_hex(std::string_view digest, std::string_view key, std::string_view data) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t size = 0;
    std::string name(digest);
    // An empty key is a valid HMAC key, but EVP_Q_mac wants a non-null pointer.
    static const unsigned char kNoKey = 0;
    const void* key_bytes =
        key.empty() ? static_cast<const void*>(&kNoKey) : static_cast<const void*>(key.data());
    if (!EVP_Q_mac(nullptr, "HMAC", nullptr, name.c_str(), nullptr, key_bytes, key.size(),
                   reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
                   sizeof mac, &size))
        fail(ErrorKind::Usage, "HMAC digest " + name, "not available: " + openssl_reason());
    return to_hex(mac, size);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace brokertls
