// Private keys: generation, key type names, PEM/DER encodings and passphrase protection.

#include <gtest/gtest.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <thread>

#include <string>

#include "brokertls/crypto/key.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

// Runs `fn`, expects an Error of `kind` and returns its message ("" when nothing was thrown).
using test::error_of;

bool same_public_key(const PrivateKey& a, const PrivateKey& b) {
    return EVP_PKEY_eq(a.get(), b.get()) == 1;
}

class KeyTypeTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(KeyTypeTest, GeneratedKeyReportsItsType) {
    PrivateKey key = PrivateKey::generate(GetParam());
    ASSERT_NE(key.get(), nullptr);
    EXPECT_EQ(key.type(), GetParam());
    EXPECT_EQ(key.is_rsa(), GetParam() == KeyType::Rsa2048);
}

TEST_P(KeyTypeTest, NameRoundTrip) {
    std::string_view name = key_type_name(GetParam());
    EXPECT_NE(name, "unknown");
    EXPECT_EQ(parse_key_type(name), GetParam());
    EXPECT_NE(key_type_names().find(name), std::string_view::npos);
}

TEST_P(KeyTypeTest, PemRoundTrip) {
    PrivateKey key = PrivateKey::generate(GetParam());
    std::string pem = key.to_pem();
    EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u) << pem.substr(0, 40);
    EXPECT_EQ(pem.find("ENCRYPTED"), std::string::npos);
    PrivateKey back = PrivateKey::parse(pem, "key.pem");
    EXPECT_EQ(back.type(), GetParam());
    EXPECT_TRUE(same_public_key(key, back));
    EXPECT_EQ(back.to_pem(), pem);
}

// Unencrypted PKCS#8 PEM takes the one-decoder path; the same key must come out as through
// OpenSSL's generic decoding.
TEST_P(KeyTypeTest, Pkcs8FastPathGivesTheSameKeyAsGenericDecoding) {
    PrivateKey key = PrivateKey::generate(GetParam());
    std::string pkcs8 = key.to_pem();
    ASSERT_NE(pkcs8.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
    BIO* bio = BIO_new_mem_buf(pkcs8.data(), static_cast<int>(pkcs8.size()));
    EVP_PKEY* generic = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    ASSERT_NE(generic, nullptr);
    PrivateKey parsed = PrivateKey::parse(pkcs8, "key.pem");
    EXPECT_EQ(EVP_PKEY_eq(parsed.get(), generic), 1);
    EXPECT_EQ(parsed.type(), GetParam());
    EVP_PKEY_free(generic);
    // A corrupt PKCS#8 block still gets the generic path's error.
    std::string corrupt = pkcs8;
    corrupt[40] = corrupt[40] == 'A' ? 'B' : 'A';
    EXPECT_EQ(error_of([&] { PrivateKey::parse(corrupt, "key.pem"); }, ErrorKind::Input),
              "key.pem: not a PEM private key");
}

// Decoders are kept per thread and reused: keys of every type, a corrupt one between them, and
// several threads at once each get their own key back.
TEST(KeyDecodeTest, ReusedDecodersGiveEachKeyBack) {
    std::vector<PrivateKey> keys;
    std::vector<std::string> pems;
    for (KeyType type : {KeyType::EcP256, KeyType::Rsa2048, KeyType::Ed25519, KeyType::EcP384}) {
        keys.push_back(PrivateKey::generate(type));
        pems.push_back(keys.back().to_pem());
    }
    std::string corrupt = pems[0];
    corrupt[40] = corrupt[40] == 'A' ? 'B' : 'A';
    auto check = [&] {
        for (int round = 0; round < 3; ++round)
            for (size_t i = 0; i < keys.size(); ++i) {
                PrivateKey back = PrivateKey::parse(pems[i], "key.pem");
                EXPECT_EQ(EVP_PKEY_eq(back.get(), keys[i].get()), 1) << i;
                EXPECT_EQ(back.to_pem(), pems[i]);
                EXPECT_THROW(PrivateKey::parse(corrupt, "key.pem"), Error);
            }
    };
    std::thread other(check);
    check();
    other.join();
}

TEST_P(KeyTypeTest, DerRoundTrip) {
    PrivateKey key = PrivateKey::generate(GetParam());
    std::string der = key.to_der();
    ASSERT_FALSE(der.empty());
    EXPECT_EQ(static_cast<unsigned char>(der[0]), 0x30);  // a DER SEQUENCE
    PrivateKey back = PrivateKey::parse(der, "key.der");
    EXPECT_EQ(back.type(), GetParam());
    EXPECT_TRUE(same_public_key(key, back));
    EXPECT_EQ(back.to_der(), der);
}

TEST_P(KeyTypeTest, EncryptedPemRoundTrip) {
    PrivateKey key = PrivateKey::generate(GetParam());
    std::string pem = key.to_pem(std::string("correct horse"));
    EXPECT_NE(pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----"), std::string::npos);
    PrivateKey back = PrivateKey::parse(pem, "key.pem", std::string("correct horse"));
    EXPECT_EQ(back.type(), GetParam());
    EXPECT_TRUE(same_public_key(key, back));
}

TEST_P(KeyTypeTest, SignatureDigest) {
    PrivateKey key = PrivateKey::generate(GetParam());
    switch (GetParam()) {
        case KeyType::Ed25519:
            EXPECT_EQ(key.signature_digest(), nullptr);
            break;
        case KeyType::EcP384:
            EXPECT_EQ(key.signature_digest(), EVP_sha384());
            break;
        default:
            EXPECT_EQ(key.signature_digest(), EVP_sha256());
            break;
    }
}

INSTANTIATE_TEST_SUITE_P(FastTypes, KeyTypeTest,
                         ::testing::Values(KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048,
                                           KeyType::Ed25519),
                         [](const ::testing::TestParamInfo<KeyType>& param) {
                             std::string name(key_type_name(param.param));
                             std::erase(name, '-');
                             return name;
                         });

TEST(KeyTest, Rsa3072) {
    PrivateKey key = PrivateKey::generate(KeyType::Rsa3072);
    EXPECT_EQ(key.type(), KeyType::Rsa3072);
    EXPECT_TRUE(key.is_rsa());
    EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 3072);
    EXPECT_EQ(PrivateKey::parse(key.to_pem(), "k").type(), KeyType::Rsa3072);
}

TEST(KeyTest, Rsa4096) {
    PrivateKey key = PrivateKey::generate(KeyType::Rsa4096);
    EXPECT_EQ(key.type(), KeyType::Rsa4096);
    EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 4096);
    EXPECT_EQ(PrivateKey::parse(key.to_der(), "k").type(), KeyType::Rsa4096);
}

