#pragma once
// Keeps every certificate profile served and renewed, whatever its source, off the broker
// thread: config -> scheduler -> issuer -> deployer -> (hooks) adapter.
//   - one job per profile, due when the renewal policy says (lifetime fraction, renew_before,
//     the CA's ARI window), when its source files change (files), when asked (renew), and
//     after failures with backoff; job state persisted in STATE_DIR/profiles/NAME/job.json;
//   - two schedulers: local work (files, local-ca) and CA orders (acme, at most
//     renewal.max_concurrent_orders at once), so a slow CA never delays a local check;
//   - every new set goes through the Deployer; every event (obtaining, obtained, failed,
//     expiring, ...) through one path: the hooks (broker log, MQTT) and the exec hook/webhook.
// A profile with nothing deployed gets material before the broker starts: issued (files,
// local-ca, all in one batch) or a temporary self-signed stand-in (acme, until the first order
// succeeds), so the broker never waits for a CA.

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "brokertls/time/clock.hpp"
#include "config/config.hpp"
#include "deploy/deployer.hpp"
#include "issuers/issuer.hpp"
#include "renewal/job_state.hpp"
#include "schedule/scheduler.hpp"

namespace brokertls {

class EventSinks;

class CertificatePipeline {
  public:
    struct Hooks {
        std::function<void()> deployed;                    // new material on disk: reload
        std::function<void(const RenewalEvent&)> event;    // for the broker log and MQTT
        std::function<void(const std::string& line)> log;  // plain log lines
    };
    struct Options {
        TransportFactory transports;                 // default: libcurl with the issuer's ca_bundle
        Clock* clock = &Clock::system();
        int local_workers = 2;
        // `source: service` profiles; default: libcurl with the profile's service.ca_bundle.
        ServiceTransportFactory service_transports = {};
    };
    explicit CertificatePipeline(Hooks hooks);
    CertificatePipeline(Hooks hooks, Options options);
    ~CertificatePipeline();
    CertificatePipeline(const CertificatePipeline&) = delete;
    CertificatePipeline& operator=(const CertificatePipeline&) = delete;

    // Adopts the certificate profiles of `config`: jobs of unchanged profiles keep going, new
    // and changed ones are checked soon. Profiles with nothing deployed get material now (see
    // above). Throws Error when an issuer's challenge configuration is unusable.
    struct Configured {
        bool deployed = false;            // the broker must reload its listeners
        std::vector<std::string> errors;  // "certificate profile NAME: reason", nothing deployed
    };
    Configured configure(const Config& config, TimePoint now);
    void start();  // the workers; idempotent
    void stop();   // interrupts waits and orders, joins every thread

    // The watcher saw these files change: the files profiles reading them are checked now.
    // Returns the files that are certificate sources (the rest concern the caller).
    std::vector<std::filesystem::path> files_changed(
        const std::vector<std::filesystem::path>& changed);
    // Source files to watch (files profiles).
    std::vector<std::filesystem::path> source_files() const;
    // Runs what is queued or due now on the calling thread (before start(); tests).
    void run_pending();

    // Runs this profile's work now (control "renew"), unless the profile is unknown, the CA
    // asked us to wait (Retry-After, rateLimited) and that time has not come, or a forced
    // renewal of it ran less than renewal.forced_interval ago: then `reason` says why.
    struct RenewRequest {
        Problem refused;   // why it is not run (none: it runs)
        std::string note;  // for an accepted request: "an order is already running"
        explicit operator bool() const { return !refused; }
    };
    RenewRequest renew_now(const std::string& profile, TimePoint now);
    // Resumes a paused manual dns-01 order; false when none of that profile waits.
    bool resume(const std::string& profile);

    struct Status {
        std::string source;  // files, local-ca, acme
        std::string issuer;
        std::vector<std::string> names;
        bool checked = false;  // the deployed set was read and checked at least once
        std::string subject, fingerprint;
        TimePoint not_after{}, renew_at{};
        TimePoint next_run = TimePoint::max();
        bool temporary = false;  // serving the self-signed stand-in
        bool running = false;
        bool waiting_for_operator = false;
        JobState job;
        // What the broker serves: the deployed set as of its last reload of the files.
        std::string served_fingerprint;
        TimePoint served_not_after{}, served_since{};
    };
    // A copy; reads no file.
    std::map<std::string, Status> status() const;
    // The broker has (re)read the deployed files: record them as served.
    void mark_served(TimePoint now);
    // How many times a profile's deployed material was read and checked (getStatus).
    unsigned long checks() const { return checks_.load(); }
    // True once no job is running, queued or due before now + `horizon` (tests, benchmarks).
    bool idle(std::chrono::milliseconds horizon = std::chrono::milliseconds(0)) const;

    static constexpr std::chrono::seconds kStandInLifetime = std::chrono::hours(24 * 7);
    static constexpr std::chrono::seconds kMinReissue = std::chrono::minutes(10);

  private:
    struct Job {
        CertificateProfileConfig profile;
        std::shared_ptr<Issuer> issuer;
        IssuerConfig issuer_config;  // acme
        Status status;               // status.job is the persisted state
        bool forced = false;
        TimePoint last_forced{};
    };
    TimePoint run(const std::string& name, std::stop_token stop);
    Scheduler& scheduler_for(const CertificateProfileConfig& profile);
    void emit(const std::string& profile, const std::string& type, const std::string& message);
    void save_state(const std::string& name, const JobState& state);
    std::shared_ptr<Issuer> issuer_for(const CertificateProfileConfig& profile,
                                       const std::map<std::string, std::shared_ptr<Issuer>>& acme);
    void summarise(Status& st, const ServerMaterial* deployed, bool temporary);

    Hooks hooks_;
    Options options_;
    Clock& clock_;
    std::shared_ptr<Issuer> files_issuer_, local_ca_issuer_, service_issuer_;
    ManualGate gate_;
    std::stop_source stop_;  // solvers' waits (orders see their scheduler's token)

    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Job>> jobs_;
    std::map<std::filesystem::path, std::vector<std::string>> sources_;  // file -> profiles
    RenewalConfig renewal_;
    std::filesystem::path state_dir_;
    std::shared_ptr<const EventSinks> sinks_;
    std::mt19937_64 random_{std::random_device{}()};

    Scheduler::Run run_;
    std::atomic<unsigned long> checks_{0};
    std::atomic<bool> started_{false};
    int order_workers_ = 0;
    std::unique_ptr<Scheduler> local_, orders_;
};

// A self-signed stand-in for `profile` (O=brokertls temporary certificate, 7 days), and how it
// is recognised later.
ServerMaterial temporary_material(const CertificateProfileConfig& profile, TimePoint now);
bool is_temporary(const Certificate& leaf);

}  // namespace brokertls
