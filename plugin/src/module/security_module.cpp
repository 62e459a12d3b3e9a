#include "brokertls/module/security_module.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <utility>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "config/config.hpp"
#include "json_text.hpp"
#include "pipeline/pipeline.hpp"
#include "renewal/job_state.hpp"
#include "threads.hpp"
#include "trust/capath.hpp"
#include "trust/kept_crls.hpp"
#include "trust/validator.hpp"
#include "watch/file_watcher.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

// A local-ca profile puts its CA's key on the broker. Refused when that CA is also trusted to
// vouch for clients, unless local_ca.allow_client_trust_anchor says the operator chose it.
void check_local_ca_trust(
    const Config& config, const fs::path& file,
    const std::map<std::string, std::shared_ptr<const TrustSnapshot>>& trust) {
    for (const auto& [name, profile] : config.certificate_profiles) {
        if (profile.source != CertificateSource::LocalCa || profile.allow_client_trust_anchor)
            continue;
        for (const char* ca_file : {"root.crt", "intermediate.crt"}) {
            fs::path path = profile.ca_dir / ca_file;
            if (!fs::exists(path)) continue;
            std::string fp = Certificate::load(path).fingerprint_sha256();
            for (const auto& [security_name, snap] : trust)
                for (const auto* list : {&snap->anchors(), &snap->intermediates()})
                    for (const auto& cert : *list)
                        if (cert.fingerprint_sha256() == fp)
                            fail(ErrorKind::Input,
                                 file.filename().string() + ": certificate_profiles." + name +
                                     ".local_ca",
                                 path.string() +
                                     " also vouches for the clients of security "
                                     "profile '" +
                                     security_name +
                                     "': the broker would hold a key "
                                     "that can mint any client identity. Issue the server "
                                     "certificate from another CA, or set "
                                     "\"allow_client_trust_anchor\": true");
        }
    }
}

}  // namespace

// Everything behind SecurityModule's public methods (which forward here), kept out of the
// installed header.
struct SecurityModule::Impl {
    Impl(fs::path config_file, Clock& clock);
    ~Impl();
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    std::vector<std::string> take_startup_log();
    void start_watching(std::function<bool()> reload_broker);
    bool poll_files(TimePoint now, std::chrono::milliseconds wait);
    bool has_security_profile(const std::string& name) const;
    void use_security_profile(const std::string& name);
    bool requires_client_certificate(const std::string& profile) const;
    std::string security_profile_for_port(int port) const;
    bool maps_listeners() const;
    ValidationResult authenticate(const std::string& profile, X509* leaf,
                                  std::string_view client_id, const void* connection, TimePoint now,
                                  bool check_client_id);
    bool client_id_must_match_identity(const std::string& profile) const;
    void disconnected(std::string_view client_id, const void* connection);
    Outcome reload(TimePoint now);
    void broker_reloaded(TimePoint now);
    Outcome tick(TimePoint now);
    Outcome flush_messages();
    nlohmann::json status(TimePoint now) const;
    ControlResult control(std::string_view request, const ControlCaller& caller, TimePoint now);

    struct State {
        Config config;
        std::map<std::string, std::shared_ptr<const TrustSnapshot>> trust;
        std::vector<std::string> warnings;  // shown in getStatus while this state is in force
        std::vector<std::string> changes;   // logged once (capath updates)
    };
    struct Connected {
        std::string profile;
        Certificate certificate;
        const void* connection;
        std::string identity;
        bool check_client_id = true;  // false: the adapter checks it (authenticate_connection)
    };
    // The verdict, with a client-id mismatch forgiven when the adapter checks the client id:
    // that check comes last in TrustSnapshot::validate, so everything else was checked.
    static ValidationResult validate(const TrustSnapshot& snapshot, X509* leaf,
                                     std::string_view client_id, TimePoint now,
                                     bool check_client_id);
    const Connected* connected(std::string_view client_id, const void* connection) const;
    bool control_allowed(const Connected& caller) const;
    // Builds the state of `config` (every security profile's files read and checked).
    static std::shared_ptr<const State> build_state(Config config, const State* previous,
                                                    TimePoint now);
    std::vector<std::filesystem::path> watched_files(const Config& config) const;
    // Applies `changed` watched files: certificate sources go to the pipeline, anything else
    // rebuilds the state.
    // True when it rebuilt.
    bool apply(const std::vector<std::filesystem::path>& changed, TimePoint now);
    // Builds and swaps in a new state and reconfigures the pipeline; records the result for
    // the broker thread. Any thread.
    void rebuild(TimePoint now);
    // Raises the broker's reload (wake_) for new certificates, or for a trust change when the
    // broker sends no TICK (`no_ticks`), once, until it is handled.
    void signal_broker(bool no_ticks);
    Outcome drain(TimePoint now);
    std::vector<std::string> revalidate_connected(TimePoint now);
    void watch_loop();
    void on_event(const RenewalEvent& event);
    void on_log(const std::string& line);
    void on_deployed();

