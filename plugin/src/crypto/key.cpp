#include "brokertls/crypto/key.hpp"

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {

// An unencrypted PKCS#8 key's DER: a secret, cleared when freed.
struct Pkcs8Der {
    unsigned char* bytes = nullptr;
    int size = 0;
    Pkcs8Der() = default;
    Pkcs8Der(const Pkcs8Der&) = delete;
    Pkcs8Der& operator=(const Pkcs8Der&) = delete;
    ~Pkcs8Der() { OPENSSL_clear_free(bytes, size > 0 ? static_cast<size_t>(size) : 0); }
};

namespace {

struct KeyTypeName {
    KeyType type;
    std::string_view name;
};

constexpr std::array<KeyTypeName, 11> kKeyTypeNames{{
    {KeyType::EcP256, "ecdsa-p256"},
    {KeyType::EcP384, "ecdsa-p384"},
    {KeyType::Rsa2048, "rsa2048"},
    {KeyType::Rsa3072, "rsa3072"},
    {KeyType::Rsa4096, "rsa4096"},
    {KeyType::Ed25519, "ed25519"},
    // Aliases people type.
    {KeyType::EcP256, "p256"},
    {KeyType::EcP384, "p384"},
    {KeyType::Rsa2048, "rsa-2048"},
    {KeyType::Rsa3072, "rsa-3072"},
    {KeyType::Rsa4096, "rsa-4096"},
}};

int passphrase_callback(char* buf, int size, int /*rwflag*/, void* user) {
    const auto* pass = static_cast<const std::string*>(user);
    if (!pass || pass->size() > static_cast<size_t>(size)) return -1;
    std::memcpy(buf, pass->data(), pass->size());
    return static_cast<int>(pass->size());
}

PkeyPtr generate_key(KeyType type) {
    switch (type) {
        case KeyType::EcP256:
            return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
        case KeyType::EcP384:
            return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
        case KeyType::Rsa2048:
            return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
        case KeyType::Rsa3072:
            return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{3072}));
        case KeyType::Rsa4096:
            return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{4096}));
        case KeyType::Ed25519:
            return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    }
    return nullptr;
}

}  // namespace

std::optional<KeyType> parse_key_type(std::string_view name) {
    for (const auto& entry : kKeyTypeNames)
        if (entry.name == name) return entry.type;
    return std::nullopt;
}

std::string_view key_type_name(KeyType type) {
    for (const auto& entry : kKeyTypeNames)
        if (entry.type == type) return entry.name;
    return "unknown";
}

std::string_view key_type_names() {
    return "ecdsa-p256, ecdsa-p384, rsa2048, rsa3072, rsa4096, ed25519";
}

Problem public_key_problem(const EVP_PKEY* key) {
    if (EVP_PKEY_is_a(key, "ED25519")) return std::nullopt;
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits >= 2048) return std::nullopt;
        return "RSA key of " + std::to_string(bits) + " bits is too weak (at least 2048)";
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = {};
        size_t len = 0;
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len);
        std::string_view g(group, len);
        if (g == "prime256v1" || g == "P-256" || g == "secp384r1" || g == "P-384")
            return std::nullopt;
        return "EC key on curve " + std::string(g.empty() ? "(explicit parameters)" : g) +
               " is not accepted (P-256 or P-384)";
    }
    const char* name = EVP_PKEY_get0_type_name(key);
    return "key type " + std::string(name ? name : "unknown") +
           " is not accepted (RSA of 2048 bits or more, EC P-256/P-384, or Ed25519)";
}

PrivateKey PrivateKey::generate(KeyType type) {
    PkeyPtr key = generate_key(type);
    if (!key) throw Error(ErrorKind::Io, "key generation failed: " + openssl_reason());
    return PrivateKey(std::move(key));
}

namespace {

// The algorithms decode_pkcs8_pem() decodes by their own decoder.
constexpr std::array<const char*, 3> kPkcs8Types{"EC", "RSA", "ED25519"};

// OpenSSL 3.0 builds a decoder context by asking every provider for its decoders, which costs
// four times the decoding itself (467 against 91 microseconds for a P-256 key here): a context
// per thread and key type is kept and reused. A context writes each key it decodes to the
// address it was made with: the slots never move.
class KeyDecoders {
  public:
    KeyDecoders() = default;
    KeyDecoders(const KeyDecoders&) = delete;
    KeyDecoders& operator=(const KeyDecoders&) = delete;
    ~KeyDecoders() {
        for (auto& slot : slots_) OSSL_DECODER_CTX_free(slot.ctx);
    }

