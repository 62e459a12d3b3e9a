#include "acme/jws.hpp"

#include <openssl/ec.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <vector>

#include "brokertls/error.hpp"

namespace brokertls {

namespace {

using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpenSslDeleter<ECDSA_SIG_free>>;

std::string sign(const PrivateKey& key, const EVP_MD* digest, std::string_view input) {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    size_t size = 0;
    auto data = reinterpret_cast<const unsigned char*>(input.data());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, digest, nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &size, data, input.size()) != 1)
        fail(ErrorKind::Io, "JWS signature", openssl_reason());
    std::vector<unsigned char> out(size);
    if (EVP_DigestSign(ctx.get(), out.data(), &size, data, input.size()) != 1)
        fail(ErrorKind::Io, "JWS signature", openssl_reason());
    return std::string(reinterpret_cast<char*>(out.data()), size);
}

// JWS ES256/ES384 signatures are r||s, each left-padded to the curve size (RFC 7518 §3.4);
// OpenSSL produces the DER SEQUENCE of two INTEGERs.
std::string der_to_raw(const std::string& der, int width) {
    auto p = reinterpret_cast<const unsigned char*>(der.data());
    EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
    if (!sig) fail(ErrorKind::Io, "JWS signature", "cannot decode the ECDSA signature");
    std::vector<unsigned char> raw(static_cast<size_t>(2 * width));
    if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), width) != width ||
        BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + width, width) != width)
        fail(ErrorKind::Io, "JWS signature", "ECDSA signature too large for the curve");
    return std::string(reinterpret_cast<char*>(raw.data()), raw.size());
}

std::string flattened(const nlohmann::json& header, std::string_view payload,
                      const std::function<std::string(std::string_view)>& signer) {
    std::string protected64 = base64url(header.dump());
    // An empty payload (POST-as-GET, RFC 8555 §6.3) stays the empty string.
    std::string payload64 = base64url(payload);
    std::string signature = signer(protected64 + "." + payload64);
    nlohmann::json jws{
        {"protected", protected64}, {"payload", payload64}, {"signature", base64url(signature)}};
    return jws.dump();
}

}  // namespace

std::string jws_sign(const PrivateKey& key, std::string_view kid, std::string_view nonce,
                     std::string_view url, std::string_view payload) {
    std::string alg = jws_algorithm(key);
    nlohmann::json header{{"alg", alg}, {"nonce", nonce}, {"url", url}};
    if (kid.empty())
        header["jwk"] = nlohmann::json::parse(jwk_json(key));
    else
        header["kid"] = kid;
    return flattened(header, payload, [&](std::string_view input) {
        if (alg == "RS256") return sign(key, EVP_sha256(), input);
        if (alg == "ES256") return der_to_raw(sign(key, EVP_sha256(), input), 32);
        return der_to_raw(sign(key, EVP_sha384(), input), 48);
    });
}

std::string eab_binding(std::string_view key_id, std::string_view hmac_key_b64url,
                        const PrivateKey& account_key, std::string_view new_account_url) {
    std::string mac_key = base64url_decode(hmac_key_b64url, "EAB HMAC key");
    if (mac_key.empty()) fail(ErrorKind::Input, "EAB HMAC key", "empty");
    // RFC 8555 §7.3.4: no nonce; the payload is the account's JWK.
    nlohmann::json header{{"alg", "HS256"}, {"kid", key_id}, {"url", new_account_url}};
    return flattened(header, jwk_json(account_key), [&](std::string_view input) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        size_t size = 0;
        if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, mac_key.data(), mac_key.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
                       sizeof mac, &size))
            fail(ErrorKind::Io, "EAB binding", openssl_reason());
        return std::string(reinterpret_cast<char*>(mac), size);
    });
}

}  // namespace brokertls
