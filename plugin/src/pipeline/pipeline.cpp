#include "pipeline/pipeline.hpp"

#include <algorithm>
#include <set>

#include "acme/problem.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "issuers/acme_issuer.hpp"
#include "renewal/event_sinks.hpp"
#include "renewal/policy.hpp"
#include "threads.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

constexpr const char* kTemporaryOrganization = "brokertls temporary certificate";

const char* source_name(CertificateSource source) {
    switch (source) {
        case CertificateSource::Files:
            return "files";
        case CertificateSource::LocalCa:
            return "local-ca";
        case CertificateSource::Acme:
            return "acme";
        case CertificateSource::Service:
            return "service";
    }
    return "?";
}

bool both_exist(const CertificateProfileConfig& p) {
    std::error_code ec;
    return fs::exists(p.deploy_cert, ec) && fs::exists(p.deploy_key, ec);
}

std::string deployed_text(const Certificate& leaf) {
    return "deployed " + leaf.subject() + " (sha256 " + leaf.fingerprint_sha256() + ", until " +
           to_iso8601(leaf.not_after()) + ")";
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
    spec.not_after = now + CertificatePipeline::kStandInLifetime;
    Certificate cert = sign_certificate(spec, key.get(), key, nullptr);
    return ServerMaterial{std::move(key), {std::move(cert)}};
}

bool is_temporary(const Certificate& leaf) {
    return leaf.is_self_signed() &&
           leaf.subject().find(std::string("O=") + kTemporaryOrganization) != std::string::npos;
}

CertificatePipeline::CertificatePipeline(Hooks hooks)
    : CertificatePipeline(std::move(hooks), Options{}) {}

CertificatePipeline::CertificatePipeline(Hooks hooks, Options options)
    : hooks_(std::move(hooks)),
      options_(std::move(options)),
      clock_(*options_.clock),
      files_issuer_(make_files_issuer()),
      local_ca_issuer_(make_local_ca_issuer()),
      service_issuer_(make_service_issuer(options_.service_transports, *options_.clock)) {
    // Every hook is optional.
    if (!hooks_.log) hooks_.log = [](const std::string&) {};
    if (!hooks_.event) hooks_.event = [](const RenewalEvent&) {};
    if (!hooks_.deployed) hooks_.deployed = [] {};
    run_ = [this](const std::string& name, std::stop_token stop) { return run(name, stop); };
    local_ = std::make_unique<Scheduler>(clock_, options_.local_workers, run_);
    order_workers_ = RenewalConfig{}.max_concurrent_orders;
    orders_ = std::make_unique<Scheduler>(clock_, order_workers_, run_);
}

CertificatePipeline::~CertificatePipeline() {
    stop();
}

void CertificatePipeline::start() {
    started_ = true;
    local_->start();
    orders_->start();
}

void CertificatePipeline::stop() {
    stop_.request_stop();
    local_->stop();
    orders_->stop();
}

Scheduler& CertificatePipeline::scheduler_for(const CertificateProfileConfig& profile) {
    return remote_source(profile.source) ? *orders_ : *local_;
}

std::shared_ptr<Issuer> CertificatePipeline::issuer_for(
    const CertificateProfileConfig& profile,
    const std::map<std::string, std::shared_ptr<Issuer>>& acme) {
    switch (profile.source) {
        case CertificateSource::Files:
            return files_issuer_;
        case CertificateSource::LocalCa:
            return local_ca_issuer_;
        case CertificateSource::Acme:
            return acme.at(profile.issuer);
        case CertificateSource::Service:
            return service_issuer_;
    }
    return nullptr;
}

