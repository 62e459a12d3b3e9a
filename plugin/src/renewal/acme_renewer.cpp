#include "brokertls/renewal/acme_renewer.hpp"

#include <algorithm>
#include <set>

#include "brokertls/acme/client.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/error.hpp"
#include "brokertls/issuers/acme_issuer.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

constexpr const char* kTemporaryOrganization = "brokertls temporary certificate";
constexpr std::size_t kArchiveKeep = 5;

std::string names_text(const std::vector<SubjectAltName>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n.value;
    return out;
}

bool is_manual(const IssuerConfig& issuer) {
    return issuer.challenge.type == ChallengeConfig::Type::Dns01 &&
           issuer.challenge.provider == ChallengeConfig::DnsProvider::Manual;
}

// Keeps the newest kArchiveKeep archived sets (their names sort by time).
void prune_archive(const fs::path& archive) {
    std::vector<fs::path> sets;
    for (const auto& entry : fs::directory_iterator(archive)) sets.push_back(entry.path());
    std::sort(sets.begin(), sets.end());
    for (std::size_t i = 0; i + kArchiveKeep < sets.size(); ++i) fs::remove_all(sets[i]);
}

}  // namespace

ServerMaterial temporary_material(const CertificateProfileConfig& profile, TimePoint now) {
    PrivateKey key = PrivateKey::generate(profile.key_type);
    CertificateSpec spec;
    spec.profile = CertificateProfile::Server;
    spec.common_name = profile.names.front().value;
    spec.organization = kTemporaryOrganization;
    spec.subject_alt_names = profile.names;
    spec.not_before = now - std::chrono::minutes(1);
    spec.not_after = now + std::chrono::hours(24 * 7);
    Certificate cert = sign_certificate(spec, key.get(), key, nullptr);
    return ServerMaterial{std::move(key), {std::move(cert)}};
}

bool is_temporary(const Certificate& leaf) {
    return leaf.is_self_signed() &&
           leaf.subject().find(std::string("O=") + kTemporaryOrganization) != std::string::npos;
}

AcmeRenewer::AcmeRenewer(Hooks hooks, TransportFactory transports)
    : hooks_(std::move(hooks)), transports_(std::move(transports)) {
    // Every hook is optional (deployed and event are checked where called).
    if (!hooks_.log) hooks_.log = [](const std::string&) {};
    if (!transports_)
        transports_ = [this](const IssuerConfig& issuer) {
            CurlOptions options;
            options.ca_bundle = issuer.ca_bundle;
            options.cancelled = [this] { return stopped_.load(); };
            return make_curl_transport(options);
        };
}

AcmeRenewer::~AcmeRenewer() {
    stop();
}

