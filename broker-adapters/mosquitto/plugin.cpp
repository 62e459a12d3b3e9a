// brokertls_mosquitto.so: the Mosquitto plugin (API v5) glue. Thin by design: broker events
// in, SecurityModule calls out. Everything runs on the broker thread, the only thread allowed to
// call mosquitto_* functions. Built twice from this file, each against the headers of the broker
// it is for: brokertls_mosquitto.so (2.0, Debian 12) and brokertls_mosquitto21.so (2.1), which
// uses 2.1's functions (mosquitto_client_port, mosquitto_plugin_set_info) that 2.0 lacks.
//
// mosquitto.conf, per listener (2.0 and 2.1, with per_listener_settings true):
//   plugin /usr/lib/brokertls_mosquitto.so
//   plugin_opt_config_file /etc/mosquitto/brokertls.json
//   plugin_opt_security_profile devices
// or once (2.1), with brokertls.json's "listeners" mapping ports to security profiles:
//   global_plugin /usr/lib/brokertls_mosquitto21.so
//   plugin_opt_config_file /etc/mosquitto/brokertls.json

extern "C" {
#include <mosquitto.h>
#if LIBMOSQUITTO_VERSION_NUMBER < 2001000
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#endif
}

#include <dlfcn.h>
#include <openssl/x509.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "brokertls/crypto/handles.hpp"
#include "brokertls/identity.hpp"
#include "brokertls/module/security_module.hpp"

#define BROKERTLS_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

#if LIBMOSQUITTO_VERSION_NUMBER >= 2001000
constexpr bool kMosquitto21 = true;
// A listener brokertls does not decide for: as if the plugin were not loaded there.
constexpr int kNotOurs = MOSQ_ERR_PLUGIN_IGNORE;
// What the watcher thread leaves for the broker thread (disconnecting clients, logging) is
// done within this, on TICK, with no signal (see on_tick).
constexpr long kTickMs = 100;
#else
constexpr bool kMosquitto21 = false;
constexpr int kNotOurs = MOSQ_ERR_PLUGIN_DEFER;
#endif

using brokertls::printable;
using brokertls::SecurityModule;
using brokertls::SystemClock;

// One SecurityModule per configuration file, shared by the plugin instances of every listener
// (Mosquitto loads the plugin once per listener with per_listener_settings true).
std::map<std::string, std::weak_ptr<SecurityModule>>& modules() {
    static std::map<std::string, std::weak_ptr<SecurityModule>> registry;
    return registry;
}

struct Registration {
    int event;
    MOSQ_FUNC_generic_callback callback;
};

struct Instance {
    mosquitto_plugin_id_t* id = nullptr;
    std::shared_ptr<SecurityModule> module;
    // plugin_opt_security_profile. Empty: brokertls.json's "listeners" decides by port (2.1),
    // or this listener only uses certificate profiles.
    std::string security_profile;
    std::vector<Registration> registered;
    bool control_registered = false;
};

// Every line goes through printable(): names from certificates and client ids are the
// clients' bytes, and must not forge log lines or terminal escapes.
void log_lines(int level, const std::vector<std::string>& lines) {
    for (const auto& line : lines)
        mosquitto_log_printf(level, "brokertls: %s", printable(line).c_str());
}

void apply(const SecurityModule::Outcome& outcome) {
    log_lines(outcome.ok ? MOSQ_LOG_NOTICE : MOSQ_LOG_ERR, outcome.log);
    for (const auto& client_id : outcome.kick)
        mosquitto_kick_client_by_clientid(client_id.c_str(), false);
    for (const auto& m : outcome.publish)
        mosquitto_broker_publish_copy(nullptr, m.topic.c_str(), static_cast<int>(m.payload.size()),
                                      m.payload.data(), 0, m.retain, nullptr);
}

// The security profile for this client's listener: the plugin's own, else (2.1) the one
// brokertls.json's "listeners" maps the client's port to; "" when brokertls does not decide.
std::string security_profile_of(const Instance& inst, const mosquitto* client) {
    if (!inst.security_profile.empty()) return inst.security_profile;
#if LIBMOSQUITTO_VERSION_NUMBER >= 2001000
    return inst.module->security_profile_for_port(mosquitto_client_port(client));
#else
    (void)client;
    return {};
#endif
}