TEST(KeyTest, GeneratedKeysDiffer) {
    PrivateKey a = PrivateKey::generate(KeyType::EcP256);
    PrivateKey b = PrivateKey::generate(KeyType::EcP256);
    EXPECT_FALSE(same_public_key(a, b));
    EXPECT_NE(a.to_der(), b.to_der());
}

TEST(KeyTest, ParseKeyTypeNamesAndAliases) {
    EXPECT_EQ(parse_key_type("ecdsa-p256"), KeyType::EcP256);
    EXPECT_EQ(parse_key_type("ecdsa-p384"), KeyType::EcP384);
    EXPECT_EQ(parse_key_type("rsa2048"), KeyType::Rsa2048);
    EXPECT_EQ(parse_key_type("rsa3072"), KeyType::Rsa3072);
    EXPECT_EQ(parse_key_type("rsa4096"), KeyType::Rsa4096);
    EXPECT_EQ(parse_key_type("ed25519"), KeyType::Ed25519);
    EXPECT_EQ(parse_key_type("p256"), KeyType::EcP256);
    EXPECT_EQ(parse_key_type("p384"), KeyType::EcP384);
    EXPECT_EQ(parse_key_type("rsa-2048"), KeyType::Rsa2048);
    EXPECT_EQ(parse_key_type("rsa-3072"), KeyType::Rsa3072);
    EXPECT_EQ(parse_key_type("rsa-4096"), KeyType::Rsa4096);
}

TEST(KeyTest, ParseKeyTypeRejectsUnknownNames) {
    EXPECT_EQ(parse_key_type(""), std::nullopt);
    EXPECT_EQ(parse_key_type("rsa1024"), std::nullopt);
    EXPECT_EQ(parse_key_type("ecdsa-p521"), std::nullopt);
    EXPECT_EQ(parse_key_type("dsa"), std::nullopt);
    EXPECT_EQ(parse_key_type("ed25519 "), std::nullopt);
}

