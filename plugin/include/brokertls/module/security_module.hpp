#pragma once
// The broker-neutral heart of brokertls: owns the configuration and one immutable trust
// snapshot per security profile, validates client certificates, remembers which certificate
// each connected client used so a CRL or pin change can disconnect it, and reloads when files
// change. Broker adapters (Mosquitto) call it from their event callbacks.

#include <openssl/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "brokertls/time/clock.hpp"
#include "brokertls/trust/validation.hpp"

namespace brokertls {

class SecurityModule {
  public:
    // Loads and checks the configuration and every security profile's files, and deploys every
    // certificate profile that has none; throws Error when any of it is unusable (the broker
    // should then refuse to start). Profiles with material deployed are checked in the
    // background. `clock` schedules the certificate work (tests pass a FakeClock).
    explicit SecurityModule(std::filesystem::path config_file, Clock& clock = Clock::system());
    // What the constructor wants logged (deployments, warnings); taken once.
    std::vector<std::string> take_startup_log();
    ~SecurityModule();
    SecurityModule(const SecurityModule&) = delete;
    SecurityModule& operator=(const SecurityModule&) = delete;

    // Starts the watcher thread: it polls the watched files every poll_interval and, on a
    // change or a due renewal, builds the new snapshots and deploys new server certificates off
    // the broker thread. What must run on the broker thread (disconnecting clients, logging)
    // waits for the next tick() or reload(). `reload_broker` is called when the broker must
    // re-read its listeners' certificates, and also when no tick() came for a second (Mosquitto
    // 2.0 sends no TICK with per_listener_settings true); the Mosquitto adapter raises SIGHUP,
    // which does both and brings a RELOAD event. It also starts the acme profiles' renewals.
    // `reload_broker` returns false when it could not signal yet (the broker is still starting):
    // it is then called again at the next poll.
    void start_watching(std::function<bool()> reload_broker);
    // One watcher iteration, synchronously: waits up to `wait` for a watched file to change
    // (stable), then applies what changed and what is due; true when a change was found and
    // applied (or refused). Tests call this instead of starting the thread.
    bool poll_files(TimePoint now, std::chrono::milliseconds wait = std::chrono::milliseconds(0));

    bool has_security_profile(const std::string& name) const;
    // A listener names this profile: a reload that drops it is refused (the broker would have
    // refused to start with it, and every client of that listener would be locked out).
    void use_security_profile(const std::string& name);
    bool requires_client_certificate(const std::string& profile) const;
    // The security profile brokertls.json's "listeners" maps this listener port to; "" when
    // it maps none (the broker's other authentication decides for that listener). For a plugin
    // loaded once for every listener (Mosquitto 2.1's global_plugin).
    std::string security_profile_for_port(int port) const;
    bool maps_listeners() const;

    // Validates a client's certificate against `profile` and, when accepted, remembers it for
    // `connection` (an opaque broker handle): when a client id is taken over by a new
    // connection, the old connection's disconnect must not forget the new one's certificate.
    ValidationResult authenticate(const std::string& profile, X509* leaf,
                                  std::string_view client_id, const void* connection,
                                  TimePoint now);
    void disconnected(std::string_view client_id, const void* connection);
    // For an adapter that validates a connection before the client names its client id
    // (brokertls-gateway, at the TLS handshake): as authenticate(), with `key` (unique per
    // connection) in place of the client id, here, in Outcome::kick and for disconnected(). The
    // profile's client_id_must_match_identity is left to the caller, here and when connected
    // clients are re-validated: client_id_must_match_identity() says whether it applies.
    ValidationResult authenticate_connection(const std::string& profile, X509* leaf,
                                             std::string_view key, const void* connection,
                                             TimePoint now);
    bool client_id_must_match_identity(const std::string& profile) const;

    struct Message {
        std::string topic, payload;
        bool retain = true;
    };
    struct Outcome {
        std::vector<std::string> log;   // lines for the broker log
        std::vector<std::string> kick;  // client ids whose certificates are no longer accepted
        std::vector<Message> publish;   // renewal events for events.mqtt_topic
        bool ok = true;
    };
    // Broker thread, on a reload (SIGHUP): hands over what the watcher built. A reload brokertls
    // did not signal asks the watcher thread to re-read the configuration and rebuild every
    // snapshot (without a watcher thread: here, now); its outcome follows at the next tick()
    // or signal. On any error the previous state stays in force and the outcome says why.
    Outcome reload(TimePoint now);
    // Broker thread: the broker has re-read its listeners' certificate files (a RELOAD event),
    // so what is deployed is what it now serves. Counted in getStatus.
    void broker_reloaded(TimePoint now);
    // Broker thread, often (every TICK): hands over what the watcher found. Cheap when idle.
    Outcome tick(TimePoint now);
    // Broker thread, on any other event (a client's authentication, a control request): hands
    // over pending log lines and event messages only. Mosquitto 2.0 sends no TICK with
    // per_listener_settings, and log lines are no reason to signal the broker.
    Outcome flush_messages();

    // A JSON document for getStatus: profiles, anchors, counters, last reload.
    std::string status_json(TimePoint now) const;

    // Who sent a $CONTROL request: the broker's connection handle and the client id. Nothing
    // the client chose decides: the caller is authorised only when this very connection was
    // authenticated by a certificate we validated, and the identity we mapped from it (with
    // its security profile) is in control.allow.
    struct ControlCaller {
        std::string_view client_id;
        const void* connection = nullptr;
    };
    // Runs a $CONTROL/brokertls/v1 request ({"commands":[{"command":..,"correlationData":..}]})
    // and returns the response document, what a reload wants done on the broker thread, and
    // one audit line per command (who, which command, result). Broker thread only.
    struct ControlResult {
        std::string response;
        Outcome outcome;
        std::vector<std::string> audit;
    };
    ControlResult control(std::string_view request, const ControlCaller& caller, TimePoint now);

    static constexpr std::chrono::milliseconds poll_interval{250};
    static constexpr size_t kMaxControlRequest = 64 * 1024;
    static constexpr size_t kMaxControlCommands = 32;

  private:
    // The configuration, the trust snapshots, the certificate pipeline and the watcher thread:
    // internal to the plugin, so adapters and tools build against this header alone.
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace brokertls
