#pragma once
// The one code that writes live server material (the cert and key files a broker listener
// reads): staging, checks, archive, deploy. Every source's material goes through it.
//   - staging: the new key (0600) and certificate are written in full under pending names
//     beside their targets (PATH.brokertls-new), durable, then read back and checked: what is
//     served is what was checked;
//   - checks: server_material_problem (key match, validity, serverAuth, chain, names);
//   - archive: the set it replaces goes to STATE_DIR/profiles/NAME/archive/TIME (newest 5);
//   - deploy: key, then certificate renamed into place (both or neither; a process killed in
//     between is finished or undone by recover()).
// Telling the broker (the adapter's reload) is the caller's: it knows when a batch is done.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "deploy/server_material.hpp"

namespace brokertls {

class Deployer {
  public:
    explicit Deployer(std::filesystem::path state_dir) : state_dir_(std::move(state_dir)) {}

    // What a process killed while deploying left (temporary and pending files), for every
    // profile at once: one listing per deploy directory, so start-up cost follows the number
    // of profiles, not its square.
    static void recover(const std::vector<const CertificateProfileConfig*>& profiles);

    static void recover(const std::filesystem::path& cert, const std::filesystem::path& key);

    // The material deployed for `profile`, or nullopt when missing or unreadable.
    static std::optional<ServerMaterial> read(const CertificateProfileConfig& profile);
    static std::optional<ServerMaterial> read(const std::filesystem::path& cert,
                                              const std::filesystem::path& key);

    enum class Result { Unchanged, Deployed };
    // Deploys `material` unless it is what `deployed` already holds. Throws Error "ORIGIN:
    // reason" when the material may not be served (the deployed set stays). `archive`: keep
    // the replaced set (it was usable).
    Result deploy(const CertificateProfileConfig& profile, const ServerMaterial& material,
                  const std::string& origin, const ServerMaterial* deployed, bool archive,
                  TimePoint now) const;
    // Writes `material` as the deployed pair (staged, then renamed key first) without checks:
    // for the temporary stand-in and for tests that set up what is deployed.
    static void install(const ServerMaterial& material, const std::filesystem::path& cert,
                        const std::filesystem::path& key);

    // Many profiles with nothing deployed, at once (the first start of a broker with many
    // profiles): each set is checked and encoded by prepare() as it comes (so thousands of
    // parsed keys and certificates never sit in memory together), then deploy_new() writes them
    // all with one filesystem sync.
    struct NewSet {
        const CertificateProfileConfig* profile;
        std::string key_pem, cert_pem;
    };
    // Throws Error "ORIGIN: reason" when the material may not be served.
    static NewSet prepare(const CertificateProfileConfig& profile, const ServerMaterial& material,
                          const std::string& origin, TimePoint now);
    static void deploy_new(const std::vector<NewSet>& sets);

    static bool same(const ServerMaterial& a, const ServerMaterial& b);
    static constexpr std::size_t kArchiveKeep = 5;

  private:
    void archive_set(const CertificateProfileConfig& profile, const ServerMaterial& set,
                     TimePoint now) const;
    std::filesystem::path state_dir_;
};

}  // namespace brokertls
