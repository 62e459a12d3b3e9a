#include "brokertls/crypto/sealing.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <memory>
#include <vector>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {

namespace {

constexpr std::string_view kVersion = "v1:";
constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;

struct CipherCtxFree {
    void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

std::string hex(const unsigned char* bytes, size_t size) {
    std::string out(2 * size + 1, '\0');
    size_t length = 0;
    if (!OPENSSL_buf2hexstr_ex(out.data(), out.size(), &length, bytes, size, '\0'))
        throw std::bad_alloc();
    out.resize(length - 1);  // without the terminating NUL
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::optional<std::vector<unsigned char>> unhex(std::string_view text) {
    if (text.empty() || text.size() % 2 != 0) return std::nullopt;
    std::string copy(text);  // NUL-terminated for OpenSSL
    std::vector<unsigned char> out(text.size() / 2);
    size_t length = 0;
    if (!OPENSSL_hexstr2buf_ex(out.data(), out.size(), &length, copy.c_str(), '\0') ||
        length != out.size())
        return std::nullopt;
    return out;
}

}  // namespace

SecretSealer SecretSealer::load(const std::filesystem::path& file, bool create) {
    SecretSealer sealer;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
        if (!create || errno != ENOENT)
            fail(ErrorKind::Io, file.string(), "cannot read the secrets key");
        if (RAND_bytes(sealer.key_.data(), static_cast<int>(sealer.key_.size())) != 1)
            throw Error(ErrorKind::Io, "random generator failed");
        write_file_atomic(file, hex(sealer.key_.data(), sealer.key_.size()) + "\n", kPrivateMode);
        return sealer;
    }
    if ((st.st_mode & 077) != 0)
        fail(ErrorKind::Io, file.string(),
             "the secrets key is readable or writable by group or others: chmod 600 it");
    std::string text = read_file(file);
    std::string line = text.substr(0, text.find('\n'));
    auto bytes = unhex(line);
    OPENSSL_cleanse(text.data(), text.size());
    OPENSSL_cleanse(line.data(), line.size());
    if (!bytes || bytes->size() != sealer.key_.size())
        fail(ErrorKind::Input, file.string(),
             "must hold 64 hex digits (openssl rand -hex 32 makes them)");
    std::copy(bytes->begin(), bytes->end(), sealer.key_.begin());
    OPENSSL_cleanse(bytes->data(), bytes->size());
    return sealer;
}

SecretSealer::~SecretSealer() {
    OPENSSL_cleanse(key_.data(), key_.size());
}

std::string SecretSealer::seal(std::string_view secret, std::string_view context) const {
    std::vector<unsigned char> out(kNonce + secret.size() + kTag);
    if (RAND_bytes(out.data(), kNonce) != 1) throw Error(ErrorKind::Io, "random generator failed");
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    int length = 0;
    if (!ctx ||
        EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), out.data()) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &length,
                          reinterpret_cast<const unsigned char*>(context.data()),
                          static_cast<int>(context.size())) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out.data() + kNonce, &length,
                          reinterpret_cast<const unsigned char*>(secret.data()),
                          static_cast<int>(secret.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out.data() + kNonce + length, &length) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag,
                            out.data() + kNonce + secret.size()) != 1)
        throw Error(ErrorKind::Io, "cannot seal a secret: " + openssl_reason());
    return std::string(kVersion) + hex(out.data(), out.size());
}

std::optional<std::string> SecretSealer::open(std::string_view sealed,
                                              std::string_view context) const {
    if (sealed.substr(0, kVersion.size()) != kVersion) return std::nullopt;
    auto bytes = unhex(sealed.substr(kVersion.size()));
    if (!bytes || bytes->size() < kNonce + kTag) return std::nullopt;
    size_t size = bytes->size() - kNonce - kTag;
    std::string secret(size, '\0');
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    int length = 0;
    auto* tag = bytes->data() + kNonce + size;
    bool ok =
        ctx &&
        EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), bytes->data()) ==
            1 &&
        EVP_DecryptUpdate(ctx.get(), nullptr, &length,
                          reinterpret_cast<const unsigned char*>(context.data()),
                          static_cast<int>(context.size())) == 1 &&
        EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(secret.data()), &length,
                          bytes->data() + kNonce, static_cast<int>(size)) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag) == 1 &&
        EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(secret.data()) + length,
                            &length) == 1;
    if (!ok) {
        OPENSSL_cleanse(secret.data(), secret.size());
        ERR_clear_error();
        return std::nullopt;
    }
    return secret;
}

}  // namespace brokertls
