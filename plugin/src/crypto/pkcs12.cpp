#include "brokertls/crypto/pkcs12.hpp"

#include "brokertls/error.hpp"

namespace brokertls {

std::string make_pkcs12(const std::string& friendly_name, const PrivateKey& key,
                        const Certificate& cert, const std::vector<Certificate>& chain,
                        const std::string& password) {
    using CertStackPtr =
        std::unique_ptr<STACK_OF(X509), decltype([](STACK_OF(X509) * s) { sk_X509_free(s); })>;
    CertStackPtr cas(sk_X509_new_null());
    for (const auto& c : chain) sk_X509_push(cas.get(), c.get());
    constexpr int kIterations = 100000;
    Pkcs12Ptr p12(PKCS12_create(password.c_str(), friendly_name.c_str(), key.get(), cert.get(),
                                cas.get(), NID_aes_256_cbc, NID_aes_256_cbc, kIterations, -1, 0));
    if (!p12 ||
        !PKCS12_set_mac(p12.get(), password.c_str(), -1, nullptr, 0, kIterations, EVP_sha256()))
        throw Error(ErrorKind::Io, "cannot create PKCS#12: " + openssl_reason());
    BioPtr bio = memory_bio();
    if (!i2d_PKCS12_bio(bio.get(), p12.get())) throw Error(ErrorKind::Io, "cannot encode PKCS#12");
    return bio_contents(bio.get());
}

}  // namespace brokertls
