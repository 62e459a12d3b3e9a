#pragma once
// Keeps every `source: acme` certificate profile served and renewed, off the broker thread:
// a scheduler thread starts each profile's job when it is due (at most max_concurrent_orders
// at once), a job checks the deployed certificate (and the CA's ARI window), runs an order
// when renewal is due, writes the result into staging, promotes only a complete and validated
// set over the deployed files (archiving the previous one), and asks the broker to reload.
// Failures back off (persisted in job.json, so a restart does not become a retry storm).
// A profile with nothing usable deployed serves a temporary self-signed certificate until its
// first order succeeds, so the broker never waits for the CA to start.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "brokertls/acme/http.hpp"
#include "brokertls/challenges/solver.hpp"
#include "brokertls/config/config.hpp"
#include "brokertls/deploy/server_material.hpp"
#include "brokertls/renewal/event_sinks.hpp"
#include "brokertls/renewal/job_state.hpp"
#include "brokertls/renewal/policy.hpp"

namespace brokertls {

class AcmeRenewer {
  public:
    struct Hooks {
        std::function<void()> deployed;                    // new material on disk: reload
        std::function<void(const RenewalEvent&)> event;    // for the broker log and MQTT
        std::function<void(const std::string& line)> log;  // plain log lines
    };
    using TransportFactory = std::function<std::unique_ptr<HttpTransport>(const IssuerConfig&)>;

    // `transports` defaults to libcurl with the issuer's ca_bundle.
    explicit AcmeRenewer(Hooks hooks, TransportFactory transports = {});
    ~AcmeRenewer();
    AcmeRenewer(const AcmeRenewer&) = delete;
    AcmeRenewer& operator=(const AcmeRenewer&) = delete;

    // Adopts the acme profiles of `config` (jobs of unchanged profiles keep their state). A
    // profile with no usable deployed certificate gets a temporary self-signed one at once;
    // returns true when that happened (the broker must reload). Throws Error when a profile's
    // state directory cannot be written.
    bool configure(const Config& config, TimePoint now);
    void start();  // the scheduler thread; idempotent
    void stop();   // interrupts waits and orders, joins every thread

    // Runs this profile's order now (control "renew"), unless the profile is unknown, the CA
    // asked us to wait (Retry-After, rateLimited) and that time has not come, or a forced
    // renewal of it ran less than renewal.forced_interval ago: then `reason` says why.
    struct RenewRequest {
        bool accepted = false;
        std::string reason;
        explicit operator bool() const { return accepted; }
    };
    RenewRequest renew_now(const std::string& profile, TimePoint now);
    // Resumes a paused manual dns-01 order; false when none of that profile waits.
    bool resume(const std::string& profile);

    struct Status {
        std::string issuer;
        std::vector<std::string> names;
        std::string subject, fingerprint;
        TimePoint not_after{}, next_run{};
        bool temporary = false;  // serving the self-signed stand-in
        bool running = false;
        bool waiting_for_operator = false;
        JobState job;
    };
    std::map<std::string, Status> status() const;
    // True once no job is running or due before now + `horizon` (tests, benchmarks).
    bool idle(std::chrono::milliseconds horizon = std::chrono::milliseconds(0)) const;

  private:
    struct Job {
        CertificateProfileConfig profile;
        IssuerConfig issuer;
        std::shared_ptr<ChallengeSolver> solver;
        std::filesystem::path dir;  // STATE_DIR/profiles/PROFILE
        JobState state;
        bool running = false;
        bool forced = false;
        TimePoint last_forced{};
    };
    void schedule_loop();
    void run(const std::shared_ptr<Job>& job);
    // One check of a job, and an order when renewal is due. Throws on failure.
    void attempt(Job& job, TimePoint now);
    void promote(Job& job, const ServerMaterial& material, bool archive_deployed);
    void emit(Job& job, const std::string& type, const std::string& message);
    void emit(const std::string& profile, const std::string& type, const std::string& message);
    bool sleep(std::chrono::milliseconds duration);

    Hooks hooks_;
    TransportFactory transports_;
    ManualGate gate_;
    std::shared_ptr<const EventSinks> sinks_;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::map<std::string, std::shared_ptr<Job>> jobs_;
    RenewalConfig renewal_;
    std::filesystem::path state_dir_;
    Random random_{std::random_device{}()};
    bool stopping_ = false;
    std::atomic<bool> stopped_{false};  // stopping_ for libcurl's progress callback (no lock)
    std::thread scheduler_;
    struct Worker {
        std::thread thread;
        bool done = false;
    };
    std::list<Worker> workers_;
};

// A self-signed stand-in for `profile` (O=brokertls temporary certificate, 7 days), and how it
// is recognised later.
ServerMaterial temporary_material(const CertificateProfileConfig& profile, TimePoint now);
bool is_temporary(const Certificate& leaf);

}  // namespace brokertls
