#pragma once

#include <string>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/key.hpp"

namespace brokertls {

// A PKCS#12 bundle with AES-256-CBC (PBKDF2) for key and certificates and an HMAC-SHA256 MAC,
// which OpenSSL 3, Java 11+ and current Windows/macOS read. `chain` excludes the leaf.
std::string make_pkcs12(const std::string& friendly_name, const PrivateKey& key,
                        const Certificate& cert, const std::vector<Certificate>& chain,
                        const std::string& password);

}  // namespace brokertls