CertificatePipeline::Configured CertificatePipeline::configure(const Config& config,
                                                               TimePoint now) {
    // The issuers of this configuration (an ACME issuer per issuers entry, with its solver).
    std::map<std::string, std::shared_ptr<Issuer>> acme;
    for (const auto& [name, issuer] : config.issuers) {
        SolverContext context;
        context.log = [this, name = name](const std::string& line) {
            hooks_.log("issuer " + name + ": " + line);
        };
        context.event = [this](const std::string& type, const std::string& profile,
                               const std::string& message) { emit(profile, type, message); };
        context.sleep = [this](std::chrono::milliseconds d) {
            return clock_.sleep_for(d, stop_.get_token());
        };
        std::shared_ptr<ChallengeSolver> solver;
        try {
            solver = make_solver(issuer.challenge, std::move(context), gate_);
        } catch (const Error& e) {
            fail(ErrorKind::Input,
                 config.file.filename().string() + ": issuers." + name + ".challenge", e.what());
        }
        acme.emplace(name, make_acme_issuer(issuer, std::move(solver), options_.transports, clock_,
                                            config.renewal.order_timeout));
    }

    // Copies: the workers change jobs' status under mutex_ while this runs.
    std::map<std::string, Job> old;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, job] : jobs_) old.emplace(name, *job);
        // The order workers are sized by the first configuration (a reload keeps them).
        if (jobs_.empty() && !started_ && config.renewal.max_concurrent_orders != order_workers_) {
            order_workers_ = config.renewal.max_concurrent_orders;
            orders_ = std::make_unique<Scheduler>(clock_, order_workers_, run_);
        }
    }
    // New and changed profiles: their jobs start from what is deployed. Unchanged ones keep
    // their job (and a run in progress).
    std::map<std::string, std::shared_ptr<Job>> jobs;
    std::vector<const CertificateProfileConfig*> fresh;
    for (const auto& [name, profile] : config.certificate_profiles) {
        auto job = std::make_shared<Job>();
        job->profile = profile;
        job->issuer = issuer_for(profile, acme);
        if (profile.source == CertificateSource::Acme)
            job->issuer_config = config.issuers.at(profile.issuer);
        auto it = old.find(name);
        if (it != old.end()) {
            job->status = it->second.status;  // the in-memory state is the newest
            job->last_forced = it->second.last_forced;
        }
        job->status.source = source_name(profile.source);
        job->status.issuer = profile.issuer;
        job->status.names.clear();
        for (const auto& n : profile.names) job->status.names.push_back(n.value);
        // Checked again when it or its issuer changed (a new directory renews at once).
        if (it == old.end() || !(it->second.profile == profile) ||
            !(it->second.issuer_config == job->issuer_config))
            fresh.push_back(&profile);
        jobs.emplace(name, std::move(job));
    }
    Deployer::recover(fresh);

    // Nothing deployed: material now, so the broker has something to serve when it starts.
    Configured result;
    std::vector<Deployer::NewSet> issued;
    std::map<std::string, TimePoint> ready;                 // deployed here: name -> next check
    std::vector<const CertificateProfileConfig*> to_issue;  // nothing deployed yet
    for (const auto* p : fresh) {
        Job& job = *jobs.at(p->name);
        if (old.count(p->name) == 0) {
            std::vector<std::string> warnings;
            job.status.job =
                JobState::load(config.state_dir / "profiles" / p->name / "job.json", warnings);
            for (const auto& w : warnings) hooks_.log("certificate profile " + p->name + ": " + w);
        }
        if (remote_source(p->source)) {
            // Its account key and staged keys go under the state directory: refused at once
            // (the broker does not start) when others may write there. Other sources need it
            // only to archive a replaced set, and check it then.
            ensure_private_directory(config.state_dir, config.state_dir / "profiles" / p->name);
            // Nothing servable (missing, unreadable, expired, key mismatch): the stand-in.
            auto deployed = Deployer::read(*p);
            if (deployed && !server_material_problem(*deployed, {}, now)) continue;
            try {
                auto stand_in = temporary_material(*p, now);
                Deployer::install(stand_in, p->deploy_cert, p->deploy_key);
                summarise(job.status, &stand_in, true);
                result.deployed = true;
                hooks_.log("certificate profile " + p->name +
                           ": no certificate yet: serving a temporary self-signed certificate "
                           "until the " +
                           (p->source == CertificateSource::Acme ? std::string("ACME order")
                                                                 : std::string("service")) +
                           " completes");
            } catch (const Error& e) {
                result.errors.push_back("certificate profile " + p->name + ": " + e.what());
            }
            continue;
        }
        if (both_exist(*p)) continue;  // checked by its job, off the broker's start
        to_issue.push_back(p);
    }
    // Issued and checked at once: from their files, in parallel (reading and checking ten
    // thousand profiles' files is most of a first start); a local CA one at a time (it issues
    // under its directory's lock). Each task changes only its own job.
    std::vector<std::optional<Deployer::NewSet>> sets(to_issue.size());
    std::vector<std::string> refused(to_issue.size());
    auto issue_one = [&](size_t i) {
        const CertificateProfileConfig& p = *to_issue[i];
        Job& job = *jobs.at(p.name);
        try {
            IssueContext ctx(p, config.state_dir);
            ctx.now = now;
            ctx.event = [this, name = p.name](const std::string& type, const std::string& m) {
                emit(name, type, m);
            };
            ctx.log = hooks_.log;
            ServerMaterial material = job.issuer->issue(ctx);
            sets[i] = Deployer::prepare(p, material, job.issuer->origin(p), now);
            // Checked: its status now, and no check at once; next when it is due (files: when
            // its source changes).
            Status& st = job.status;
            summarise(st, &material, false);
            st.job.last_result = "obtained";
            st.job.last_success = now;
            const Certificate& leaf = material.leaf();
            if (!job.issuer->mirrors_source())
                st.renew_at = renewal_time(leaf.not_before(), leaf.not_after(), p.renew_before);
        } catch (const std::exception& e) {
            refused[i] = "certificate profile " + p.name +
                         ": new certificate refused, nothing is deployed: " + e.what();
        }
    };
    std::vector<size_t> from_files, one_by_one;
    for (size_t i = 0; i < to_issue.size(); ++i)
        (jobs.at(to_issue[i]->name)->issuer->mirrors_source() ? from_files : one_by_one)
            .push_back(i);
    for_each_parallel(from_files.size(), [&](size_t k) { issue_one(from_files[k]); });
    for (size_t i : one_by_one) issue_one(i);
    for (size_t i = 0; i < to_issue.size(); ++i) {
        const CertificateProfileConfig& p = *to_issue[i];
        if (!sets[i]) {
            result.errors.push_back(std::move(refused[i]));
            continue;
        }
        issued.push_back(std::move(*sets[i]));
        const Job& job = *jobs.at(p.name);
        ready[p.name] = job.issuer->mirrors_source() ? TimePoint::max() : job.status.renew_at;
    }
    if (!issued.empty()) {
        Deployer::deploy_new(issued);
        result.deployed = true;
        hooks_.log("certificate profiles: deployed " + std::to_string(issued.size()) +
                   " certificates that had nothing deployed");
    }

    auto sinks = std::make_shared<const EventSinks>(config.events, hooks_.log);
    std::map<fs::path, std::vector<std::string>> sources;
    for (const auto& [name, p] : config.certificate_profiles)
        for (const auto& f : p.source_files()) sources[f].push_back(name);
    std::set<std::string> fresh_names;
    for (const auto* p : fresh) fresh_names.insert(p->name);
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, job] : jobs_)
            if (!jobs.count(name) || jobs.at(name)->profile.source != job->profile.source)
                scheduler_for(job->profile).remove(name);
        for (auto& [name, job] : jobs) {
            auto it = jobs_.find(name);
            // A run that finished since the copy above: its state is the newest.
            if (it != jobs_.end() && !fresh_names.count(name)) job->status = it->second->status;
        }
        jobs_ = std::move(jobs);
        sources_ = std::move(sources);
        renewal_ = config.renewal;
        state_dir_ = config.state_dir;
        sinks_ = std::move(sinks);
    }
    // Checked now, unless a backoff from before a restart is still running, or it was just
    // deployed above.
    for (const auto& name : fresh_names) {
        CertificateProfileConfig profile;
        TimePoint next;
        {
            std::lock_guard lock(mutex_);
            Job& job = *jobs_.at(name);
            JobState& st = job.status.job;
            if (st.consecutive_failures == 0 || st.next_run < now) st.next_run = now;
            if (auto it = ready.find(name); it != ready.end()) st.next_run = it->second;
            next = st.next_run;
            profile = job.profile;
        }
        Scheduler& s = scheduler_for(profile);
        if (next <= now)
            s.run_now(name);
        else
            s.schedule(name, next);
    }
    return result;
}