// Validates the client's certificate and sets the mapped identity as its username.
int authenticate(Instance* inst, mosquitto_evt_basic_auth* ev) {
    const char* id = mosquitto_client_id(ev->client);
    std::string client_id = id ? id : "";
    try {
        std::string profile = security_profile_of(*inst, ev->client);
        if (profile.empty()) return kNotOurs;
        // The broker hands over a reference the caller owns.
        brokertls::X509Ptr cert(static_cast<X509*>(mosquitto_client_certificate(ev->client)));
        // Not IGNORE: with every plugin ignoring, 2.1 lets a client in under the username it
        // sent itself. Deferring, only a client without a username gets in as anonymous.
        if (!cert && !inst->module->requires_client_certificate(profile))
            return MOSQ_ERR_PLUGIN_DEFER;
        auto r = inst->module->authenticate(profile, cert.get(), client_id, ev->client,
                                            SystemClock::now());
        if (r.ok()) {
            // Mosquitto 2.0.16+ refuses usernames that are not valid MQTT UTF-8: the client
            // must then not go on under the username it sent itself.
            if (int rc = mosquitto_set_username(ev->client, r.identity.c_str());
                rc != MOSQ_ERR_SUCCESS) {
                inst->module->disconnected(client_id, ev->client);
                mosquitto_log_printf(
                    MOSQ_LOG_WARNING,
                    "brokertls: rejected client '%s' (sha256 %s): the broker refused the "
                    "identity '%s' as a username (error %d)",
                    printable(client_id).c_str(), r.fingerprint.c_str(),
                    printable(r.identity).c_str(), rc);
                return MOSQ_ERR_AUTH;
            }
            mosquitto_log_printf(
                MOSQ_LOG_INFO, "brokertls: accepted client '%s' as '%s' (sha256 %s)",
                printable(client_id).c_str(), printable(r.identity).c_str(), r.fingerprint.c_str());
            return MOSQ_ERR_SUCCESS;
        }
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "brokertls: rejected client '%s' (subject '%s', sha256 %s): %s: %s",
                             printable(client_id).c_str(), printable(r.subject).c_str(),
                             r.fingerprint.empty() ? "-" : r.fingerprint.c_str(),
                             std::string(brokertls::reject_reason_name(r.reason)).c_str(),
                             printable(r.detail).c_str());
        return MOSQ_ERR_AUTH;
    } catch (const std::exception& e) {
        // Fail closed, never crash the broker.
        mosquitto_log_printf(MOSQ_LOG_ERR, "brokertls: rejected client '%s': internal error: %s",
                             printable(client_id).c_str(), printable(e.what()).c_str());
        return MOSQ_ERR_AUTH;
    }
}

int on_basic_auth(int, void* event_data, void* userdata) {
    auto* inst = static_cast<Instance*>(userdata);
    int rc = authenticate(inst, static_cast<mosquitto_evt_basic_auth*>(event_data));
    try {
        apply(inst->module->flush_messages());
    } catch (const std::exception&) {
        // Log lines only; the decision above stands.
    }
    return rc;
}

void forget(Instance* inst, const mosquitto* client) {
    if (const char* id = mosquitto_client_id(client)) inst->module->disconnected(id, client);
}

int on_disconnect(int, void* event_data, void* userdata) {
    forget(static_cast<Instance*>(userdata),
           static_cast<mosquitto_evt_disconnect*>(event_data)->client);
    return MOSQ_ERR_SUCCESS;
}

#if LIBMOSQUITTO_VERSION_NUMBER >= 2001000
// 2.1 sends this instead of DISCONNECT when the client's session outlives its connection.
int on_client_offline(int, void* event_data, void* userdata) {
    forget(static_cast<Instance*>(userdata),
           static_cast<mosquitto_evt_client_offline*>(event_data)->client);
    return MOSQ_ERR_SUCCESS;
}
#endif

int on_tick(int, void* event_data, void* userdata) {
#if LIBMOSQUITTO_VERSION_NUMBER >= 2001000
    // 2.1 (src/plugin_tick.c) arms its poll timeout with next_s * 1000 + next_ms, but only on a
    // loop iteration where this callback was due, i.e. past now + (next_s, next_ms), with the
    // nanoseconds carried once. A plain next_ms of 100 is lost whenever a client's packet wakes
    // the loop first: the broker then sleeps until the next packet (seen: the module's SIGHUP
    // fallback fired after 1 s). (-2 s, 2100 ms) arms 100 ms while leaving the callback
    // due at every iteration. Should a later 2.1 treat negative values as 0, ticks come with
    // traffic only and the module's fallback (a SIGHUP after 1 s without TICK) still applies.
    auto* tick = static_cast<mosquitto_evt_tick*>(event_data);
    tick->next_s = -2;
    tick->next_ms = 2000 + kTickMs;
#else
    (void)event_data;
#endif
    try {
        apply(static_cast<Instance*>(userdata)->module->tick(SystemClock::now()));
    } catch (const std::exception& e) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "brokertls: %s", printable(e.what()).c_str());
    }
    return MOSQ_ERR_SUCCESS;
}