bool AcmeRenewer::configure(const Config& config, TimePoint now) {
    std::map<std::string, std::shared_ptr<ChallengeSolver>> solvers;
    for (const auto& [name, issuer] : config.issuers) {
        SolverContext context;
        context.log = [this, name = name](const std::string& line) {
            hooks_.log("issuer " + name + ": " + line);
        };
        context.event = [this](const std::string& type, const std::string& profile,
                               const std::string& message) { emit(profile, type, message); };
        context.sleep = [this](std::chrono::milliseconds d) { return sleep(d); };
        try {
            solvers.emplace(name, make_solver(issuer.challenge, std::move(context), gate_));
        } catch (const Error& e) {
            fail(ErrorKind::Input,
                 config.file.filename().string() + ": issuers." + name + ".challenge", e.what());
        }
    }

    std::set<std::string> running;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, job] : jobs_)
            if (job->running) running.insert(name);
    }
    bool deployed_any = false;
    std::map<std::string, std::shared_ptr<Job>> jobs;
    for (const auto& [name, profile] : config.certificate_profiles) {
        if (profile.source != CertificateSource::Acme) continue;
        // Nothing servable (missing, unreadable, expired, key mismatch): a stand-in, so the
        // listener can start without waiting for the CA. Not while an order runs: it may be
        // between writing the new key and the new certificate.
        if (!running.count(name))
            finish_interrupted_deploy(profile.deploy_cert, profile.deploy_key);
        auto deployed = read_deployed(profile.deploy_cert, profile.deploy_key);
        if (!running.count(name) &&
            (!deployed || !check_server_material(*deployed, {}, now).empty())) {
            deploy_material(temporary_material(profile, now), profile.deploy_cert,
                            profile.deploy_key);
            deployed_any = true;
            hooks_.log("certificate profile " + name +
                       ": no certificate yet: serving a temporary self-signed certificate "
                       "until the ACME order completes");
        }
        auto job = std::make_shared<Job>();
        job->profile = profile;
        job->issuer = config.issuers.at(profile.issuer);
        job->solver = solvers.at(profile.issuer);
        job->dir = config.state_dir / "profiles" / name;
        ensure_private_directory(config.state_dir, job->dir);  // staging's parent
        std::string warning;
        job->state = JobState::load(job->dir / "job.json", &warning);
        if (!warning.empty()) hooks_.log("certificate profile " + name + ": " + warning);
        // Check at start, unless a backoff from before a restart is still running.
        if (job->state.consecutive_failures == 0 || job->state.next_run < now)
            job->state.next_run = now;
        jobs.emplace(name, std::move(job));
    }

    std::lock_guard lock(mutex_);
    for (auto& [name, job] : jobs) {
        auto old = jobs_.find(name);
        if (old != jobs_.end()) {
            job->state = old->second->state;  // the in-memory state is the newest
            job->running = old->second->running;
            job->forced = old->second->forced;
            job->last_forced = old->second->last_forced;
            // A new directory (staging -> production) or new names need a new certificate
            // now, not at the next periodic check hours away.
            if (old->second->issuer.directory != job->issuer.directory ||
                old->second->profile.names != job->profile.names)
                job->forced = true;
        }
    }
    jobs_ = std::move(jobs);
    renewal_ = config.renewal;
    state_dir_ = config.state_dir;
    sinks_ = std::make_shared<EventSinks>(config.events, hooks_.log);
    cv_.notify_all();
    return deployed_any;
}

void AcmeRenewer::start() {
    std::lock_guard lock(mutex_);
    if (scheduler_.joinable() || stopping_) return;
    scheduler_ = std::thread([this] { schedule_loop(); });
}

void AcmeRenewer::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    stopped_ = true;
    cv_.notify_all();
    if (scheduler_.joinable()) scheduler_.join();
    std::list<Worker> workers;
    {
        std::lock_guard lock(mutex_);
        workers.swap(workers_);
    }
    for (auto& w : workers)
        if (w.thread.joinable()) w.thread.join();
}

bool AcmeRenewer::sleep(std::chrono::milliseconds duration) {
    std::unique_lock lock(mutex_);
    return !cv_.wait_for(lock, duration, [this] { return stopping_; });
}

AcmeRenewer::RenewRequest AcmeRenewer::renew_now(const std::string& profile, TimePoint now) {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(profile);
    if (it == jobs_.end()) return {false, "no acme certificate profile '" + profile + "'"};
    Job& job = *it->second;
    // A forced renewal is still an order at the CA: it must not run into the CA's limits.
    if (now < job.state.ca_retry_at)
        return {false, "the CA asked to wait until " + to_iso8601(job.state.ca_retry_at) +
                           " (Retry-After of the last failure: " + job.state.last_error + ")"};
    if (job.last_forced != TimePoint{} && now < job.last_forced + renewal_.forced_interval)
        return {false, "a forced renewal of '" + profile + "' ran at " +
                           to_iso8601(job.last_forced) + "; the next is allowed at " +
                           to_iso8601(job.last_forced + renewal_.forced_interval) +
                           " (renewal.forced_interval)"};
    // An order already running is the renewal asked for; a second one would follow it.
    if (!job.running) {
        job.forced = true;
        job.last_forced = now;
    }
    cv_.notify_all();
    return {true, job.running ? "an order is already running" : ""};
}

