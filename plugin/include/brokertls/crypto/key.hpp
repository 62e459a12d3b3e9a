#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "brokertls/crypto/handles.hpp"
#include "brokertls/error.hpp"

namespace brokertls {

enum class KeyType { EcP256, EcP384, Rsa2048, Rsa3072, Rsa4096, Ed25519 };

// "ecdsa-p256", "ecdsa-p384", "rsa2048", "rsa3072", "rsa4096", "ed25519" (also "p256", "rsa-2048").
std::optional<KeyType> parse_key_type(std::string_view name);
std::string_view key_type_name(KeyType type);
// The accepted names, for error messages and --help.
std::string_view key_type_names();

// Passphrases are held only as long as a call needs them; never logged.
using Passphrase = std::optional<std::string>;

// Why brokertls will not certify `key`, naming what it is ("RSA key of 1024 bits: ..."); nullopt
// for RSA of at least 2048 bits, EC on P-256 or P-384, and Ed25519.
Problem public_key_problem(const EVP_PKEY* key);

struct Pkcs8Der;

class PrivateKey {
  public:
    static PrivateKey generate(KeyType type);
    // PEM (PKCS#8, traditional, or encrypted PKCS#8) or DER; `source` names the data in errors.
    static PrivateKey parse(std::string_view data, std::string_view source,
                            const Passphrase& passphrase = {});
    static PrivateKey load(const std::filesystem::path& path, const Passphrase& passphrase = {});

    // PKCS#8 PEM; with a passphrase, encrypted PKCS#8 (PBES2: scrypt N=2^14 r=8 p=5, which is
    // OWASP's minimum within OpenSSL's 32 MiB decoding limit, and AES-256-CBC). Keys encrypted
    // before (PBKDF2) still load.
    std::string to_pem(const Passphrase& passphrase = {}) const;
    std::string to_der() const;  // unencrypted PKCS#8
    std::string public_key_pem() const;

    KeyType type() const;
    bool is_rsa() const;
    // The digest certificates and CSRs signed with this key use (nullptr for Ed25519).
    const EVP_MD* signature_digest() const;
    EVP_PKEY* get() const { return key_.get(); }

  private:
    explicit PrivateKey(PkeyPtr key) : key_(std::move(key)) {}
    PkeyPtr key_;
    std::shared_ptr<const Pkcs8Der> pkcs8_;  // as read, when it was unencrypted PKCS#8
};

}  // namespace brokertls
