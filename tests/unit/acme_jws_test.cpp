#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "acme/jws.hpp"
#include "acme_fake_ca.hpp"
#include "expect_error.hpp"

namespace brokertls {
namespace {

using test::decode_jws;
using test::json;

// RFC 7638 §3.1: the example RSA key and its thumbprint.
const char* kRfc7638N =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
    "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368Q"
    "QMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2"
    "NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

PkeyPtr rsa_public_key(const std::string& n, const std::string& e) {
    std::string n_bytes = base64url_decode(n, "n"), e_bytes = base64url_decode(e, "e");
    BignumPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n_bytes.data()),
                             static_cast<int>(n_bytes.size()), nullptr));
    BignumPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e_bytes.data()),
                             static_cast<int>(e_bytes.size()), nullptr));
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n.get());
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e.get());
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
    EVP_PKEY* key = nullptr;
    EVP_PKEY_fromdata_init(ctx.get());
    EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return PkeyPtr(key);
}

TEST(AcmeBase64Url, RoundTripsWithoutPaddingAndWithTheUrlAlphabet) {
    EXPECT_EQ(base64url(""), "");
    EXPECT_EQ(base64url("f"), "Zg");
    EXPECT_EQ(base64url("fo"), "Zm8");
    EXPECT_EQ(base64url("foo"), "Zm9v");
    EXPECT_EQ(base64url("\xfb\xff\xbf"), "-_-_");
    for (std::string s : {"", "a", "ab", "abc", "abcd", "\x00\xff\xfe\x01"}) {
        EXPECT_EQ(base64url_decode(base64url(s), "s"), s);
    }
    EXPECT_EQ(base64url_decode("Zg==", "padded"), "f");  // some CAs pad EAB keys
}

TEST(AcmeBase64Url, RejectsMalformedTextWithoutQuotingIt) {
    auto message =
        test::error_of([] { base64url_decode("c2VjcmV0+/==", "EAB HMAC key"); }, ErrorKind::Input);
    EXPECT_EQ(message, "EAB HMAC key: not base64url (invalid character)");
    EXPECT_EQ(test::error_of([] { base64url_decode("abcde", "x"); }, ErrorKind::Input),
              "x: not base64url (bad length)");
}