bool AcmeRenewer::resume(const std::string& profile) {
    return gate_.resume(profile);
}

void AcmeRenewer::schedule_loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        for (auto it = workers_.begin(); it != workers_.end();) {
            if (!it->done) {
                ++it;
                continue;
            }
            it->thread.join();
            it = workers_.erase(it);
        }
        TimePoint now = SystemClock::now();
        TimePoint wake = now + std::chrono::minutes(1);
        int running = static_cast<int>(std::count_if(
            jobs_.begin(), jobs_.end(), [](const auto& kv) { return kv.second->running; }));
        for (auto& [name, job] : jobs_) {
            if (job->running) continue;
            bool due = job->forced || job->state.next_run <= now;
            if (!due) {
                wake = std::min(wake, job->state.next_run);
            } else if (running < renewal_.max_concurrent_orders) {
                job->running = true;
                ++running;
                Worker& worker = workers_.emplace_back();
                // A copy, not the structured binding: clang 14 (the fuzz build) cannot capture one.
                worker.thread = std::thread([this, job = job, &worker] {
                    run(job);
                    std::lock_guard done_lock(mutex_);
                    job->running = false;
                    // configure() replaced the job while it ran: the replacement (which
                    // inherited `running`) takes over the outcome and may run again.
                    auto current = jobs_.find(job->profile.name);
                    if (current != jobs_.end() && current->second != job &&
                        current->second->running) {
                        current->second->state = job->state;
                        current->second->running = false;
                    }
                    worker.done = true;
                    cv_.notify_all();
                });
            }
        }
        cv_.wait_until(lock, wake);
    }
}

void AcmeRenewer::run(const std::shared_ptr<Job>& job) {
    try {
        attempt(*job, SystemClock::now());
    } catch (const std::exception& e) {
        bool stopping;
        {
            std::lock_guard lock(mutex_);
            stopping = stopping_;
        }
        if (stopping) {
            // stop() interrupted the order: not the CA's failure, so no backoff and no
            // "failed" event; the next start checks at once.
            hooks_.log("certificate profile " + job->profile.name +
                       ": order interrupted by shutdown: " + e.what());
        } else {
            std::optional<TimePoint> retry_after;
            if (const auto* acme = dynamic_cast<const AcmeError*>(&e))
                retry_after = acme->problem().retry_after;
            int failures;
            std::chrono::seconds threshold;
            TimePoint next_run;
            {
                std::lock_guard lock(mutex_);
                threshold = renewal_.expiring_threshold;
                JobState& st = job->state;
                failures = ++st.consecutive_failures;
                st.last_error = e.what();
                st.last_result = "failed";
                st.next_run = retry_time(failures, SystemClock::now(), retry_after, random_);
                st.ca_retry_at = retry_after.value_or(TimePoint{});
                next_run = st.next_run;
            }
            emit(*job, "failed",
                 std::string(e.what()) + " (attempt " + std::to_string(failures) + ", next at " +
                     to_iso8601(next_run) + ")");
            // Expiring soon with renewals failing: say so while there is time to act.
            auto deployed = read_deployed(job->profile.deploy_cert, job->profile.deploy_key);
            if (deployed && !is_temporary(deployed->leaf()) &&
                deployed->leaf().not_after() - SystemClock::now() < threshold)
                emit(*job, "expiring",
                     "the certificate expires at " + to_iso8601(deployed->leaf().not_after()) +
                         " and renewal is failing");
        }
    }
    JobState snapshot;
    {
        std::lock_guard lock(mutex_);
        snapshot = job->state;
    }
    try {
        snapshot.save(job->dir / "job.json");
    } catch (const Error& e) {
        hooks_.log("certificate profile " + job->profile.name + ": " + e.what());
    }
}

