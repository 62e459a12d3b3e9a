#include <openssl/evp.h>

#include <algorithm>
#include <vector>

#include "acme/jws.hpp"
#include "brokertls/error.hpp"

namespace brokertls {

std::string base64url(std::string_view bytes) {
    std::vector<unsigned char> out(4 * ((bytes.size() + 2) / 3) + 1);
    int n = EVP_EncodeBlock(out.data(), reinterpret_cast<const unsigned char*>(bytes.data()),
                            static_cast<int>(bytes.size()));
    std::string text(reinterpret_cast<char*>(out.data()), static_cast<size_t>(n));
    while (!text.empty() && text.back() == '=') text.pop_back();
    std::replace(text.begin(), text.end(), '+', '-');
    std::replace(text.begin(), text.end(), '/', '_');
    return text;
}

std::string base64url_decode(std::string_view text, std::string_view what) {
    // Tolerate the padding some CAs leave on EAB keys; nothing else outside the alphabet.
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    bool alphabet = std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
    });
    // The reason never quotes the text: it may be a secret (an EAB HMAC key).
    if (!alphabet) fail(ErrorKind::Input, what, "not base64url (invalid character)");
    if (text.size() % 4 == 1) fail(ErrorKind::Input, what, "not base64url (bad length)");
    std::string padded(text);
    std::replace(padded.begin(), padded.end(), '-', '+');
    std::replace(padded.begin(), padded.end(), '_', '/');
    size_t padding = (4 - padded.size() % 4) % 4;
    padded.append(padding, '=');
    std::vector<unsigned char> out(padded.size() / 4 * 3 + 1);
    int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(padded.data()),
                            static_cast<int>(padded.size()));
    if (n < 0) fail(ErrorKind::Input, what, "not base64url");
    // EVP_DecodeBlock counts the padding as zero bytes.
    return std::string(reinterpret_cast<char*>(out.data()), static_cast<size_t>(n) - padding);
}

}  // namespace brokertls
