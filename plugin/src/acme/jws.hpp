#pragma once
// JSON Web Signatures for ACME (RFC 7515 flattened JSON, RFC 8555 §6.2): ES256 for P-256
// account keys (the default), ES384 for P-384, RS256 for RSA; HS256 for External Account
// Binding (§7.3.4). Signatures come from OpenSSL's EVP APIs.

#include <string>
#include <string_view>

#include "brokertls/crypto/key.hpp"

namespace brokertls {

std::string base64url(std::string_view bytes);
// Throws Error(Input) naming `what` on a malformed input.
std::string base64url_decode(std::string_view text, std::string_view what);

// The public JWK of an account key, with members in the lexicographic order RFC 7638 needs.
std::string jwk_json(const PrivateKey& key);
// The same for any P-256, P-384 or RSA public key (a certificate's, a JWK read back).
std::string jwk_json(const EVP_PKEY* key);
// base64url(SHA-256(jwk_json)) — the RFC 7638 thumbprint used in key authorizations.
std::string jwk_thumbprint(const PrivateKey& key);
std::string jwk_thumbprint(const EVP_PKEY* key);
// "ES256", "ES384" or "RS256"; throws Error(Usage) for key types ACME accounts cannot use.
std::string jws_algorithm(const PrivateKey& key);

// A flattened JWS. `kid` empty: the protected header carries the jwk (newAccount, revocation
// by certificate key). `payload` empty string means POST-as-GET.
std::string jws_sign(const PrivateKey& key, std::string_view kid, std::string_view nonce,
                     std::string_view url, std::string_view payload);

// The externalAccountBinding member of newAccount: HS256 over the account's JWK.
std::string eab_binding(std::string_view key_id, std::string_view hmac_key_b64url,
                        const PrivateKey& account_key, std::string_view new_account_url);

}  // namespace brokertls
