#pragma once
// A real mosquitto on 127.0.0.1 with the brokertls plugin, and Paho C++ clients for it.

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support.hpp"

namespace mqtt {
class async_client;
}

namespace brokertls::test {

// The environment mosquitto starts with: empty, except in the sanitizer tree, where it preloads
// the sanitizer runtimes the instrumented plugin needs.
std::map<std::string, std::string> broker_environment();

// The broker the tests run: Debian's mosquitto 2.0 by default; the vendored Mosquitto 2.1
// (scripts/build-mosquitto) when BROKERTLS_TEST_MOSQUITTO=2.1, which CTest sets for the
// integration.mosquitto-2.1.* copies of the broker tests. Each comes with the brokertls plugin
// built for it and its own bundled plugins and tools.
struct BrokerUnderTest {
    std::string version;  // "2.0" or "2.1"
    std::string binary, plugin, dynsec_plugin, ctrl;
};
const BrokerUnderTest& broker_under_test();
inline bool mosquitto21() {
    return broker_under_test().version == "2.1";
}

// The brokertls plugin built for the broker under test, and brokertls-ctl.
std::string plugin_path();
std::string ctl_binary();

struct ListenerSpec {
    // plugin_opt_security_profile; "" loads the plugin without one (a TLS-only listener where
    // brokertls manages certificates only) and allows anonymous clients.
    std::string security_profile;
    std::filesystem::path certfile, keyfile;
    std::filesystem::path cafile;  // or capath
    std::filesystem::path capath;
    std::filesystem::path crlfile;  // optional
    bool require_certificate = true;
    std::string extra;  // more lines for this listener
    int port = 0;  // a free port is chosen when 0 (brokertls.json's "listeners" needs it first)
};

// How brokertls is loaded: `plugin` on every listener (per_listener_settings true; 2.0 and 2.1),
// or once with 2.1's `global_plugin`, brokertls.json's "listeners" mapping ports to profiles
// (a listener without a security_profile then allows anonymous clients).
enum class PluginForm { PerListener, Global };

// How the broker process runs. In the sanitizer tree (the plugin built with ASan+UBSan) Debian's
// uninstrumented mosquitto always starts with the sanitizer runtimes preloaded, so the plugin
// loads and its reports reach the log. Valgrind: under memcheck, for the normal build only.
enum class Instrument { Default, Valgrind };

// The exit code valgrind returns when it found errors or definite/indirect leaks.
inline constexpr int kValgrindErrorExit = 97;

class Mosquitto {
  public:
    // Writes DIR/mosquitto.conf (per_listener_settings true, user root, plugin first on every
    // listener that names a security profile) and starts mosquitto; waits until it runs.
    Mosquitto(const std::filesystem::path& dir, const std::filesystem::path& brokertls_json,
              std::vector<ListenerSpec> listeners, const std::string& global_extra = "",
              Instrument instrument = Instrument::Default,
              PluginForm form = PluginForm::PerListener);
    // Stops the broker; a sanitizer or valgrind finding in its log fails the current test.
    ~Mosquitto();

    // SIGTERM, then waits for the exit (bounded: 30 s, 300 s under valgrind; SIGKILL after).
    // Returns the exit code (-1: killed). A sanitizer report or valgrind error in the log, or an
    // exit code other than 0, adds a test failure (once).
    int stop();

    bool running() { return process_->running(); }
    std::string log() const { return process_->log(); }
    bool wait_for_log(const std::string& text,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return process_->wait_for_log(text, timeout);
    }
    // Log lines appended after this call are what wait_for_new_log sees.
    size_t log_mark() const { return log().size(); }
    bool wait_for_log_after(size_t mark, const std::string& text,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));
    int port(size_t listener = 0) const { return listeners_.at(listener).port; }
    void sighup();

  private:
    std::vector<ListenerSpec> listeners_;
    Instrument instrument_;
    std::unique_ptr<Process> process_;
    bool stopped_ = false;
    int exit_code_ = -1;
};

// Starts mosquitto expecting it to fail; returns its log. `plugin`: another build than
// plugin_path().
std::string mosquitto_start_failure(const std::filesystem::path& dir,
                                    const std::filesystem::path& brokertls_json,
                                    const std::string& security_profile,
                                    const std::string& plugin = plugin_path());
// The plugin built for Debian's mosquitto 2.0, whichever broker is under test.
std::string plugin_path_2_0();

struct ClientCert {
    std::filesystem::path cert, key;  // empty: no client certificate
};

// A Paho C++ client over TLS. Messages arrive in a queue (consumer API).
class MqttClient {
  public:
    // clean_session false: a persistent session, which outlives the connection.
    MqttClient(int port, const std::string& client_id, const std::filesystem::path& ca,
               const ClientCert& cert, bool clean_session = true);
    ~MqttClient();

    // Connects; returns "" on success, else Paho's error text (TLS errors included).
    std::string connect(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Sends this username and password with the next connect().
    void credentials(const std::string& username, const std::string& password) {
        username_ = username;
        password_ = password;
    }
    bool connected() const;
    void subscribe(const std::string& topic);
    void publish(const std::string& topic, const std::string& payload);
    // The next message's "topic payload", or nullopt after `timeout` or when the connection
    // was lost.
    std::optional<std::string> next_message(std::chrono::milliseconds timeout);
    // True once the broker closed the connection (within `timeout`).
    bool wait_disconnected(std::chrono::milliseconds timeout);

  private:
    std::unique_ptr<mqtt::async_client> client_;
    std::filesystem::path ca_;
    ClientCert cert_;
    bool clean_session_;
    std::string username_, password_;
};

}  // namespace brokertls::test