TEST(KeyTest, AliasesMapToCanonicalNames) {
    EXPECT_EQ(key_type_name(*parse_key_type("p256")), "ecdsa-p256");
    EXPECT_EQ(key_type_name(*parse_key_type("rsa-4096")), "rsa4096");
}

TEST(KeyTest, EncryptedKeyWithoutPassphrase) {
    std::string pem = PrivateKey::generate(KeyType::EcP256).to_pem(std::string("secret"));
    std::string msg = error_of([&] { PrivateKey::parse(pem, "ca/ca.key"); }, ErrorKind::Input);
    EXPECT_EQ(msg.rfind("ca/ca.key: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("passphrase is needed"), std::string::npos) << msg;
}

TEST(KeyTest, EncryptedKeyWithWrongPassphrase) {
    std::string pem = PrivateKey::generate(KeyType::EcP256).to_pem(std::string("secret"));
    std::string msg = error_of([&] { PrivateKey::parse(pem, "ca/ca.key", std::string("Secret")); },
                               ErrorKind::Input);
    EXPECT_EQ(msg.rfind("ca/ca.key: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("wrong passphrase"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("Secret"), std::string::npos) << "the passphrase leaked: " << msg;
}

// The key-derivation parameters of an encrypted PKCS#8 PEM, read back with OpenSSL.
struct Pbes2Info {
    int kdf = NID_undef;
    int cipher = NID_undef;
    long scrypt_n = 0, scrypt_r = 0, scrypt_p = 0;
    int salt_bytes = 0;
};

Pbes2Info pbes2_of(const std::string& pem) {
    Pbes2Info info;
    BioPtr bio = memory_bio(pem);
    X509_SIG* sig = PEM_read_bio_PKCS8(bio.get(), nullptr, nullptr, nullptr);
    if (!sig) return info;
    const X509_ALGOR* alg = nullptr;
    X509_SIG_get0(sig, &alg, nullptr);
    const ASN1_OBJECT* oid = nullptr;
    int ptype = 0;
    const void* pval = nullptr;
    X509_ALGOR_get0(&oid, &ptype, &pval, alg);
    if (OBJ_obj2nid(oid) == NID_pbes2 && ptype == V_ASN1_SEQUENCE) {
        auto* pbe2 = static_cast<PBE2PARAM*>(ASN1_TYPE_unpack_sequence(
            ASN1_ITEM_rptr(PBE2PARAM), const_cast<ASN1_TYPE*>(alg->parameter)));
        if (pbe2) {
            info.kdf = OBJ_obj2nid(pbe2->keyfunc->algorithm);
            info.cipher = OBJ_obj2nid(pbe2->encryption->algorithm);
            if (info.kdf == NID_id_scrypt) {
                auto* params = static_cast<SCRYPT_PARAMS*>(ASN1_TYPE_unpack_sequence(
                    ASN1_ITEM_rptr(SCRYPT_PARAMS), pbe2->keyfunc->parameter));
                if (params) {
                    info.scrypt_n = ASN1_INTEGER_get(params->costParameter);
                    info.scrypt_r = ASN1_INTEGER_get(params->blockSize);
                    info.scrypt_p = ASN1_INTEGER_get(params->parallelizationParameter);
                    info.salt_bytes = ASN1_STRING_length(params->salt);
                    SCRYPT_PARAMS_free(params);
                }
            }
            PBE2PARAM_free(pbe2);
        }
    }
    X509_SIG_free(sig);
    return info;
}

TEST(KeyTest, PassphraseUsesScrypt) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    std::string pem = key.to_pem(std::string("secret"));
    Pbes2Info info = pbes2_of(pem);
    EXPECT_EQ(info.kdf, NID_id_scrypt) << OBJ_nid2sn(info.kdf);
    EXPECT_EQ(info.cipher, NID_aes_256_cbc) << OBJ_nid2sn(info.cipher);
    // OWASP's scrypt minimum (N=2^17, r=8, p=1) in its equivalent that fits OpenSSL's 32 MiB
    // decoding limit: N=2^14, r=8, p=5.
    EXPECT_GE(info.scrypt_n, 16384);
    EXPECT_EQ(info.scrypt_r, 8);
    EXPECT_GE(info.scrypt_n * info.scrypt_p, 16384L * 5);
    EXPECT_GE(info.salt_bytes, 16);
    EXPECT_TRUE(same_public_key(key, PrivateKey::parse(pem, "k", std::string("secret"))));
    // Two encryptions of one key differ (fresh salt and IV).
    EXPECT_NE(key.to_pem(std::string("secret")), pem);
}

TEST(KeyTest, KeysEncryptedWithPbkdf2StillLoad) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    // What brokertls wrote before: PBES2 with PBKDF2 (2048 iterations) and AES-256-CBC.
    BioPtr bio = memory_bio();
    std::string pass = "old-secret";
    ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), pass.data(),
                                            static_cast<int>(pass.size()), nullptr, nullptr),
              1);
    std::string pem = bio_contents(bio.get());
    ASSERT_EQ(pbes2_of(pem).kdf, NID_id_pbkdf2);
    EXPECT_TRUE(same_public_key(key, PrivateKey::parse(pem, "old.key", pass)));
}