std::vector<fs::path> CertificatePipeline::files_changed(const std::vector<fs::path>& changed) {
    std::vector<fs::path> sources;
    std::set<std::string> profiles;
    {
        std::lock_guard lock(mutex_);
        for (const auto& f : changed) {
            auto it = sources_.find(f);
            if (it == sources_.end()) continue;
            sources.push_back(f);
            profiles.insert(it->second.begin(), it->second.end());
        }
    }
    for (const auto& name : profiles) local_->run_now(name, Scheduler::Priority::Urgent);
    return sources;
}

std::vector<fs::path> CertificatePipeline::source_files() const {
    std::lock_guard lock(mutex_);
    std::vector<fs::path> files;
    for (const auto& [file, profiles] : sources_) files.push_back(file);
    return files;
}

void CertificatePipeline::run_pending() {
    local_->run_pending();
    orders_->run_pending();
}

void CertificatePipeline::summarise(Status& st, const ServerMaterial* deployed, bool temporary) {
    st.checked = true;
    st.temporary = temporary;
    if (!deployed) {
        st.subject.clear();
        st.fingerprint.clear();
        st.not_after = {};
        return;
    }
    st.subject = deployed->leaf().subject();
    st.fingerprint = deployed->leaf().fingerprint_sha256();
    st.not_after = deployed->leaf().not_after();
}

