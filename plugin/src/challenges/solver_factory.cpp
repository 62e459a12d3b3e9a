#include <openssl/evp.h>

#include "acme/jws.hpp"
#include "brokertls/error.hpp"
#include "solvers.hpp"

namespace brokertls {
std::string dns01_txt_value(const std::string& key_authorization) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(key_authorization.data(), key_authorization.size(), digest, &length,
                   EVP_sha256(), nullptr) != 1) {
        fail(ErrorKind::Io, "dns-01", "SHA-256: " + openssl_reason());
    }
    return base64url(std::string_view(reinterpret_cast<const char*>(digest), length));
}

std::unique_ptr<ChallengeSolver> make_solver(const ChallengeConfig& config, SolverContext context,
                                             ManualGate& gate) {
    using Type = ChallengeConfig::Type;
    using Provider = ChallengeConfig::DnsProvider;
    switch (config.type) {
        case Type::Http01:
            if (config.webroot) return make_webroot_solver(config, std::move(context));
            return make_http01_responder(config, std::move(context));
        case Type::TlsAlpn01:
            return make_tls_alpn_responder(config, std::move(context));
        case Type::Dns01:
            switch (config.provider) {
                case Provider::Rfc2136:
                    return make_rfc2136_solver(config, std::move(context));
                case Provider::Exec:
                    return make_exec_solver(config, std::move(context));
                case Provider::Manual:
                    return make_manual_solver(config, std::move(context), gate);
            }
            break;
    }
    fail(ErrorKind::Usage, "challenge", "unknown challenge type or dns-01 provider");
}

}  // namespace brokertls