    // `type`: an index into kPkcs8Types.
    PkeyPtr decode(size_t type, const Pkcs8Der& der) {
        Slot& slot = slots_.at(type);
        if (!slot.ctx)
            slot.ctx =
                OSSL_DECODER_CTX_new_for_pkey(&slot.out, "DER", "PrivateKeyInfo", kPkcs8Types[type],
                                              EVP_PKEY_KEYPAIR, nullptr, nullptr);
        if (!slot.ctx) return nullptr;
        const unsigned char* in = der.bytes;
        size_t in_len = static_cast<size_t>(der.size);
        bool ok = OSSL_DECODER_from_data(slot.ctx, &in, &in_len);
        PkeyPtr key(slot.out);
        slot.out = nullptr;
        return ok ? std::move(key) : nullptr;
    }

  private:
    struct Slot {
        EVP_PKEY* out = nullptr;
        OSSL_DECODER_CTX* ctx = nullptr;
    };
    std::array<Slot, kPkcs8Types.size()> slots_;
};

// An unencrypted PKCS#8 PEM key (what brokertls writes, and what most tools do) decoded by the
// one decoder of its algorithm (OpenSSL 3.0's generic decoding tries every decoder it has).
// Null when the text is not such a key: the caller then takes the generic path, which also gives
// the error. `der` gets the key's PKCS#8 DER, which is what writing it out again gives.
PkeyPtr decode_pkcs8_pem(std::string_view data, Pkcs8Der& der) {
    if (data.find("-----BEGIN PRIVATE KEY-----") == std::string_view::npos) return nullptr;
    BioPtr bio = memory_bio(data);
    std::unique_ptr<PKCS8_PRIV_KEY_INFO, decltype(&PKCS8_PRIV_KEY_INFO_free)> info(
        PEM_read_bio_PKCS8_PRIV_KEY_INFO(bio.get(), nullptr, nullptr, nullptr),
        PKCS8_PRIV_KEY_INFO_free);
    if (!info) return nullptr;
    const ASN1_OBJECT* algorithm = nullptr;
    if (!PKCS8_pkey_get0(&algorithm, nullptr, nullptr, nullptr, info.get())) return nullptr;
    size_t type;
    switch (OBJ_obj2nid(algorithm)) {
        case NID_X9_62_id_ecPublicKey:
            type = 0;
            break;
        case NID_rsaEncryption:
            type = 1;
            break;
        case NID_ED25519:
            type = 2;
            break;
        default:
            return nullptr;
    }
    der.size = i2d_PKCS8_PRIV_KEY_INFO(info.get(), &der.bytes);
    if (der.size <= 0) return nullptr;
    thread_local KeyDecoders decoders;
    return decoders.decode(type, der);
}

}  // namespace

PrivateKey PrivateKey::parse(std::string_view data, std::string_view source,
                             const Passphrase& passphrase) {
    ERR_clear_error();
    PkeyPtr key;
    std::shared_ptr<const Pkcs8Der> result_der;
    auto der = std::make_shared<Pkcs8Der>();
    if (PkeyPtr fast = decode_pkcs8_pem(data, *der)) {
        key = std::move(fast);
        result_der = std::move(der);
    } else if (looks_like_pem(data)) {
        bool encrypted = data.find("ENCRYPTED") != std::string_view::npos;
        if (encrypted && !passphrase)
            fail(ErrorKind::Input, source, "private key is encrypted: a passphrase is needed");
        BioPtr bio = memory_bio(data);
        std::string pass = passphrase.value_or("");
        key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, passphrase_callback, &pass));
        if (!key && encrypted)
            fail(ErrorKind::Input, source, "wrong passphrase or corrupt private key");
        if (!key) fail(ErrorKind::Input, source, "not a PEM private key");
    } else {
        BioPtr bio = memory_bio(data);
        key.reset(d2i_PrivateKey_bio(bio.get(), nullptr));
        if (!key) fail(ErrorKind::Input, source, "not a PEM or DER private key");
    }
    ERR_clear_error();
    PrivateKey result(std::move(key));
    result.pkcs8_ = std::move(result_der);
    result.type();  // rejects key kinds we do not support
    return result;
}

PrivateKey PrivateKey::load(const std::filesystem::path& path, const Passphrase& passphrase) {
    return parse(read_file(path), path.string(), passphrase);
}

