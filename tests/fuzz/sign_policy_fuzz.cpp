// CSR name extraction under the `brokertls-ca sign --allow` policy. CertificateAuthority::sign
// needs a CA on disk and writes files, so this mirrors its check (plugin/src/ca/authority.cpp):
// the CN and every subjectAltName must match one allow glob. A name the policy lets through must
// be the name that gets signed: an embedded NUL (`admin\0.mqtt.example` passing
// '*.mqtt.example', signed as `admin`) is a finding.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/names.hpp"
#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "fuzz_support.hpp"

namespace {

const std::vector<std::string> kAllow = {"dev-*", "*.mqtt.example", "10.0.0.?", "spiffe://mqtt/*"};

bool allowed(const std::string& name) {
    return std::any_of(kAllow.begin(), kAllow.end(),
                       [&](const std::string& g) { return brokertls::glob_match(g, name); });
}

void check_allowed_name(const std::string& name) {
    if (name.find('\0') != std::string::npos) {
        std::fprintf(stderr, "sign_policy: --allow accepted a name with an embedded NUL: %s\n",
                     brokertls::printable(name).c_str());
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    try {
        CertificateRequest csr = CertificateRequest::parse(fuzz::text(data, size), "fuzz");
        std::string cn = csr.common_name();
        std::vector<SubjectAltName> sans = csr.subject_alt_names();
        if (cn.empty() && sans.empty()) return 0;
        if (!cn.empty() && !allowed(cn)) return 0;
        for (const auto& san : sans)
            if (san.type == SubjectAltName::Type::Other || !allowed(san.value)) return 0;
        // Accepted by the policy: what a client certificate would carry as its identity.
        if (!cn.empty()) {
            check_allowed_name(cn);
            (void)identity_problem(cn);
        }
        for (const auto& san : sans) check_allowed_name(san.value);
    } catch (const Error&) {
    }
    return 0;
}
