#pragma once
// Keeps each certificate profile's deployed files (the cert and key a broker listener reads)
// current: picks up new material from a `files` source, renews from a `local-ca` source when
// the renewal time comes, and deploys only material that passes check_server_material. A bad
// new certificate is refused with the reason and the deployed one stays.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "brokertls/config/config.hpp"
#include "brokertls/deploy/server_material.hpp"

namespace brokertls {

class CertificateManager {
  public:
    struct Result {
        std::vector<std::string> log;
        bool deployed = false;  // new material is on disk: the broker must reload its listeners
        bool ok = true;
        unsigned long checked = 0;  // profiles read and checked
    };

    // Brings the profiles up to date that may need it: those that are new or whose
    // configuration changed, whose source files are among `changed` (from the file watcher),
    // whose renewal or retry is due, or all of them with `force` (which also renews local-ca
    // profiles now). The others are not read at all, so the work follows what changed, not the
    // number of profiles. Profiles no longer configured are forgotten.
    Result refresh(const Config& config, TimePoint now, bool force = false,
                   const std::vector<std::filesystem::path>& changed = {});
    // The source files to watch (files profiles).
    static std::vector<std::filesystem::path> source_files(const Config& config);

    struct Status {
        std::string subject, fingerprint;
        TimePoint not_after{}, renew_at{}, last_change{};
        std::string last_result = "not yet checked";
        bool last_ok = true;
        bool deployed = false;
        TimePoint retry_at = TimePoint::max();
        // What the broker serves: the deployed material as of its last reload of the files.
        // Differs from `fingerprint` (on disk) between a deploy and the broker's reload.
        std::string served_fingerprint;
        TimePoint served_not_after{}, served_since{};
    };
    const std::map<std::string, Status>& status() const { return status_; }
    // The broker has (re)read the deployed files: record them as served.
    void mark_served(TimePoint now);
    // When refresh() has time-driven work next (a local-ca renewal, or a retry after a failure).
    TimePoint next_due() const;
    // True when every profile has material deployed that passes the checks.
    bool all_deployed() const;

    static constexpr std::chrono::seconds retry_after{30};

  private:
    std::optional<std::string> refresh_profile(const CertificateProfileConfig& profile,
                                               const std::filesystem::path& state_dir,
                                               TimePoint now, bool force, Result& result);
    bool needs_check(const CertificateProfileConfig& profile, TimePoint now,
                     const std::vector<std::filesystem::path>& changed) const;
    std::map<std::string, Status> status_;
    std::map<std::string, CertificateProfileConfig> checked_;  // as last checked
    std::map<std::string, std::string>
        refused_;  // profile -> fingerprint refused last, to log once
};

}  // namespace brokertls