int on_reload(int, void*, void* userdata) {
    try {
        auto& module = *static_cast<Instance*>(userdata)->module;
        module.broker_reloaded(SystemClock::now());
        apply(module.reload(SystemClock::now()));
    } catch (const std::exception& e) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "brokertls: %s", printable(e.what()).c_str());
    }
    // 2.0 stops calling RELOAD callbacks at the first that does not defer: deferring lets the
    // plugins after us (dynamic-security) reload too. 2.1 calls them all, and stops the broker
    // when one returns anything but success.
    return kMosquitto21 ? MOSQ_ERR_SUCCESS : MOSQ_ERR_PLUGIN_DEFER;
}

constexpr const char* kControlTopic = "$CONTROL/brokertls/v1";
constexpr const char* kControlResponseTopic = "$CONTROL/brokertls/v1/response";

int on_control(int, void* event_data, void* userdata) {
    auto* inst = static_cast<Instance*>(userdata);
    auto* ev = static_cast<mosquitto_evt_control*>(event_data);
    // Authorised on the identity brokertls mapped from this connection's validated client
    // certificate, never on the username or client id the client sent (SecurityModule::control).
    // Not an ACL_CHECK callback: in Mosquitto 2.0 an ACL check where every plugin defers is a
    // denial, so deferring on all other topics would deny every publish on listeners without
    // acl_file or dynsec.
    const char* id = mosquitto_client_id(ev->client);
    try {
        auto result = inst->module->control(
            std::string_view(static_cast<const char*>(ev->payload), ev->payloadlen),
            {id ? id : "", ev->client}, SystemClock::now());
        for (const auto& line : result.audit)
            mosquitto_log_printf(MOSQ_LOG_NOTICE, "brokertls: %s", line.c_str());
        apply(result.outcome);
        apply(inst->module->flush_messages());
        mosquitto_broker_publish_copy(id, kControlResponseTopic,
                                      static_cast<int>(result.response.size()),
                                      result.response.data(), 0, false, nullptr);
    } catch (const std::exception& e) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "brokertls: control request failed: %s",
                             printable(e.what()).c_str());
    }
    return MOSQ_ERR_SUCCESS;  // answered; an error code would make Mosquitto drop the client
}

void unregister_all(Instance& inst) {
    for (const auto& reg : inst.registered)
        mosquitto_callback_unregister(inst.id, reg.event, reg.callback, nullptr);
    inst.registered.clear();
    if (!inst.control_registered) return;
    inst.control_registered = false;
    if (int rc =
            mosquitto_callback_unregister(inst.id, MOSQ_EVT_CONTROL, on_control, kControlTopic);
        rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NOT_FOUND)
        mosquitto_log_printf(MOSQ_LOG_WARNING, "brokertls: cannot unregister %s (error %d)",
                             kControlTopic, rc);
}

// Which events this instance handles. Client checks: on 2.0 only where a listener names a
// security profile (elsewhere they would only defer); on 2.1 everywhere, since the port
// decides and IGNORE costs nothing. A client's end comes as DISCONNECT, or on 2.1 as
// CLIENT_OFFLINE when its session outlives the connection: either ends what brokertls
// remembers of it. TICK and RELOAD once per module, by the instance that created it (Mosquitto
// delivers RELOAD to every listener's plugins); so is $CONTROL on 2.1, where one plugin owns a
// topic for the whole broker (on 2.0 each listener's plugins have their own).
std::vector<Registration> events_for(const Instance& inst, bool owns_module) {
    std::vector<Registration> events;
    if (!inst.security_profile.empty() || kMosquitto21) {
        events.push_back({MOSQ_EVT_BASIC_AUTH, on_basic_auth});
        events.push_back({MOSQ_EVT_DISCONNECT, on_disconnect});
#if LIBMOSQUITTO_VERSION_NUMBER >= 2001000
        events.push_back({MOSQ_EVT_CLIENT_OFFLINE, on_client_offline});
#endif
    }
    if (owns_module) {
        events.push_back({MOSQ_EVT_TICK, on_tick});
        events.push_back({MOSQ_EVT_RELOAD, on_reload});
    }
    return events;
}

}  // namespace

BROKERTLS_EXPORT int mosquitto_plugin_version(int supported_version_count,
                                              const int* supported_versions) {
    for (int i = 0; i < supported_version_count; ++i)
        if (supported_versions[i] == 5) return 5;
    return -1;
}

BROKERTLS_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier, void** userdata,
                                           struct mosquitto_opt* options, int option_count) {
    auto inst = std::make_unique<Instance>();
    inst->id = identifier;
#if LIBMOSQUITTO_VERSION_NUMBER >= 2001000
    mosquitto_plugin_set_info(identifier, "brokertls", BROKERTLS_VERSION);
#else
    // 2.0's build in a 2.1 broker would stop it at the first certificate reload (2.1 takes the
    // deferred RELOAD that 2.0 needs for an error), and could not map ports.
    if (::dlsym(RTLD_DEFAULT, "mosquitto_client_port")) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "brokertls: this brokertls_mosquitto.so is built for Mosquitto 2.0, "
                             "and this broker is 2.1 or later: load brokertls_mosquitto21.so");
        return MOSQ_ERR_INVAL;
    }
