#pragma once
// A server certificate set (key + leaf + chain) and the checks it must pass before a broker
// listener is allowed to serve it.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/names.hpp"

namespace brokertls {

struct ServerMaterial {
    PrivateKey key;
    std::vector<Certificate> chain;  // leaf first, then intermediates
    const Certificate& leaf() const { return chain.front(); }
    std::string cert_pem() const { return chain_to_pem(chain); }
};

// "" when the material may be served: the key matches the leaf, the leaf is valid at `now`, each
// certificate is signed by the next, the leaf's EKU (if any) allows serverAuth, and its SANs
// cover every name in `names` (a DNS wildcard covers one label). Otherwise the reason.
std::string check_server_material(const ServerMaterial& material,
                                  const std::vector<SubjectAltName>& names, TimePoint now);

// The material deployed at (cert, key), or nullopt when missing or unreadable (it is then
// replaced like missing material).
std::optional<ServerMaterial> read_deployed(const std::filesystem::path& cert,
                                            const std::filesystem::path& key);
// Both or neither: the key (0600) and the certificate are written in full under pending names
// (PATH.brokertls-new), then renamed into place, key first. A failure before the renames leaves
// the deployed pair as it was.
void deploy_material(const ServerMaterial& material, const std::filesystem::path& cert,
                     const std::filesystem::path& key);

// A process killed during deploy_material leaves pending or temporary files: finish that deploy
// when the pending files form a matching pair with what is in place, else drop them, so the
// deployed key matches the deployed certificate again and no temporary file stays. Only the
// profile's one writer may call it (deploy_material does, before it writes), never while a
// deploy of the same paths may be running.
void finish_interrupted_deploy(const std::filesystem::path& cert, const std::filesystem::path& key);

// Does a certificate SAN cover `wanted`? (exact match; "*.example.com" covers "a.example.com").
bool san_covers(const SubjectAltName& san, const SubjectAltName& wanted);

}  // namespace brokertls