    std::filesystem::path config_file_;
    Clock& clock_;  // the watcher's time
    std::atomic<std::shared_ptr<const State>> state_;

    // getStatus counters: typed atomics, so authenticate() takes no lock.
    struct Counters {
        std::array<std::atomic<unsigned long>, kRejectReasons> validations{};  // [None]: accepted
        std::atomic<unsigned long> reload_ok{0}, reload_failed{0};
        std::atomic<unsigned long> broker_reload_signals{0}, broker_reloads{0};
    };
    Counters counters_;

    // Every certificate profile: its own threads, never holding a lock of ours while it works.
    std::unique_ptr<CertificatePipeline> pipeline_;
    std::atomic<bool> deployed_{false};           // new material on disk, the broker not yet told
    std::atomic<bool> rebuild_requested_{false};  // an operator's reload, for the watcher

    // Shared between the watcher and the broker thread; held only briefly.
    mutable std::mutex mutex_;
    std::vector<std::string> startup_log_;
    Outcome pending_;
    bool pending_revalidate_ = false;
    bool pending_rebuilt_ = false;  // the watcher rebuilt the state; a reload only hands it over
    bool wake_requested_ = false;   // a signal for pending work went out and was not yet drained
    std::set<std::string> profiles_in_use_;
    TimePoint last_reload_at_{};
    bool last_reload_ok_ = true;
    std::string last_reload_message_ = "initial load";
    std::atomic<TimePoint::rep> last_tick_{0};

    // Broker thread only.
    std::map<std::string, Connected, std::less<>> connected_;

    // The watched files (inotify; its own lock), and the watcher thread that waits on them.
    FileWatcher files_;
    std::mutex signal_mutex_;  // wake_ and one signal at a time
    std::function<bool()> wake_;
    std::stop_source stop_;
    std::thread watcher_;
};

SecurityModule::Impl::Impl(fs::path config_file, Clock& clock)
    : config_file_(std::move(config_file)), clock_(clock) {
    Config config = load_config(config_file_);
    // Watched before they are read: a change in between is reported, not missed.
    files_.set_files(watched_files(config));
    last_reload_at_ = clock.now();
    state_.store(build_state(std::move(config), nullptr, last_reload_at_));
    auto state = state_.load();
    CertificatePipeline::Options options;
    options.clock = &clock;
    pipeline_ = std::make_unique<CertificatePipeline>(
        CertificatePipeline::Hooks{[this] { on_deployed(); },
                                   [this](const RenewalEvent& e) { on_event(e); },
                                   [this](const std::string& line) { on_log(line); }},
        options);
    auto configured = pipeline_->configure(state->config, last_reload_at_);
    if (!configured.errors.empty())
        fail(ErrorKind::Input, config_file_.filename().string(),
             "no usable server certificate: " + configured.errors.front());
    // The broker reads what is deployed when it starts.
    deployed_ = false;
    pipeline_->mark_served(last_reload_at_);
    startup_log_ = state->warnings;
    startup_log_.insert(startup_log_.end(), state->changes.begin(), state->changes.end());
    startup_log_.insert(startup_log_.end(), pending_.log.begin(), pending_.log.end());
    pending_ = Outcome{};
}

std::vector<std::string> SecurityModule::Impl::take_startup_log() {
    return std::exchange(startup_log_, {});
}

SecurityModule::Impl::~Impl() {
    pipeline_->stop();
    stop_.request_stop();  // wakes the watcher's wait
    if (watcher_.joinable()) watcher_.join();
}

void SecurityModule::Impl::start_watching(std::function<bool()> wake) {
    if (watcher_.joinable()) return;
    {
        std::lock_guard lock(signal_mutex_);
        wake_ = std::move(wake);
    }
    watcher_ = std::thread([this] {
        block_signals();
        watch_loop();
    });
    pipeline_->start();
}

