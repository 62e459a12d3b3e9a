#pragma once
// Secrets at rest (a device's HMAC key in brokertls-service's store; private keys once a store
// is shared): AES-256-GCM under a key kept apart from them, with the record's name as
// associated data, so that a sealed value copied into another record does not open.

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace brokertls {

class SecretSealer {
  public:
    // The key: 64 hex digits on the first line of `file`, which group and others must not be
    // able to read. With `create`, a missing file is made (0600, 32 random bytes). Throws
    // Error naming the file.
    static SecretSealer load(const std::filesystem::path& file, bool create);
    ~SecretSealer();
    SecretSealer(const SecretSealer&) = default;
    SecretSealer& operator=(const SecretSealer&) = default;

    // "v1:" + hex(12-byte random nonce | ciphertext | 16-byte tag).
    std::string seal(std::string_view secret, std::string_view context) const;
    // The secret; nullopt when `sealed` is not what this key sealed for `context` (another
    // key, another record, damaged).
    std::optional<std::string> open(std::string_view sealed, std::string_view context) const;

  private:
    SecretSealer() = default;
    std::array<unsigned char, 32> key_{};
};

}  // namespace brokertls
