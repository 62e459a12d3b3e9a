// Private keys in PEM (PKCS#8, traditional, encrypted PKCS#8) or DER. Without a passphrase, as
// an encrypted key's KDF cost comes from the input (a slow unit is OpenSSL's, not ours).
#include "brokertls/crypto/key.hpp"
#include "brokertls/error.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    try {
        PrivateKey key = PrivateKey::parse(fuzz::text(data, size), "fuzz");
        (void)key.type();
        (void)key.public_key_pem();
        (void)key.signature_digest();
        PrivateKey::parse(key.to_der(), "fuzz: re-encoded");
    } catch (const Error&) {
    }
    return 0;
}