void SecurityModule::Impl::on_deployed() {
    deployed_ = true;
    signal_broker(false);
}

void SecurityModule::Impl::on_log(const std::string& line) {
    std::lock_guard lock(mutex_);
    pending_.log.push_back(line);
}

void SecurityModule::Impl::on_event(const RenewalEvent& event) {
    std::lock_guard lock(mutex_);
    pending_.log.push_back("certificate profile " + event.profile + ": " + event.type + ": " +
                           event.message);
    if (event.type == "failed") pending_.ok = false;
    auto state = state_.load();  // null while the constructor runs
    const std::string topic = state ? state->config.events.mqtt_topic : "";
    if (!topic.empty()) pending_.publish.push_back({topic + "/" + event.profile, event.to_json()});
}

void SecurityModule::Impl::signal_broker(bool no_ticks) {
    // A signal makes Mosquitto re-read its whole configuration: raised for new server
    // certificates, and for a trust change that may have to disconnect clients when the
    // broker sends no TICK (2.0 with per_listener_settings) - once, until it is handled.
    // Log lines and events wait for the next broker-thread event instead.
    std::lock_guard signal_lock(signal_mutex_);
    bool revalidate_waits;
    {
        std::lock_guard lock(mutex_);
        revalidate_waits = pending_revalidate_ && no_ticks && !wake_requested_;
    }
    if (!wake_ || !(deployed_ || revalidate_waits)) return;
    bool certificates = deployed_.exchange(false);
    if (wake_()) {
        ++counters_.broker_reload_signals;
        std::lock_guard lock(mutex_);
        wake_requested_ = true;
    } else if (certificates) {
        deployed_ = true;  // owed until one can be sent (the broker is still starting)
    }
}

void SecurityModule::Impl::watch_loop() {
    std::string watch_problem;
    std::stop_token stop = stop_.get_token();
    while (!stop.stop_requested()) {
        // Returns at once for changed files; otherwise every poll_interval, for the signal
        // bookkeeping below (no file is read then).
        auto changed = files_.wait(poll_interval, stop);
        if (stop.stop_requested()) break;
        // What could not be watched with inotify (and is polled instead), said once.
        if (std::string problem = files_.stats().watch_problem; problem != watch_problem) {
            watch_problem = problem;
            if (!problem.empty()) {
                std::lock_guard lock(mutex_);
                pending_.log.push_back("file watcher: " + problem);
            }
        }
        TimePoint now = clock_.now();
        bool rebuilt = !changed.empty() && apply(changed, now);
        if (rebuild_requested_.exchange(false) && !rebuilt) rebuild(now);
        auto since_tick = now.time_since_epoch().count() - last_tick_.load();
        bool no_ticks =
            since_tick >
            std::chrono::duration_cast<SystemClock::duration>(std::chrono::seconds(1)).count();
        signal_broker(no_ticks);
    }
}

bool SecurityModule::Impl::poll_files(TimePoint now, std::chrono::milliseconds wait) {
    auto changed = files_.wait(wait);
    if (!changed.empty()) apply(changed, now);
    // Without the pipeline's workers (tests): its work runs here.
    bool deployed_before = deployed_;
    pipeline_->run_pending();
    return !changed.empty() || (deployed_ && !deployed_before);
}

bool SecurityModule::Impl::apply(const std::vector<fs::path>& changed, TimePoint now) {
    // A new key or certificate in a `files` source is that profile's work; anything else
    // (brokertls.json, anchors, CRLs) rebuilds the configuration and re-checks connected
    // clients.
    auto sources = pipeline_->files_changed(changed);
    if (sources.size() == changed.size()) return false;
    rebuild(now);
    return true;
}