TimePoint CertificatePipeline::run(const std::string& name, std::stop_token stop) {
    CertificateProfileConfig profile;
    std::shared_ptr<Issuer> issuer;
    std::string directory;
    JobState state;
    RenewalConfig renewal;
    fs::path state_dir;
    bool forced;
    TimePoint now = clock_.now();
    {
        std::lock_guard lock(mutex_);
        auto it = jobs_.find(name);
        if (it == jobs_.end()) return TimePoint::max();
        Job& job = *it->second;
        profile = job.profile;
        issuer = job.issuer;
        directory = job.issuer_config.directory;
        state = job.status.job;
        renewal = renewal_;
        state_dir = state_dir_;
        forced = std::exchange(job.forced, false);
    }
    auto log = [&](const std::string& line) {
        hooks_.log("certificate profile " + name + ": " + line);
    };
    auto deployed = Deployer::read(profile);
    ++checks_;
    bool temporary = deployed && is_temporary(deployed->leaf());
    bool usable = deployed && !temporary && !server_material_problem(*deployed, profile.names, now);
    IssueContext ctx(profile, state_dir);
    ctx.deployed = usable ? &*deployed : nullptr;
    ctx.last_directory = state.directory;
    ctx.now = now;
    ctx.stop = stop;
    ctx.event = [this, &name](const std::string& type, const std::string& message) {
        emit(name, type, message);
    };
    ctx.log = hooks_.log;

    // What the broker may serve now (found), and what this run deployed (if anything).
    Status found, fresh;
    bool have_found = false, deployed_new = false;
    bool persist = issuer->talks_to_ca() || forced;
    TimePoint next = TimePoint::max(), renew_at{};
    try {
        if (issuer->talks_to_ca()) {
            state.last_attempt = now;
            // Nothing servable, found after configure(): the stand-in until the order.
            if (!deployed ||
                (!temporary && !usable && server_material_problem(*deployed, {}, now))) {
                auto stand_in = temporary_material(profile, now);
                Deployer::install(stand_in, profile.deploy_cert, profile.deploy_key);
                deployed = std::move(stand_in);
                temporary = true;
                hooks_.deployed();
                log("no usable certificate: serving a temporary self-signed certificate until "
                    "the ACME order completes");
            }
        }
        summarise(found, deployed ? &*deployed : nullptr, temporary);
        have_found = true;

        bool due = true;
        if (!issuer->mirrors_source() && usable) {
            const Certificate& leaf = deployed->leaf();
            renew_at = renewal_time(leaf.not_before(), leaf.not_after(), profile.renew_before);
            TimePoint check = TimePoint::max();
            if (issuer->talks_to_ca()) {
                {
                    std::lock_guard lock(mutex_);  // random_ is shared by the workers
                    check = next_check(now, renewal.check_interval, random_);
                }
                try {
                    if (auto window = issuer->renewal_window(ctx)) {
                        std::lock_guard lock(mutex_);
                        renew_at = ari_renewal_time(window->info, leaf.not_before(),
                                                    leaf.not_after(), now, random_);
                        ctx.replaces = window->replaces;
                        // The CA asks to be asked again then (RFC 9773 4.3).
                        if (window->info.retry_after)
                            check = std::min(check, std::max(*window->info.retry_after,
                                                             now + std::chrono::minutes(1)));
                    }
                } catch (const Error& e) {
                    log("renewal information unavailable, using the certificate's lifetime: " +
                        std::string(e.what()));
                }
            }
            // A retry after a failure repeats the attempt (a forced renewal too).
            due = forced || state.consecutive_failures > 0 || !issuer->due_anyway(ctx).empty() ||
                  now >= renew_at;
            if (!due) next = std::min(renew_at, check);
        }
        if (due) {
            ServerMaterial material = issuer->issue(ctx);
            Deployer deployer(state_dir);
            auto result = deployer.deploy(profile, material, issuer->origin(profile),
                                          usable ? &*deployed : nullptr, usable, clock_.now());
            deployed_new = result == Deployer::Result::Deployed;
            const ServerMaterial& serving = deployed_new ? material : *deployed;
            if (deployed_new) {
                hooks_.deployed();
                summarise(fresh, &material, false);
                emit(name, "obtained", deployed_text(material.leaf()));
                state.last_result = "obtained";
                state.last_success = clock_.now();
                persist = true;
            }
            if (issuer->talks_to_ca()) state.directory = directory;
            if (!issuer->mirrors_source()) {
                const Certificate& leaf = serving.leaf();
                renew_at = renewal_time(leaf.not_before(), leaf.not_after(), profile.renew_before);
                // Never a loop of issuances: a certificate due at once (a CA's clock behind
                // ours, a lifetime shorter than asked) waits kMinReissue.
                next = std::max(renew_at, clock_.now() + kMinReissue);
                if (issuer->talks_to_ca()) {
                    std::lock_guard lock(mutex_);
                    next =
                        std::min(next, next_check(clock_.now(), renewal.check_interval, random_));
                }
            }
        }
        if (state.consecutive_failures > 0) persist = true;
        if (!deployed_new && (state.consecutive_failures > 0 || state.last_result.empty()))
            state.last_result = "up to date";
        state.consecutive_failures = 0;
        state.last_error.clear();
        state.ca_retry_at = TimePoint{};
    } catch (const std::exception& e) {
        if (stop.stop_requested()) {
            // stop() interrupted the work: not the CA's failure, so no backoff and no
            // "failed" event; the next start checks at once.
            log("order interrupted by shutdown: " + std::string(e.what()));
            next = now;
        } else {
            std::optional<TimePoint> retry_after;
            if (const auto* acme = dynamic_cast<const AcmeError*>(&e))
                retry_after = acme->problem().retry_after;
            int failures = ++state.consecutive_failures;
            state.last_error = e.what();
            state.last_result = "failed";
            {
                std::lock_guard lock(mutex_);
                next = retry_time(failures, clock_.now(), retry_after, random_);
            }
            state.ca_retry_at = retry_after.value_or(TimePoint{});
            persist = true;
            std::string what =
                issuer->talks_to_ca()
                    ? std::string(e.what())
                    : "new certificate refused, the deployed one stays: " + std::string(e.what());
            emit(name, "failed",
                 what + " (attempt " + std::to_string(failures) + ", next at " + to_iso8601(next) +
                     ")");
            // Expiring soon with renewals failing: say so while there is time to act.
            if (usable && deployed->leaf().not_after() - clock_.now() < renewal.expiring_threshold)
                emit(name, "expiring",
                     "the certificate expires at " + to_iso8601(deployed->leaf().not_after()) +
                         " and renewal is failing");
        }
    }
    state.next_run = next;
    {
        std::lock_guard lock(mutex_);
        auto it = jobs_.find(name);
        if (it != jobs_.end()) {
            Status& st = it->second->status;
            // The broker started (or reloaded) before this profile was first checked: it
            // serves what was found.
            if (have_found && st.served_fingerprint.empty() && st.served_since != TimePoint{}) {
                st.served_fingerprint = found.fingerprint;
                st.served_not_after = found.not_after;
            }
            const Status& now_deployed = deployed_new ? fresh : found;
            if (have_found) {
                st.checked = true;
                st.subject = now_deployed.subject;
                st.fingerprint = now_deployed.fingerprint;
                st.not_after = now_deployed.not_after;
                st.temporary = now_deployed.temporary;
            }
            st.renew_at = renew_at;
            // Events recorded during the run are in st.job.activity: keep them.
            state.activity = st.job.activity;
            st.job = state;
        }
    }
    if (persist) save_state(name, state);
    return next;
}