std::string PrivateKey::to_pem(const Passphrase& passphrase) const {
    BioPtr bio = memory_bio();
    int ok;
    if (passphrase) {
        // PEM_write_bio_PKCS8PrivateKey would derive the key with PBKDF2 at 2048 iterations;
        // building the PBES2 parameters ourselves lets us choose scrypt.
        constexpr uint64_t kScryptN = 1 << 14, kScryptR = 8, kScryptP = 5;
        constexpr int kSaltBytes = 16;
        using P8InfoPtr = std::unique_ptr<PKCS8_PRIV_KEY_INFO, decltype(&PKCS8_PRIV_KEY_INFO_free)>;
        using AlgorPtr = std::unique_ptr<X509_ALGOR, decltype(&X509_ALGOR_free)>;
        using SigPtr = std::unique_ptr<X509_SIG, decltype(&X509_SIG_free)>;
        P8InfoPtr info(EVP_PKEY2PKCS8(key_.get()), PKCS8_PRIV_KEY_INFO_free);
        AlgorPtr pbe(PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), nullptr, kSaltBytes, nullptr,
                                           kScryptN, kScryptR, kScryptP),
                     X509_ALGOR_free);
        SigPtr sig(nullptr, X509_SIG_free);
        if (info && pbe) {
            sig.reset(PKCS8_set0_pbe(passphrase->data(), static_cast<int>(passphrase->size()),
                                     info.get(), pbe.get()));
            if (sig) pbe.release();  // owned by sig now
        }
        ok = sig && PEM_write_bio_PKCS8(bio.get(), sig.get());
    } else if (pkcs8_) {
        // Read from PKCS#8: those bytes again (encoding the key anew costs what decoding it did).
        ok = PEM_write_bio(bio.get(), "PRIVATE KEY", "", pkcs8_->bytes, pkcs8_->size);
    } else {
        ok = PEM_write_bio_PKCS8PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr,
                                           nullptr);
    }
    if (!ok) throw Error(ErrorKind::Io, "cannot encode private key: " + openssl_reason());
    return bio_contents(bio.get());
}

std::string PrivateKey::to_der() const {
    if (pkcs8_)
        return std::string(reinterpret_cast<const char*>(pkcs8_->bytes),
                           static_cast<size_t>(pkcs8_->size));
    BioPtr bio = memory_bio();
    if (!i2d_PKCS8PrivateKey_bio(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr))
        throw Error(ErrorKind::Io, "cannot encode private key: " + openssl_reason());
    return bio_contents(bio.get());
}

std::string PrivateKey::public_key_pem() const {
    BioPtr bio = memory_bio();
    if (!PEM_write_bio_PUBKEY(bio.get(), key_.get()))
        throw Error(ErrorKind::Io, "cannot encode public key: " + openssl_reason());
    return bio_contents(bio.get());
}

KeyType PrivateKey::type() const {
    if (EVP_PKEY_is_a(key_.get(), "ED25519")) return KeyType::Ed25519;
    if (EVP_PKEY_is_a(key_.get(), "EC")) {
        char group[64] = {};
        size_t len = 0;
        EVP_PKEY_get_utf8_string_param(key_.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &len);
        std::string_view g(group, len);
        if (g == "prime256v1" || g == "P-256") return KeyType::EcP256;
        if (g == "secp384r1" || g == "P-384") return KeyType::EcP384;
        throw Error(ErrorKind::Input,
                    "unsupported EC curve " + std::string(g) + " (use P-256 or P-384)");
    }
    if (EVP_PKEY_is_a(key_.get(), "RSA")) {
        int bits = EVP_PKEY_get_bits(key_.get());
        if (bits == 2048) return KeyType::Rsa2048;
        if (bits == 3072) return KeyType::Rsa3072;
        if (bits == 4096) return KeyType::Rsa4096;
        throw Error(ErrorKind::Input, "unsupported RSA key size " + std::to_string(bits) +
                                          " (use 2048, 3072 or 4096)");
    }
    throw Error(ErrorKind::Input,
                std::string("unsupported key algorithm ") + EVP_PKEY_get0_type_name(key_.get()));
}

bool PrivateKey::is_rsa() const {
    return EVP_PKEY_is_a(key_.get(), "RSA");
}

const EVP_MD* PrivateKey::signature_digest() const {
    switch (type()) {
        case KeyType::Ed25519:
            return nullptr;
        case KeyType::EcP384:
            return EVP_sha384();
        default:
            return EVP_sha256();
    }
}

}  // namespace brokertls