TEST(KeyTest, UnencryptedKeyIgnoresPassphrase) {
    PrivateKey key = PrivateKey::generate(KeyType::Ed25519);
    PrivateKey back = PrivateKey::parse(key.to_pem(), "k", std::string("unused"));
    EXPECT_TRUE(same_public_key(key, back));
}

TEST(KeyTest, GarbagePem) {
    std::string garbage =
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n";
    std::string msg =
        error_of([&] { PrivateKey::parse(garbage, "garbage.pem"); }, ErrorKind::Input);
    EXPECT_EQ(msg, "garbage.pem: not a PEM private key");
}

TEST(KeyTest, GarbageDer) {
    std::string msg =
        error_of([] { PrivateKey::parse("\x30\x03\x02\x01", "blob.der"); }, ErrorKind::Input);
    EXPECT_EQ(msg.rfind("blob.der: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("not a PEM or DER private key"), std::string::npos) << msg;
}

TEST(KeyTest, CertificatePemIsNotAKey) {
    // A PEM block of another kind: still "not a PEM private key".
    std::string pem = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    std::string msg = error_of([&] { PrivateKey::parse(pem, "cert.pem"); }, ErrorKind::Input);
    EXPECT_EQ(msg, "cert.pem: not a PEM private key");
}

TEST(KeyTest, LoadNamesTheFile) {
    test::TempDir dir;
    auto path = dir / "device.key";
    write_file_atomic(path, "nonsense", kPrivateMode);
    std::string msg = error_of([&] { PrivateKey::load(path); }, ErrorKind::Input);
    EXPECT_EQ(msg.rfind(path.string() + ": ", 0), 0u) << msg;
}

TEST(KeyTest, LoadEncryptedFromFile) {
    test::TempDir dir;
    auto path = dir / "device.key";
    PrivateKey key = PrivateKey::generate(KeyType::EcP384);
    write_file_atomic(path, key.to_pem(std::string("pw")), kPrivateMode);
    EXPECT_TRUE(same_public_key(PrivateKey::load(path, std::string("pw")), key));
    std::string msg = error_of([&] { PrivateKey::load(path); }, ErrorKind::Input);
    EXPECT_EQ(msg.rfind(path.string() + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("passphrase is needed"), std::string::npos) << msg;
}

TEST(KeyTest, LoadMissingFileNamesIt) {
    test::TempDir dir;
    auto path = dir / "absent.key";
    std::string msg = error_of([&] { PrivateKey::load(path); }, ErrorKind::Input);
    EXPECT_EQ(msg.rfind(path.string() + ": ", 0), 0u) << msg;
}

TEST(KeyTest, UnsupportedCurveIsRejected) {
    PkeyPtr p521(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521"));
    ASSERT_NE(p521, nullptr);
    BioPtr bio = memory_bio();
    ASSERT_EQ(
        PEM_write_bio_PrivateKey(bio.get(), p521.get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
    std::string pem = bio_contents(bio.get());
    std::string msg = error_of([&] { PrivateKey::parse(pem, "p521.pem"); }, ErrorKind::Input);
    EXPECT_NE(msg.find("unsupported EC curve"), std::string::npos) << msg;
}

TEST(KeyTest, PublicKeyPem) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    std::string pub = key.public_key_pem();
    EXPECT_EQ(pub.rfind("-----BEGIN PUBLIC KEY-----", 0), 0u);
    BioPtr bio = memory_bio(pub);
    PkeyPtr parsed(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    ASSERT_NE(parsed, nullptr);
    EXPECT_EQ(EVP_PKEY_eq(parsed.get(), key.get()), 1);
}

}  // namespace
}  // namespace brokertls