void CertificatePipeline::save_state(const std::string& name, const JobState& state) {
    fs::path state_dir;
    {
        std::lock_guard lock(mutex_);
        state_dir = state_dir_;
    }
    try {
        fs::path dir = state_dir / "profiles" / name;
        ensure_private_directory(state_dir, dir);
        state.save(dir / "job.json");
    } catch (const Error& e) {
        hooks_.log("certificate profile " + name + ": " + e.what());
    }
}

void CertificatePipeline::emit(const std::string& profile, const std::string& type,
                               const std::string& message) {
    RenewalEvent event{type, profile, message, clock_.now()};
    std::shared_ptr<const EventSinks> sinks;
    {
        std::lock_guard lock(mutex_);
        if (auto it = jobs_.find(profile); it != jobs_.end()) it->second->status.job.record(event);
        sinks = sinks_;
    }
    hooks_.event(event);
    if (sinks) sinks->dispatch(event);
}

CertificatePipeline::RenewRequest CertificatePipeline::renew_now(const std::string& profile,
                                                                 TimePoint now) {
    std::shared_ptr<Job> job;
    {
        std::lock_guard lock(mutex_);
        auto it = jobs_.find(profile);
        if (it == jobs_.end()) return {"no certificate profile '" + profile + "'", ""};
        job = it->second;
        const JobState& st = job->status.job;
        // A forced renewal is still an order at the CA: it must not run into the CA's limits.
        if (now < st.ca_retry_at)
            return {"the CA asked to wait until " + to_iso8601(st.ca_retry_at) +
                        " (Retry-After of the last failure: " + st.last_error + ")",
                    ""};
        if (job->last_forced != TimePoint{} && now < job->last_forced + renewal_.forced_interval)
            return {"a forced renewal of '" + profile + "' ran at " + to_iso8601(job->last_forced) +
                        "; the next is allowed at " +
                        to_iso8601(job->last_forced + renewal_.forced_interval) +
                        " (renewal.forced_interval)",
                    ""};
    }
    Scheduler& s = scheduler_for(job->profile);
    auto info = s.info(profile);
    bool running = info && info->running;
    // A run already going is the renewal asked for; a second one would follow it.
    if (!running) {
        std::lock_guard lock(mutex_);
        job->forced = true;
        job->last_forced = now;
    }
    if (!running) s.run_now(profile, Scheduler::Priority::Urgent);
    return {std::nullopt, running ? "an order is already running" : ""};
}