std::shared_ptr<const SecurityModule::Impl::State> SecurityModule::Impl::build_state(
    Config config, const State* previous, TimePoint now) {
    auto state = std::make_shared<State>();
    state->config = std::move(config);
    const fs::path& file = state->config.file;
    // The CRLs in force stay until newer ones replace them: those kept across restarts, and
    // those of the snapshots in force now where they are newer (keeping them may have failed).
    // A kept file of a CRL in force shares it instead of a second copy.
    CrlsInForce previous_crls;
    if (previous)
        for (const auto& [name, snap] : previous->trust) merge_newest(previous_crls, snap->crls());
    CrlsInForce kept = load_kept_crls(state->config.state_dir, state->warnings, previous_crls);
    for (const auto& [name, profile] : state->config.security_profiles) {
        try {
            CrlsInForce in_force = kept;
            // The snapshot it replaces lends its verified chains when they still verify alike.
            const TrustSnapshot* before = nullptr;
            if (previous)
                if (auto it = previous->trust.find(name); it != previous->trust.end()) {
                    merge_newest(in_force, it->second->crls());
                    before = it->second.get();
                }
            auto snapshot = TrustSnapshot::build(profile, in_force, now, before);
            for (const auto& w : snapshot->warnings())
                state->warnings.push_back("security profile " + name + ": " + w);
            state->trust.emplace(name, std::move(snapshot));
        } catch (const Error& e) {
            fail(ErrorKind::Input, file.filename().string() + ": security_profiles." + name,
                 e.what());
        }
    }
    if (state->config.capath) {
        std::vector<Certificate> cas;
        for (const auto& [name, snap] : state->trust) {
            cas.insert(cas.end(), snap->anchors().begin(), snap->anchors().end());
            cas.insert(cas.end(), snap->intermediates().begin(), snap->intermediates().end());
        }
        try {
            auto lines = sync_capath(*state->config.capath, cas);
            state->changes = std::move(lines);
        } catch (const Error& e) {
            fail(ErrorKind::Io, file.filename().string() + ": capath", e.what());
        }
    }
    check_local_ca_trust(state->config, file, state->trust);
    CrlsInForce newest;
    for (const auto& [name, snap] : state->trust) merge_newest(newest, snap->crls());
    keep_crls(state->config.state_dir, newest, state->warnings);
    return state;
}

std::vector<fs::path> SecurityModule::Impl::watched_files(const Config& config) const {
    std::vector<fs::path> files;
    for (const auto& [name, p] : config.certificate_profiles)
        for (auto& f : p.source_files()) files.push_back(std::move(f));
    files.push_back(config_file_);
    for (const auto& [name, profile] : config.security_profiles) {
        files.insert(files.end(), profile.trust_anchors.begin(), profile.trust_anchors.end());
        files.insert(files.end(), profile.intermediates.begin(), profile.intermediates.end());
        files.insert(files.end(), profile.crls.begin(), profile.crls.end());
    }
    return files;
}

bool SecurityModule::Impl::has_security_profile(const std::string& name) const {
    return state_.load()->trust.count(name) > 0;
}

void SecurityModule::Impl::use_security_profile(const std::string& name) {
    std::lock_guard lock(mutex_);
    profiles_in_use_.insert(name);
}

std::string SecurityModule::Impl::security_profile_for_port(int port) const {
    auto state = state_.load();
    auto it = state->config.listeners.find(port);
    return it == state->config.listeners.end() ? std::string() : it->second;
}

bool SecurityModule::Impl::maps_listeners() const {
    return !state_.load()->config.listeners.empty();
}

bool SecurityModule::Impl::requires_client_certificate(const std::string& profile) const {
    auto state = state_.load();
    auto it = state->trust.find(profile);
    return it == state->trust.end() || it->second->profile().require_client_certificate;
}

ValidationResult SecurityModule::Impl::validate(const TrustSnapshot& snapshot, X509* leaf,
                                                std::string_view client_id, TimePoint now,
                                                bool check_client_id) {
    ValidationResult r = snapshot.validate(leaf, client_id, now);
    if (!check_client_id && r.reason == RejectReason::ClientIdMismatch) {
        r.reason = RejectReason::None;
        r.detail.clear();
    }
    return r;
}

bool SecurityModule::Impl::client_id_must_match_identity(const std::string& profile) const {
    auto state = state_.load();
    auto it = state->trust.find(profile);
    return it == state->trust.end() || it->second->profile().client_id_must_match_identity;
}

ValidationResult SecurityModule::Impl::authenticate(const std::string& profile, X509* leaf,
                                                    std::string_view client_id,
                                                    const void* connection, TimePoint now,
                                                    bool check_client_id) {
    auto state = state_.load();
    auto it = state->trust.find(profile);
    ValidationResult r;
    if (it == state->trust.end()) {
        r.reason = RejectReason::Untrusted;
        r.detail = "security profile '" + profile + "' is not configured";
    } else {
        r = validate(*it->second, leaf, client_id, now, check_client_id);
    }
    ++counters_.validations[static_cast<std::size_t>(r.reason)];
    if (r.ok()) {
        X509_up_ref(leaf);
        connected_.insert_or_assign(std::string(client_id),
                                    Connected{profile, Certificate(X509Ptr(leaf)), connection,
                                              r.identity, check_client_id});
    }
    return r;
}