TEST(AcmeJwk, Rfc7638ExampleThumbprint) {
    auto key = rsa_public_key(kRfc7638N, "AQAB");
    ASSERT_TRUE(key);
    EXPECT_EQ(jwk_json(key.get()),
              std::string("{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"") + kRfc7638N + "\"}");
    EXPECT_EQ(jwk_thumbprint(key.get()), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST(AcmeJwk, EcMembersInLexicographicOrderWithFixedSizeCoordinates) {
    for (auto [type, crv, width] :
         {std::tuple{KeyType::EcP256, "P-256", 32u}, std::tuple{KeyType::EcP384, "P-384", 48u}}) {
        auto key = PrivateKey::generate(type);
        std::string text = jwk_json(key);
        json jwk = json::parse(text);
        EXPECT_EQ(text, "{\"crv\":\"" + std::string(crv) + "\",\"kty\":\"EC\",\"x\":\"" +
                            jwk["x"].get<std::string>() + "\",\"y\":\"" +
                            jwk["y"].get<std::string>() + "\"}");
        EXPECT_EQ(base64url_decode(jwk["x"].get<std::string>(), "x").size(), width);
        EXPECT_EQ(base64url_decode(jwk["y"].get<std::string>(), "y").size(), width);
        EXPECT_EQ(jwk_thumbprint(key).size(), 43u);  // 32 bytes, unpadded
    }
}

TEST(AcmeJwk, RefusesKeysAcmeCannotUse) {
    auto key = PrivateKey::generate(KeyType::Ed25519);
    auto message = test::error_of([&] { jws_algorithm(key); }, ErrorKind::Usage);
    EXPECT_NE(message.find("ed25519"), std::string::npos) << message;
    test::error_of([&] { jws_sign(key, "kid", "n", "u", "{}"); }, ErrorKind::Usage);
}

class AcmeJwsTest : public ::testing::TestWithParam<std::pair<KeyType, const char*>> {};

TEST_P(AcmeJwsTest, SignatureVerifiesOverProtectedDotPayload) {
    auto [type, alg] = GetParam();
    auto key = PrivateKey::generate(type);
    auto jws = decode_jws(jws_sign(key, "https://ca.test/acct/1", "nonce-1",
                                   "https://ca.test/order", R"({"identifiers":[]})"));
    EXPECT_EQ(jws.header["alg"], alg);
    EXPECT_EQ(jws.header["kid"], "https://ca.test/acct/1");
    EXPECT_FALSE(jws.header.contains("jwk"));
    EXPECT_EQ(jws.header["nonce"], "nonce-1");
    EXPECT_EQ(jws.header["url"], "https://ca.test/order");
    EXPECT_EQ(jws.payload, R"({"identifiers":[]})");
    size_t raw_size = std::string(alg) == "ES256" ? 64 : std::string(alg) == "ES384" ? 96 : 256;
    EXPECT_EQ(jws.signature.size(), raw_size);  // r||s, not DER; RSA-2048: 256 bytes
    EXPECT_TRUE(test::verify_jws(jws, key.get()));

    // A changed payload no longer verifies: the signature covers it.
    auto tampered = jws;
    tampered.signing_input += "x";
    EXPECT_FALSE(test::verify_jws(tampered, key.get()));
    auto other = PrivateKey::generate(type);
    EXPECT_FALSE(test::verify_jws(jws, other.get()));
}

TEST_P(AcmeJwsTest, JwkHeaderWithoutKidAndEmptyPayloadForPostAsGet) {
    auto [type, alg] = GetParam();
    auto key = PrivateKey::generate(type);
    auto jws = decode_jws(jws_sign(key, "", "n2", "https://ca.test/new-acct", ""));
    EXPECT_FALSE(jws.header.contains("kid"));
    EXPECT_EQ(jws.header["jwk"], json::parse(jwk_json(key)));
    EXPECT_EQ(jws.payload, "");
    EXPECT_EQ(jws.signing_input.back(), '.');
    EXPECT_TRUE(test::verify_jws(jws, key.get()));
}

INSTANTIATE_TEST_SUITE_P(Algorithms, AcmeJwsTest,
                         ::testing::Values(std::pair{KeyType::EcP256, "ES256"},
                                           std::pair{KeyType::EcP384, "ES384"},
                                           std::pair{KeyType::Rsa2048, "RS256"}));

TEST(AcmeEab, BindsTheAccountJwkWithHs256) {
    auto account = PrivateKey::generate(KeyType::EcP256);
    std::string mac_key = "0123456789abcdef0123456789abcdef";
    auto jws =
        decode_jws(eab_binding("kid-1", base64url(mac_key), account, "https://ca.test/acct"));
    EXPECT_EQ(jws.header,
              json({{"alg", "HS256"}, {"kid", "kid-1"}, {"url", "https://ca.test/acct"}}));
    EXPECT_FALSE(jws.header.contains("nonce"));  // RFC 8555 §7.3.4
    EXPECT_EQ(jws.payload, jwk_json(account));

    // The MAC, recomputed through a different OpenSSL path (an HMAC EVP_PKEY).
    PkeyPtr hmac(EVP_PKEY_new_raw_private_key(
        EVP_PKEY_HMAC, nullptr, reinterpret_cast<const unsigned char*>(mac_key.data()),
        mac_key.size()));
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    unsigned char mac[32];
    size_t size = sizeof mac;
    ASSERT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, hmac.get()), 1);
    ASSERT_EQ(EVP_DigestSign(ctx, mac, &size,
                             reinterpret_cast<const unsigned char*>(jws.signing_input.data()),
                             jws.signing_input.size()),
              1);
    EVP_MD_CTX_free(ctx);
    EXPECT_EQ(jws.signature, std::string(reinterpret_cast<char*>(mac), size));
}

TEST(AcmeEab, MalformedHmacKeyIsNamedButNotShown) {
    auto account = PrivateKey::generate(KeyType::EcP256);
    auto message = test::error_of(
        [&] { eab_binding("kid-1", "not base64!", account, "https://ca.test/acct"); },
        ErrorKind::Input);
    EXPECT_EQ(message, "EAB HMAC key: not base64url (invalid character)");
}

}  // namespace
}  // namespace brokertls