void AcmeRenewer::attempt(Job& job, TimePoint now) {
    CertificateProfileConfig profile;
    IssuerConfig issuer;
    std::shared_ptr<ChallengeSolver> solver;
    RenewalConfig renewal;
    bool forced;
    std::string last_directory;
    fs::path state_dir;  // configure() may replace state_dir_ while this runs
    {
        std::lock_guard lock(mutex_);
        profile = job.profile;
        issuer = job.issuer;
        solver = job.solver;
        renewal = renewal_;
        forced = std::exchange(job.forced, false);
        last_directory = job.state.directory;
        state_dir = state_dir_;
        job.state.last_attempt = now;
    }
    auto deployed = read_deployed(profile.deploy_cert, profile.deploy_key);
    bool usable = deployed && !is_temporary(deployed->leaf()) &&
                  check_server_material(*deployed, profile.names, now).empty();
    bool directory_changed =
        usable && !last_directory.empty() && last_directory != issuer.directory;

    auto transport = transports_(issuer);
    AcmeClient client(*transport, issuer.directory,
                      [this](std::chrono::milliseconds d) { return sleep(d); });
    TimePoint due = now;
    std::string replaces;
    if (usable) {
        const Certificate& leaf = deployed->leaf();
        due = renewal_time(leaf.not_before(), leaf.not_after(), profile.renew_before);
        std::optional<TimePoint> ari_retry;  // the CA asks to be asked again then (RFC 9773 4.3)
        try {
            if (auto info = client.renewal_info(leaf)) {
                std::lock_guard lock(mutex_);  // random_ is shared by the workers
                due = ari_renewal_time(*info, leaf.not_before(), leaf.not_after(), now, random_);
                replaces = AcmeClient::ari_cert_id(leaf);
                if (info->retry_after)
                    ari_retry = std::max(*info->retry_after, now + std::chrono::minutes(1));
            }
        } catch (const Error& e) {
            hooks_.log(
                "certificate profile " + profile.name +
                ": renewal information unavailable, using the certificate's lifetime: " + e.what());
        }
        if (!forced && !directory_changed && now < due) {
            std::lock_guard lock(mutex_);
            job.state.next_run = std::min(due, next_check(now, renewal.check_interval, random_));
            if (ari_retry) job.state.next_run = std::min(job.state.next_run, *ari_retry);
            return;
        }
        if (is_manual(issuer))
            emit(job, "expiring",
                 "the certificate expires at " + to_iso8601(leaf.not_after()) +
                     " and this profile renews only with the operator's help (manual dns-01)");
    }

    emit(job, "obtaining",
         "ordering a certificate for " + names_text(profile.names) + " from " + issuer.directory +
             (directory_changed ? " (the issuer's directory changed from " + last_directory + ")"
                                : ""));
    // ensure_account and obtain_certificate name the issuer or profile in their lines.
    auto log = [this](const std::string& line) { hooks_.log(line); };
    ensure_account(client, issuer, state_dir, log);
    PrivateKey key = PrivateKey::generate(profile.key_type);
    ObtainRequest request{profile.name,         profile.names, profile.preferred_chain,
                          profile.acme_profile, replaces,      now + renewal.order_timeout};
    auto chain = obtain_certificate(client, *solver, key, request, log);
    ServerMaterial material{std::move(key), std::move(chain)};
    promote(job, material, usable);
    if (hooks_.deployed) hooks_.deployed();

    const Certificate& leaf = material.leaf();
    {
        std::lock_guard lock(mutex_);
        JobState& st = job.state;
        st.consecutive_failures = 0;
        st.last_error.clear();
        st.ca_retry_at = TimePoint{};
        st.last_result = "obtained";
        st.last_success = SystemClock::now();
        st.directory = issuer.directory;
        st.next_run =
            std::min(renewal_time(leaf.not_before(), leaf.not_after(), profile.renew_before),
                     next_check(st.last_success, renewal.check_interval, random_));
    }
    emit(job, "obtained",
         "deployed " + leaf.subject() + " (sha256 " + leaf.fingerprint_sha256() + ", until " +
             to_iso8601(leaf.not_after()) + ")");
}