const SecurityModule::Impl::Connected* SecurityModule::Impl::connected(
    std::string_view client_id, const void* connection) const {
    auto it = connected_.find(client_id);
    return it != connected_.end() && it->second.connection == connection ? &it->second : nullptr;
}

void SecurityModule::Impl::disconnected(std::string_view client_id, const void* connection) {
    auto it = connected_.find(client_id);
    if (it != connected_.end() && it->second.connection == connection) connected_.erase(it);
}

std::vector<std::string> SecurityModule::Impl::revalidate_connected(TimePoint now) {
    auto state = state_.load();
    std::vector<std::string> kick;
    for (auto it = connected_.begin(); it != connected_.end();) {
        auto snap = state->trust.find(it->second.profile);
        bool still_ok =
            snap != state->trust.end() && validate(*snap->second, it->second.certificate.get(),
                                                   it->first, now, it->second.check_client_id)
                                              .ok();
        if (still_ok) {
            ++it;
        } else {
            kick.push_back(it->first);
            it = connected_.erase(it);
        }
    }
    return kick;
}

void SecurityModule::Impl::rebuild(TimePoint now) {
    std::shared_ptr<const State> next;
    std::string error;
    CertificatePipeline::Configured certs;
    try {
        Config config = load_config(config_file_);
        // Its files are watched before they are read, with those of the configuration in
        // force until it is replaced (a refused one leaves that in force, and the watch keeps
        // its files, which include the config, so a fix is noticed).
        auto files = watched_files(config);
        auto both = watched_files(state_.load()->config);
        both.insert(both.end(), files.begin(), files.end());
        files_.set_files(both);
        next = build_state(std::move(config), state_.load().get(), now);
        std::set<std::string> in_use;
        {
            std::lock_guard lock(mutex_);
            in_use = profiles_in_use_;
        }
        for (const auto& name : in_use)
            if (!next->trust.count(name))
                fail(ErrorKind::Input, config_file_.filename().string() + ": security_profiles",
                     "'" + name +
                         "' is removed, but a listener uses it (plugin_opt_security_profile)");
        // A port that loses its mapping would be left to the broker's other authentication
        // (anonymous, passwords): ports can be added or remapped by a reload, not dropped.
        for (const auto& [port, profile] : state_.load()->config.listeners)
            if (!next->config.listeners.count(port))
                fail(ErrorKind::Input, config_file_.filename().string() + ": listeners",
                     "port " + std::to_string(port) + " (security profile '" + profile +
                         "') is removed; a restart of the broker can remove it");
        // New profiles with nothing deployed get material now; the rest is the pipeline's.
        certs = pipeline_->configure(next->config, now);
        files_.set_files(files);
    } catch (const std::exception& e) {
        next.reset();
        error = e.what();
    }
    std::lock_guard lock(mutex_);
    last_reload_at_ = now;
    pending_rebuilt_ = true;
    for (const auto& e : certs.errors) pending_.log.push_back(e);
    if (!certs.errors.empty()) pending_.ok = false;
    if (!next) {
        ++counters_.reload_failed;
        last_reload_ok_ = false;
        last_reload_message_ = error;
        pending_.ok = false;
        pending_.log.push_back("reload refused, previous configuration stays in force: " + error);
        return;
    }
    pending_.log.insert(pending_.log.end(), next->warnings.begin(), next->warnings.end());
    pending_.log.insert(pending_.log.end(), next->changes.begin(), next->changes.end());
    pending_.log.push_back("configuration reloaded from " + config_file_.string());
    state_.store(std::move(next));
    ++counters_.reload_ok;
    last_reload_ok_ = true;
    last_reload_message_ = "reloaded";
    pending_revalidate_ = true;
}

SecurityModule::Outcome SecurityModule::Impl::drain(TimePoint now) {
    Outcome out;
    bool revalidate;
    {
        std::lock_guard lock(mutex_);
        out = std::exchange(pending_, Outcome{});
        revalidate = std::exchange(pending_revalidate_, false);
        pending_rebuilt_ = false;
        wake_requested_ = false;
    }
    if (revalidate) out.kick = revalidate_connected(now);
    for (const auto& id : out.kick)
        out.log.push_back("disconnecting client '" + id +
                          "': its certificate is no longer accepted");
    return out;
}