#endif
    std::string config_file;
    for (int i = 0; i < option_count; ++i) {
        std::string key = options[i].key ? options[i].key : "";
        std::string value = options[i].value ? options[i].value : "";
        if (key == "config_file") {
            config_file = value;
        } else if (key == "security_profile") {
            inst->security_profile = value;
        } else {
            mosquitto_log_printf(
                MOSQ_LOG_ERR,
                "brokertls: unknown option plugin_opt_%s (known: config_file, security_profile)",
                key.c_str());
            return MOSQ_ERR_INVAL;
        }
    }
    if (config_file.empty()) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "brokertls: plugin_opt_config_file is required");
        return MOSQ_ERR_INVAL;
    }
    bool owns_module = false;
    try {
        auto& shared = modules()[config_file];
        inst->module = shared.lock();
        if (!inst->module) {
            owns_module = true;
            inst->module = std::make_shared<SecurityModule>(config_file);
            log_lines(MOSQ_LOG_NOTICE, inst->module->take_startup_log());
            // SIGHUP makes Mosquitto re-read its listeners' certificate files and brings a
            // RELOAD event to the broker thread. 2.0 sends no TICK with per_listener_settings,
            // so it is also how other work reaches that thread there; on 2.1 TICK does.
            inst->module->start_watching([] {
                // Mosquitto installs its SIGHUP handler after loading plugins: until then the
                // default action would end the broker. Wait for the handler (checked each poll).
                struct sigaction current = {};
                if (::sigaction(SIGHUP, nullptr, &current) != 0 || current.sa_handler == SIG_DFL ||
                    current.sa_handler == SIG_IGN)
                    return false;
                ::kill(::getpid(), SIGHUP);
                return true;
            });
            shared = inst->module;
        }
        if (!inst->security_profile.empty()) {
            if (!inst->module->has_security_profile(inst->security_profile)) {
                mosquitto_log_printf(MOSQ_LOG_ERR,
                                     "brokertls: %s: security profile '%s' is not defined",
                                     config_file.c_str(), inst->security_profile.c_str());
                return MOSQ_ERR_INVAL;
            }
            inst->module->use_security_profile(inst->security_profile);
        } else if (!kMosquitto21 && owns_module && inst->module->maps_listeners()) {
            // The same brokertls.json serves both versions; said once, as 2.0 cannot tell a
            // plugin its listener's port.
            mosquitto_log_printf(
                MOSQ_LOG_NOTICE,
                "brokertls: %s: \"listeners\" applies to Mosquitto 2.1 (global_plugin); with "
                "2.0 a listener's clients are authenticated only where it names "
                "plugin_opt_security_profile",
                config_file.c_str());
        }
    } catch (const std::exception& e) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "brokertls: cannot start: %s",
                             printable(e.what()).c_str());
        return MOSQ_ERR_INVAL;
    }
    for (const auto& reg : events_for(*inst, owns_module)) {
        if (mosquitto_callback_register(identifier, reg.event, reg.callback, nullptr, inst.get()) !=
            MOSQ_ERR_SUCCESS) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "brokertls: cannot register callback for event %d",
                                 reg.event);
            unregister_all(*inst);
            return MOSQ_ERR_UNKNOWN;
        }
        inst->registered.push_back(reg);
    }
    if (owns_module || !kMosquitto21) {
        if (mosquitto_callback_register(identifier, MOSQ_EVT_CONTROL, on_control, kControlTopic,
                                        inst.get()) != MOSQ_ERR_SUCCESS) {
            mosquitto_log_printf(MOSQ_LOG_ERR,
                                 kMosquitto21 ? "brokertls: cannot register %s: Mosquitto 2.1 "
                                                "lets one plugin own it (one brokertls.json per "
                                                "broker)"
                                              : "brokertls: cannot register %s",
                                 kControlTopic);
            unregister_all(*inst);
            return MOSQ_ERR_UNKNOWN;
        }
        inst->control_registered = true;
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "brokertls: loaded %s%s%s", config_file.c_str(),
                         inst->security_profile.empty() ? "" : ", security profile ",
                         inst->security_profile.c_str());
    *userdata = inst.release();
    return MOSQ_ERR_SUCCESS;
}

BROKERTLS_EXPORT int mosquitto_plugin_cleanup(void* userdata, struct mosquitto_opt*, int) {
    std::unique_ptr<Instance> inst(static_cast<Instance*>(userdata));
    if (inst) unregister_all(*inst);
    return MOSQ_ERR_SUCCESS;
}
