// EST's request codecs (service/est.hpp): the request path and the base64 PKCS#10 body, both
// straight from the network before anyone is authenticated.
#include <chrono>

#include "brokertls/crypto/signing.hpp"
#include "brokertls/error.hpp"
#include "fuzz_support.hpp"
#include "service/est.hpp"

namespace {

// The certificate a re-enrolling client would hold; made once, as key generation is slow.
const brokertls::Certificate& current_certificate() {
    using namespace brokertls;
    static const Certificate cert = [] {
        PrivateKey key = PrivateKey::generate(KeyType::EcP256);
        CertificateSpec spec;
        spec.common_name = "dev-1";
        spec.subject_alt_names = {{SubjectAltName::Type::Dns, "dev-1.mqtt.example"}};
        spec.not_before = SystemClock::now();
        spec.not_after = spec.not_before + Days(1);
        return sign_certificate(spec, key.get(), key, nullptr);
    }();
    return cert;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    std::string input = fuzz::text(data, size);
    if (auto path = parse_est_path(input)) {
        // A path that parses names an operation that is a part of it.
        if (path->operation.empty() || !input.ends_with("/" + path->operation)) __builtin_trap();
    }
    try {
        CertificateRequest csr = parse_est_csr(input);
        (void)csr.subject();
        for (const auto& san : csr.subject_alt_names()) (void)san.to_string();
        (void)reenroll_problem(csr, current_certificate());
    } catch (const Error&) {
    }
    return 0;
}