SecurityModule::Outcome SecurityModule::Impl::reload(TimePoint now) {
    bool ours, built;
    {
        std::lock_guard lock(mutex_);
        ours = wake_requested_;
        built = pending_rebuilt_;
    }
    // A reload we signalled (new certificates, clients to disconnect, a rebuild's outcome)
    // only hands over what is pending: the broker re-read its certificate files meanwhile.
    // Any other (an operator's SIGHUP) rebuilds, on the watcher thread when there is one: the
    // broker thread never waits for it, and its outcome follows at the next tick or signal.
    if (!built && !ours) {
        if (watcher_.joinable())
            rebuild_requested_ = true;
        else
            rebuild(now);
    }
    return drain(now);
}

SecurityModule::Outcome SecurityModule::Impl::flush_messages() {
    std::lock_guard lock(mutex_);
    Outcome out;
    // Lines and messages only: kicks wait for reload() or tick(), and pending_.ok stays for
    // them to report.
    out.log = std::exchange(pending_.log, {});
    out.publish = std::exchange(pending_.publish, {});
    out.ok = pending_.ok;
    return out;
}

void SecurityModule::Impl::broker_reloaded(TimePoint now) {
    ++counters_.broker_reloads;
    pipeline_->mark_served(now);  // a short lock: the pipeline never holds it while working
}

SecurityModule::Outcome SecurityModule::Impl::tick(TimePoint now) {
    last_tick_.store(now.time_since_epoch().count());
    {
        std::lock_guard lock(mutex_);
        if (!pending_revalidate_ && pending_.log.empty() && pending_.publish.empty()) return {};
    }
    return drain(now);
}

nlohmann::json SecurityModule::Impl::status(TimePoint now) const {
    using nlohmann::json;
    auto state = state_.load();
    // A copy (no file is read); no lock of ours is held while the document is built (only to
    // copy the last reload's fields).
    auto certificate_status = pipeline_->status();
    TimePoint last_reload_at;
    bool last_reload_ok;
    std::string last_reload_message;
    {
        std::lock_guard lock(mutex_);
        last_reload_at = last_reload_at_;
        last_reload_ok = last_reload_ok_;
        last_reload_message = last_reload_message_;
    }
    json profiles = json::object();
    for (const auto& [name, snap] : state->trust) {
        json anchors = json::array();
        for (const auto& a : snap->anchors())
            anchors.push_back({{"subject", a.subject()},
                               {"fingerprint", a.fingerprint_sha256()},
                               {"not_after", to_iso8601(a.not_after())}});
        profiles[name] = {
            {"identity", identity_source_name(snap->profile().identity)},
            {"require_client_certificate", snap->profile().require_client_certificate},
            {"trust_anchors", std::move(anchors)},
            {"crls", snap->profile().crls.size()}};
    }
    json certificates = json::object();
    auto iso = [](TimePoint t) {
        return t == TimePoint{} || t == TimePoint::max() ? std::string() : to_iso8601(t);
    };
    for (const auto& [name, st] : certificate_status) {
        json activity = json::array();
        for (const auto& e : st.job.activity) activity.push_back(json::parse(e.to_json()));
        json entry = {{"source", st.source},
                      {"names", st.names},
                      {"subject", st.subject},
                      {"fingerprint", st.fingerprint},
                      {"not_after", iso(st.not_after)},
                      {"renew_at", iso(st.renew_at)},
                      {"temporary", st.temporary},
                      {"next_renewal", iso(st.next_run)},
                      {"running", st.running},
                      {"waiting_for_operator", st.waiting_for_operator},
                      {"last_result", st.checked ? st.job.last_result : "not yet checked"},
                      {"last_error", st.job.last_error},
                      {"consecutive_failures", st.job.consecutive_failures},
                      {"last_success", iso(st.job.last_success)},
                      {"activity", std::move(activity)},
                      {"ok", st.job.consecutive_failures == 0},
                      {"served",
                       {{"fingerprint", st.served_fingerprint},
                        {"not_after", iso(st.served_not_after)},
                        {"since", iso(st.served_since)}}}};
        if (!st.issuer.empty()) entry["issuer"] = st.issuer;
        certificates[name] = std::move(entry);
    }
    json counters = json::object();
    for (std::size_t i = 0; i < kRejectReasons; ++i) {
        std::string_view name = reject_reason_name(static_cast<RejectReason>(i));
        counters[i == 0 ? std::string(name) : "rejected." + std::string(name)] =
            counters_.validations[i].load();
    }
    counters["reload.ok"] = counters_.reload_ok.load();
    counters["reload.failed"] = counters_.reload_failed.load();
    counters["broker_reload_signals"] = counters_.broker_reload_signals.load();
    counters["broker_reloads"] = counters_.broker_reloads.load();
    counters["certificate_checks"] = pipeline_->checks();
    return json{{"now", to_iso8601(now)},
                {"config_file", config_file_.string()},
                {"security_profiles", std::move(profiles)},
                {"certificate_profiles", std::move(certificates)},
                {"connected_certificate_clients", connected_.size()},
                {"counters", std::move(counters)},
                {"last_reload",
                 {{"at", to_iso8601(last_reload_at)},
                  {"ok", last_reload_ok},
                  {"message", last_reload_message}}},
                {"warnings", state->warnings}};
}

}  // namespace brokertls

