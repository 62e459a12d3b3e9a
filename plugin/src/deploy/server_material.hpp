#pragma once
// A server certificate set (key + leaf + chain) and the checks it must pass before a broker
// listener is allowed to serve it.

#include <string>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/names.hpp"
#include "brokertls/error.hpp"

namespace brokertls {

struct ServerMaterial {
    PrivateKey key;
    std::vector<Certificate> chain;  // leaf first, then intermediates
    const Certificate& leaf() const { return chain.front(); }
    std::string cert_pem() const { return chain_to_pem(chain); }
};

// None when the material may be served: the key matches the leaf, the leaf is valid at `now`, each
// certificate is signed by the next, the leaf's EKU (if any) allows serverAuth, and its SANs
// cover every name in `names` (a DNS wildcard covers one label). Otherwise the reason.
Problem server_material_problem(const ServerMaterial& material,
                                const std::vector<SubjectAltName>& names, TimePoint now);

// Does a certificate SAN cover `wanted`? (exact match; "*.example.com" covers "a.example.com").
bool san_covers(const SubjectAltName& san, const SubjectAltName& wanted);

}  // namespace brokertls
