#pragma once
// brokertls.json, loaded into a typed and validated model. Every error names the file, the
// JSON path and the reason: "brokertls.json: security_profiles.devices.crls[0]: file not found".
// Relative paths are resolved against the directory of the configuration file.

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/names.hpp"
#include "brokertls/trust/security_profile.hpp"

namespace brokertls {

enum class CertificateSource { Files, LocalCa };

struct CertificateProfileConfig {
    std::string name;
    CertificateSource source = CertificateSource::Files;
    // source "files": where the operator (or certbot, ...) puts the material.
    std::filesystem::path key_file, cert_file, chain_file;
    // source "local-ca": a brokertls-ca directory that issues and renews the certificate.
    std::filesystem::path ca_dir;
    std::optional<std::filesystem::path> ca_passphrase_file;
    std::chrono::seconds lifetime{397 * 86400};
    std::chrono::seconds renew_before{0};  // 0: a third of the lifetime
    std::vector<SubjectAltName> names;
    KeyType key_type = KeyType::EcP256;
    // The paths the broker listener reads (certfile, keyfile).
    std::filesystem::path deploy_cert, deploy_key;
};

struct Config {
    std::filesystem::path file;
    std::map<std::string, SecurityProfile> security_profiles;
    std::map<std::string, CertificateProfileConfig> certificate_profiles;
    // A directory the plugin keeps filled with hashed links to every trust anchor (a listener's
    // capath), so a CA added to a profile is trusted by the broker's handshake without a restart.
    std::optional<std::filesystem::path> capath;
    // Identities (mapped usernames) allowed to use $CONTROL/brokertls/v1; nobody by default.
    std::vector<std::string> control_allow;
};

// Throws Error(Input) naming the file, JSON path and reason. Checks that every file a profile
// reads exists; the trust material itself is parsed when a TrustSnapshot is built.
Config load_config(const std::filesystem::path& file);
Config parse_config(const std::string& text, const std::filesystem::path& file);

// "90d", "12h", "30m", "45s" or a number of seconds.
std::optional<std::chrono::seconds> parse_duration(const std::string& text);

}  // namespace brokertls