namespace brokertls {

bool SecurityModule::Impl::control_allowed(const Connected& caller) const {
    for (const auto& entry : state_.load()->config.control_allow)
        if (entry.identity == caller.identity &&
            (entry.security_profile.empty() || entry.security_profile == caller.profile))
            return true;
    return false;
}

SecurityModule::ControlResult SecurityModule::Impl::control(std::string_view request,
                                                            const ControlCaller& caller,
                                                            TimePoint now) {
    using nlohmann::json;
    ControlResult result;
    const Connected* who = connected(caller.client_id, caller.connection);
    std::string who_text =
        who ? "'" + printable(who->identity) + "' (security profile " + who->profile +
                  ", client '" + printable(caller.client_id) + "')"
            : "client '" + printable(caller.client_id) + "' (no validated certificate)";
    bool allowed = who && control_allowed(*who);

    json responses = json::array();
    auto answer = [&](json response, const std::string& outcome) {
        std::string command = response["command"];
        result.audit.push_back("control: " + who_text + " " +
                               (command.empty() ? "(no command)" : printable(command)) + ": " +
                               outcome);
        responses.push_back(std::move(response));
    };
    auto respond = [&] {
        json document;
        document["responses"] = std::move(responses);  // not copied: it may hold a whole getStatus
        result.response = json_text(document);
        return std::move(result);
    };
    // Any client may publish here, authorised or not: no parse of an outsized payload, and at
    // most kMaxControlCommands answers (each may be a whole getStatus).
    if (request.size() > kMaxControlRequest) {
        answer({{"command", ""},
                {"error", "request larger than " + std::to_string(kMaxControlRequest) + " bytes"}},
               "refused: request too large");
        return respond();
    }
    json doc = json::parse(request, nullptr, /*allow_exceptions=*/false);
    if (doc.is_object() && doc.contains("commands") && doc["commands"].is_array() &&
        doc["commands"].size() > kMaxControlCommands)
        doc.erase("commands");  // refused below as malformed
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("commands") ||
        !doc["commands"].is_array()) {
        answer({{"command", ""}, {"error", "payload must be {\"commands\": [...]}"}},
               "refused: malformed request");
        return respond();
    }
    for (const auto& cmd : doc["commands"]) {
        json response{{"command", ""}};
        if (!cmd.is_object()) {
            response["error"] = "each command must be an object";
            answer(std::move(response), "refused: malformed command");
            continue;
        }
        if (cmd.contains("correlationData")) response["correlationData"] = cmd["correlationData"];
        if (!cmd.contains("command") || !cmd["command"].is_string()) {
            response["error"] = "\"command\" must be a string";
            answer(std::move(response), "refused: malformed command");
            continue;
        }
        std::string name = cmd["command"];
        response["command"] = name;
        if (!allowed) {
            response["error"] = "not authorised";
            answer(std::move(response), who ? "refused: identity not in control.allow"
                                            : "refused: not authenticated by a client certificate");
            continue;
        }
        if (name == "getStatus") {
            response["data"] = status(now);
            answer(std::move(response), "ok");
        } else if (name == "reload") {
            // Always re-read now: the answer must say what the files hold at this moment.
            rebuild(now);
            Outcome o = drain(now);
            response["data"] = {{"ok", o.ok}, {"log", o.log}, {"disconnected", o.kick}};
            if (!o.ok) response["error"] = o.log.empty() ? "reload failed" : o.log.back();
            result.outcome.log.insert(result.outcome.log.end(), o.log.begin(), o.log.end());
            result.outcome.kick.insert(result.outcome.kick.end(), o.kick.begin(), o.kick.end());
            result.outcome.publish.insert(result.outcome.publish.end(), o.publish.begin(),
                                          o.publish.end());
            result.outcome.ok = result.outcome.ok && o.ok;
            answer(std::move(response), o.ok ? "ok" : "failed: reload refused");
        } else if (name == "resumeChallenge" || name == "renew") {
            if (!cmd.contains("profile") || !cmd["profile"].is_string()) {
                response["error"] = "\"profile\" must be a string";
                answer(std::move(response), "refused: malformed command");
                continue;
            }
            std::string profile = cmd["profile"];
            std::string refusal;
            if (name == "renew") {
                auto r = pipeline_->renew_now(profile, now);
                if (r.refused) refusal = *r.refused;
            } else if (!pipeline_->resume(profile)) {
                refusal =
                    "no order of certificate profile '" + profile + "' waits for the operator";
            }
            if (refusal.empty()) {
                response["data"] = {{"profile", profile}};
                answer(std::move(response), "ok (profile " + printable(profile) + ")");
            } else {
                response["error"] = refusal;
                answer(std::move(response), "refused: " + printable(refusal));
            }
        } else {
            response["error"] =
                "unknown command '" + name + "' (known: getStatus, reload, renew, resumeChallenge)";
            answer(std::move(response), "refused: unknown command");
        }
    }
    return respond();
}