bool CertificatePipeline::resume(const std::string& profile) {
    return gate_.resume(profile);
}

std::map<std::string, CertificatePipeline::Status> CertificatePipeline::status() const {
    std::map<std::string, Status> out;
    auto waiting = gate_.waiting();
    std::lock_guard lock(mutex_);
    for (const auto& [name, job] : jobs_) {
        Status st = job->status;
        auto info = (remote_source(job->profile.source) ? orders_ : local_)->info(name);
        st.running = info && info->running;
        st.next_run = st.job.next_run;
        st.waiting_for_operator = std::find(waiting.begin(), waiting.end(), name) != waiting.end();
        out.emplace(name, std::move(st));
    }
    return out;
}

void CertificatePipeline::mark_served(TimePoint now) {
    std::lock_guard lock(mutex_);
    for (auto& [name, job] : jobs_) {
        Status& st = job->status;
        if (st.fingerprint.empty()) {
            // Not checked yet: the broker serves what its check will find (run() fills it in).
            if (st.served_fingerprint.empty()) st.served_since = now;
            continue;
        }
        if (st.served_fingerprint == st.fingerprint) continue;
        st.served_fingerprint = st.fingerprint;
        st.served_not_after = st.not_after;
        st.served_since = now;
    }
}

bool CertificatePipeline::idle(std::chrono::milliseconds horizon) const {
    TimePoint until = clock_.now() + horizon;
    return local_->idle(until) && orders_->idle(until);
}

}  // namespace brokertls