// The staging contract: the new set is written to staging, read back and checked there, and
// only then copied over the deployed files; the set it replaces is archived.
void AcmeRenewer::promote(Job& job, const ServerMaterial& material, bool archive_deployed) {
    const auto& profile = job.profile;
    fs::path staging = job.dir / "staging";
    fs::remove_all(staging);
    // 0700, in a directory only we may write (checked again: it may have changed since
    // configure()): the new key is written here before it is deployed.
    ensure_private_directory(job.dir, staging);
    write_file_atomic(staging / "key.pem", material.key.to_pem(), kPrivateMode);
    write_file_atomic(staging / "cert.pem", material.cert_pem());
    ServerMaterial staged{PrivateKey::load(staging / "key.pem"),
                          Certificate::load_chain(staging / "cert.pem")};
    if (std::string why = check_server_material(staged, profile.names, SystemClock::now()); !why.empty())
        fail(ErrorKind::Input, (staging / "cert.pem").string(),
             "the CA's certificate is not deployed: " + why);
    if (archive_deployed) {
        if (auto deployed = read_deployed(profile.deploy_cert, profile.deploy_key)) {
            std::string stamp = to_iso8601(SystemClock::now());
            std::replace(stamp.begin(), stamp.end(), ':', '-');
            fs::path set = job.dir / "archive" / stamp;
            ensure_directory(set);
            write_file_atomic(set / "key.pem", deployed->key.to_pem(), kPrivateMode);
            write_file_atomic(set / "cert.pem", deployed->cert_pem());
            prune_archive(job.dir / "archive");
        }
    }
    deploy_material(staged, profile.deploy_cert, profile.deploy_key);
    fs::remove_all(staging);
}

void AcmeRenewer::emit(Job& job, const std::string& type, const std::string& message) {
    RenewalEvent event{type, job.profile.name, message, SystemClock::now()};
    std::shared_ptr<const EventSinks> sinks;
    {
        std::lock_guard lock(mutex_);
        job.state.record(event);
        sinks = sinks_;
    }
    if (hooks_.event) hooks_.event(event);
    if (sinks) sinks->dispatch(event);
}

void AcmeRenewer::emit(const std::string& profile, const std::string& type,
                       const std::string& message) {
    std::shared_ptr<Job> job;
    {
        std::lock_guard lock(mutex_);
        auto it = jobs_.find(profile);
        if (it != jobs_.end()) job = it->second;
    }
    if (job) emit(*job, type, message);
}

std::map<std::string, AcmeRenewer::Status> AcmeRenewer::status() const {
    std::map<std::string, Status> out;
    std::map<std::string, std::pair<fs::path, fs::path>> deployed_files;
    auto waiting = gate_.waiting();
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, job] : jobs_) {
            Status& st = out[name];
            st.issuer = job->issuer.name;
            for (const auto& n : job->profile.names) st.names.push_back(n.value);
            st.next_run = job->state.next_run;
            st.running = job->running;
            st.waiting_for_operator =
                std::find(waiting.begin(), waiting.end(), name) != waiting.end();
            st.job = job->state;
            deployed_files[name] = {job->profile.deploy_cert, job->profile.deploy_key};
        }
    }
    // The files are read outside mutex_, which every job takes to record its progress.
    for (const auto& [name, files] : deployed_files) {
        if (auto deployed = read_deployed(files.first, files.second)) {
            Status& st = out[name];
            st.subject = deployed->leaf().subject();
            st.fingerprint = deployed->leaf().fingerprint_sha256();
            st.not_after = deployed->leaf().not_after();
            st.temporary = is_temporary(deployed->leaf());
        }
    }
    return out;
}

bool AcmeRenewer::idle(std::chrono::milliseconds horizon) const {
    std::lock_guard lock(mutex_);
    TimePoint limit = SystemClock::now() + horizon;
    return std::none_of(jobs_.begin(), jobs_.end(), [&](const auto& kv) {
        return kv.second->running || kv.second->forced || kv.second->state.next_run <= limit;
    });
}

}  // namespace brokertls