SecurityModule::SecurityModule(std::filesystem::path config_file, Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(config_file), clock)) {}

SecurityModule::~SecurityModule() = default;

std::vector<std::string> SecurityModule::take_startup_log() {
    return impl_->take_startup_log();
}

void SecurityModule::start_watching(std::function<bool()> reload_broker) {
    impl_->start_watching(std::move(reload_broker));
}

bool SecurityModule::poll_files(TimePoint now, std::chrono::milliseconds wait) {
    return impl_->poll_files(now, wait);
}

bool SecurityModule::has_security_profile(const std::string& name) const {
    return impl_->has_security_profile(name);
}

void SecurityModule::use_security_profile(const std::string& name) {
    impl_->use_security_profile(name);
}

bool SecurityModule::requires_client_certificate(const std::string& profile) const {
    return impl_->requires_client_certificate(profile);
}

std::string SecurityModule::security_profile_for_port(int port) const {
    return impl_->security_profile_for_port(port);
}

bool SecurityModule::maps_listeners() const {
    return impl_->maps_listeners();
}

ValidationResult SecurityModule::authenticate(const std::string& profile, X509* leaf,
                                              std::string_view client_id, const void* connection,
                                              TimePoint now) {
    return impl_->authenticate(profile, leaf, client_id, connection, now, true);
}

ValidationResult SecurityModule::authenticate_connection(const std::string& profile, X509* leaf,
                                                         std::string_view key,
                                                         const void* connection, TimePoint now) {
    return impl_->authenticate(profile, leaf, key, connection, now, false);
}

bool SecurityModule::client_id_must_match_identity(const std::string& profile) const {
    return impl_->client_id_must_match_identity(profile);
}

void SecurityModule::disconnected(std::string_view client_id, const void* connection) {
    impl_->disconnected(client_id, connection);
}

SecurityModule::Outcome SecurityModule::reload(TimePoint now) {
    return impl_->reload(now);
}

void SecurityModule::broker_reloaded(TimePoint now) {
    impl_->broker_reloaded(now);
}

SecurityModule::Outcome SecurityModule::tick(TimePoint now) {
    return impl_->tick(now);
}

SecurityModule::Outcome SecurityModule::flush_messages() {
    return impl_->flush_messages();
}

std::string SecurityModule::status_json(TimePoint now) const {
    return json_text(impl_->status(now));
}

SecurityModule::ControlResult SecurityModule::control(std::string_view request,
                                                      const ControlCaller& caller, TimePoint now) {
    return impl_->control(request, caller, now);
}

}  // namespace brokertls
