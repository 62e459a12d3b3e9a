#pragma once
// What a listener demands of its clients (a "security profile", after Amlen).

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace brokertls {

// Which part of the client certificate becomes the broker username.
enum class IdentitySource { CommonName, SanDns, SanUri, SanEmail, SubjectDn, Fingerprint };

std::optional<IdentitySource> parse_identity_source(std::string_view name);
std::string_view identity_source_name(IdentitySource source);
std::string_view identity_source_names();

struct SecurityProfile {
    std::string name;
    bool require_client_certificate = true;
    std::vector<std::filesystem::path> trust_anchors;  // PEM files (bundles) or directories of them
    // CA certificates that may sit between a client and an anchor without being trusted
    // themselves. Needed because the broker hands plugins the leaf only, not the chain the
    // client sent.
    std::vector<std::filesystem::path> intermediates;
    std::vector<std::filesystem::path> crls;      // PEM or DER CRL files
    std::string required_eku = "clientAuth";      // "" to accept any EKU
    int max_chain_depth = 4;                      // certificates above the leaf, root included
    std::vector<std::string> allow_fingerprints;  // SHA-256, normalised; empty: any
    std::vector<std::string> deny_fingerprints;
    IdentitySource identity = IdentitySource::CommonName;
    // '/' in an identity splits ACL patterns such as `devices/%u/#`; allowed only on request.
    bool identity_allow_slash = false;
    // Without it any valid device can take over another's session by using its client id. The
    // configuration defaults it to require_client_certificate (see parse_security_profile).
    bool client_id_must_match_identity = true;
};

}  // namespace brokertls
