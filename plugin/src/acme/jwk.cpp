#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <vector>

#include "acme/jws.hpp"
#include "brokertls/error.hpp"

namespace brokertls {

namespace {

BignumPtr bn_param(const EVP_PKEY* key, const char* name) {
    BIGNUM* bn = nullptr;
    if (!EVP_PKEY_get_bn_param(key, name, &bn))
        fail(ErrorKind::Input, "account key", std::string("cannot read ") + name);
    return BignumPtr(bn);
}

// Big-endian bytes; padded to `width` when given (EC coordinates have a fixed size), minimal
// otherwise (RSA modulus and exponent).
std::string bn_bytes(const BIGNUM* bn, int width = 0) {
    int size = width ? width : BN_num_bytes(bn);
    std::vector<unsigned char> out(static_cast<size_t>(size));
    int n = width ? BN_bn2binpad(bn, out.data(), width) : BN_bn2bin(bn, out.data());
    if (n < 0) fail(ErrorKind::Input, "account key", "cannot encode a key parameter");
    return std::string(reinterpret_cast<char*>(out.data()), static_cast<size_t>(n));
}

}  // namespace

std::string jws_algorithm(const PrivateKey& key) {
    if (key.is_rsa()) return "RS256";
    switch (key.type()) {
        case KeyType::EcP256:
            return "ES256";
        case KeyType::EcP384:
            return "ES384";
        default:
            fail(ErrorKind::Usage, std::string(key_type_name(key.type())) + " account key",
                 "ACME accounts need an ecdsa-p256, ecdsa-p384 or RSA key");
    }
}

std::string jwk_json(const PrivateKey& key) {
    jws_algorithm(key);  // refuses key types ACME cannot use, naming the type
    return jwk_json(key.get());
}

std::string jwk_json(const EVP_PKEY* key) {
    // nlohmann::json objects keep their members sorted, which is exactly the lexicographic
    // order and whitespace-free form RFC 7638 §3 asks for.
    nlohmann::json jwk;
    std::string alg;
    if (EVP_PKEY_is_a(key, "RSA")) {
        alg = "RS256";
    } else if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = "";
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       nullptr);
        std::string_view name(group);
        if (name == "prime256v1" || name == "P-256") alg = "ES256";
        if (name == "secp384r1" || name == "P-384") alg = "ES384";
    }
    if (alg.empty())
        fail(ErrorKind::Usage, "account key", "ACME accounts need a P-256, P-384 or RSA key");
    if (alg == "RS256") {
        jwk["kty"] = "RSA";
        jwk["n"] = base64url(bn_bytes(bn_param(key, OSSL_PKEY_PARAM_RSA_N).get()));
        jwk["e"] = base64url(bn_bytes(bn_param(key, OSSL_PKEY_PARAM_RSA_E).get()));
    } else {
        int width = alg == "ES256" ? 32 : 48;
        jwk["kty"] = "EC";
        jwk["crv"] = alg == "ES256" ? "P-256" : "P-384";
        jwk["x"] = base64url(bn_bytes(bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X).get(), width));
        jwk["y"] = base64url(bn_bytes(bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y).get(), width));
    }
    return jwk.dump();
}

std::string jwk_thumbprint(const PrivateKey& key) {
    jws_algorithm(key);
    return jwk_thumbprint(key.get());
}

std::string jwk_thumbprint(const EVP_PKEY* key) {
    std::string jwk = jwk_json(key);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (!EVP_Digest(jwk.data(), jwk.size(), digest, &size, EVP_sha256(), nullptr))
        fail(ErrorKind::Io, "JWK thumbprint", openssl_reason());
    return base64url(std::string_view(reinterpret_cast<char*>(digest), size));
}

}  // namespace brokertls
