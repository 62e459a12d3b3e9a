#include "mosquitto_fixture.hpp"

#include <signal.h>

#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace brokertls::test {
namespace fs = std::filesystem;

const BrokerUnderTest& broker_under_test() {
    static const BrokerUnderTest broker = [] {
        const char* wanted = std::getenv("BROKERTLS_TEST_MOSQUITTO");
        std::string version = wanted && *wanted ? wanted : "2.0";
        if (version == "2.0")
            return BrokerUnderTest{"2.0", "mosquitto", BROKERTLS_MOSQUITTO_PLUGIN,
                                   "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                                   "mosquitto_ctrl"};
#ifdef BROKERTLS_MOSQUITTO21_PREFIX
        if (version == "2.1") {
            std::string prefix = BROKERTLS_MOSQUITTO21_PREFIX;
            return BrokerUnderTest{"2.1", prefix + "/sbin/mosquitto", BROKERTLS_MOSQUITTO21_PLUGIN,
                                   prefix + "/lib/mosquitto_dynamic_security.so",
                                   prefix + "/bin/mosquitto_ctrl"};
        }
#endif
        throw std::runtime_error("BROKERTLS_TEST_MOSQUITTO=" + version +
                                 ": no such broker in this build (2.0, or 2.1 when configured "
                                 "with BROKERTLS_MOSQUITTO21)");
    }();
    return broker;
}

std::string plugin_path() {
    return broker_under_test().plugin;
}
std::string plugin_path_2_0() {
    return BROKERTLS_MOSQUITTO_PLUGIN;
}
std::string ctl_binary() {
    return BROKERTLS_CTL_BINARY;
}

namespace {

std::string listener_block(const ListenerSpec& l, const fs::path& json,
                           PluginForm form = PluginForm::PerListener,
                           const std::string& plugin = plugin_path()) {
    std::ostringstream c;
    c << "listener " << l.port << " 127.0.0.1\n";
    if (form == PluginForm::Global) {
        if (l.security_profile.empty()) c << "listener_allow_anonymous true\n";
    } else {
        c << "plugin " << plugin << "\n"
          << "plugin_opt_config_file " << json.string() << "\n";
        if (!l.security_profile.empty()) {
            c << "plugin_opt_security_profile " << l.security_profile << "\n";
        } else {
            c << "allow_anonymous true\n";
        }
    }
    c << "certfile " << l.certfile.string() << "\n"
      << "keyfile " << l.keyfile.string() << "\n";
    if (!l.cafile.empty()) c << "cafile " << l.cafile.string() << "\n";
    if (!l.capath.empty()) c << "capath " << l.capath.string() << "\n";
    if (!l.crlfile.empty()) c << "crlfile " << l.crlfile.string() << "\n";
    c << "require_certificate " << (l.require_certificate ? "true" : "false") << "\n"
      << l.extra << "\n";
    return c.str();
}

#ifdef BROKERTLS_SANITIZER_PRELOAD
constexpr bool kSanitizerTree = true;
#else
constexpr bool kSanitizerTree = false;
#endif

// Leaks of mosquitto itself, not ours to fix. Each entry describes a whole stack, from the
// allocation to main(), through which the plugin is never called, so nothing brokertls
// allocates is ever suppressed.
constexpr const char* kValgrindSuppressions = R"(
# mosquitto 2.0.11 never frees the per-listener options (plugin_opt_*, with per_listener_settings
# true) that it parses from mosquitto.conf at start (definitely lost: 264 bytes + 109 indirect).
{
   mosquitto-2.0.11-startup-config-per-listener-options
   Memcheck:Leak
   match-leak-kinds: definite,indirect
   ...
   fun:config__read
   fun:config__parse_args
   fun:main
}
)";

std::vector<std::string> broker_command(const fs::path& dir, const fs::path& conf_file,
                                        Instrument instrument) {
    std::vector<std::string> argv{broker_under_test().binary, "-c", conf_file.string()};
    if (instrument != Instrument::Valgrind) return argv;
    if (kSanitizerTree)
        throw std::runtime_error(
            "valgrind cannot run the ASan-built plugin: run this test in the normal build "
            "(scripts/test --valgrind)");
    fs::path supp = dir / "valgrind.supp";
    std::ofstream(supp) << kValgrindSuppressions;
    std::vector<std::string> valgrind{"valgrind",
                                      "--tool=memcheck",
                                      "--leak-check=full",
                                      "--show-leak-kinds=definite,indirect",
                                      "--errors-for-leak-kinds=definite,indirect",
                                      "--error-exitcode=" + std::to_string(kValgrindErrorExit),
                                      "--num-callers=40",
                                      "--suppressions=" + supp.string()};
    valgrind.insert(valgrind.end(), argv.begin(), argv.end());
    return valgrind;
}

std::unique_ptr<Process> start(const fs::path& dir, const std::string& conf,
                               Instrument instrument = Instrument::Default) {
    fs::path conf_file = dir / "mosquitto.conf";
    std::ofstream(conf_file) << conf;
    return std::make_unique<Process>(broker_command(dir, conf_file, instrument),
                                     dir / "mosquitto.log", broker_environment());
}

// Sanitizer reports (ASan, LSan, UBSan) and valgrind errors in a broker's log; "" when none.
std::string sanitizer_findings(const std::string& log) {
    std::string found;
    for (const char* marker :
         {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
          "runtime error:", "definitely lost in loss record", "indirectly lost in loss record",
          "Invalid read", "Invalid write", "Conditional jump or move depends on uninitialised"}) {
        if (log.find(marker) != std::string::npos)
            found += std::string("the log has \"") + marker + "\"; ";
    }
    return found;
}

std::chrono::seconds startup_timeout(Instrument instrument) {
    return instrument == Instrument::Valgrind ? std::chrono::seconds(180)
                                              : std::chrono::seconds(kSanitizerTree ? 30 : 10);
}

std::string header(PluginForm form = PluginForm::PerListener, const fs::path& json = {}) {
    // log_dest stderr: unbuffered, so tests see lines as they are written.
    std::string common = "user root\nlog_dest stderr\nlog_type all\nlog_timestamp false\n";
    if (form == PluginForm::PerListener) return "per_listener_settings true\n" + common;
    return common + "global_plugin " + plugin_path() + "\nplugin_opt_config_file " + json.string() +
           "\n";
}

}  // namespace

// The environment mosquitto starts with: nothing extra, except in the sanitizer tree (see
// BROKERTLS_SANITIZE in the top-level CMakeLists.txt, which defines these).
std::map<std::string, std::string> broker_environment() {
#ifdef BROKERTLS_SANITIZER_PRELOAD
    return {
        // Debian's mosquitto is not instrumented: the runtimes must be in the process before
        // the instrumented plugin is dlopen()ed, or ASan refuses to start.
        {"LD_PRELOAD", BROKERTLS_SANITIZER_PRELOAD},
        // The first report ends the broker (exit code 1) and stays at the end of its log; leaks
        // are checked when the broker exits after SIGTERM. fast_unwind_on_malloc=0: allocation
        // stacks go on through mosquitto's code (built without frame pointers), so the
        // suppressions can tell mosquitto's own leaks from ours.
        {"ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0:fast_unwind_on_malloc=0"},
        // Leaks that are mosquitto's own are not ours to fix (see the file).
        {"LSAN_OPTIONS",
         std::string("suppressions=") + BROKERTLS_LSAN_SUPPRESSIONS + ":print_suppressions=0"},
        {"UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"},
    };
#else
    return {};
#endif
}

Mosquitto::Mosquitto(const fs::path& dir, const fs::path& brokertls_json,
                     std::vector<ListenerSpec> listeners, const std::string& global_extra,
                     Instrument instrument, PluginForm form)
    : listeners_(std::move(listeners)), instrument_(instrument) {
    std::string conf = header(form, brokertls_json) + global_extra + "\n";
    for (auto& l : listeners_) {
        if (l.port == 0) l.port = free_port();
        conf += listener_block(l, brokertls_json, form);
    }
    process_ = start(dir, conf, instrument_);
    auto timeout = startup_timeout(instrument_);
    // The version line also proves which broker runs ("mosquitto version 2.1.2 starting").
    if (!process_->wait_for_log("mosquitto version " + broker_under_test().version + ".",
                                timeout) ||
        // "mosquitto version 2.1.2 running" ends its line; 2.1 logs "Info: running mosquitto as
        // user: root" earlier.
        !process_->wait_for_log(" running\n", timeout) ||
        !wait_for_port(listeners_.front().port, timeout)) {
        stop();
        throw std::runtime_error("mosquitto did not start:\n" + process_->log());
    }
}

Mosquitto::~Mosquitto() {
    stop();
}

int Mosquitto::stop() {
    if (stopped_) return exit_code_;
    stopped_ = true;
    // Sanitizers check for leaks at exit, valgrind much more slowly: the wait is generous, and
    // bounded.
    exit_code_ = process_->stop(instrument_ == Instrument::Valgrind ? std::chrono::seconds(300)
                                                                    : std::chrono::seconds(30));
    std::string findings = sanitizer_findings(process_->log());
    if (exit_code_ != 0)
        findings += "mosquitto exited with code " + std::to_string(exit_code_) +
                    (exit_code_ == -1 ? " (killed: it did not stop after SIGTERM)" : "") + "; ";
    if (!findings.empty()) ADD_FAILURE() << "mosquitto: " << findings << "\n" << process_->log();
    return exit_code_;
}

bool Mosquitto::wait_for_log_after(size_t mark, const std::string& text,
                                   std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        std::string l = log();
        if (l.size() > mark && l.find(text, mark) != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

void Mosquitto::sighup() {
    // Never kill(-1, ...): pid -1 (already reaped) would signal every process.
    if (process_->pid() > 0) ::kill(process_->pid(), SIGHUP);
}

std::string mosquitto_start_failure(const fs::path& dir, const fs::path& brokertls_json,
                                    const std::string& security_profile,
                                    const std::string& plugin) {
    ListenerSpec l;
    l.port = free_port();
    l.security_profile = security_profile;
    l.certfile = dir / "none.crt";
    l.keyfile = dir / "none.key";
    auto p =
        start(dir, header() + listener_block(l, brokertls_json, PluginForm::PerListener, plugin));
    // mosquitto exits on a plugin init error; bounded wait for that.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (p->running() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (p->running()) return "STILL RUNNING\n" + p->log();
    std::string findings = sanitizer_findings(p->log());
    if (!findings.empty()) ADD_FAILURE() << "mosquitto: " << findings << "\n" << p->log();
    return p->log();
}

MqttClient::MqttClient(int port, const std::string& client_id, const fs::path& ca,
                       const ClientCert& cert, bool clean_session)
    : client_(std::make_unique<mqtt::async_client>("ssl://127.0.0.1:" + std::to_string(port),
                                                   client_id)),
      ca_(ca),
      cert_(cert),
      clean_session_(clean_session) {}

MqttClient::~MqttClient() {
    try {
        if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (...) {
    }
}

std::string MqttClient::connect(std::chrono::milliseconds timeout) {
    auto ssl = mqtt::ssl_options_builder().trust_store(ca_.string()).enable_server_cert_auth(true);
    // No ssl error_handler: Paho C++ 1.2.0 (Debian 12) hands the TLS error callback a pointer to
    // a copy of the options that connect() has already destroyed (paho.mqtt.cpp#325, #439); a
    // handshake message then crashed this program under AddressSanitizer.
    if (!cert_.cert.empty()) ssl.key_store(cert_.cert.string()).private_key(cert_.key.string());
    auto opts = mqtt::connect_options_builder()
                    .ssl(ssl.finalize())
                    .clean_session(clean_session_)
                    .connect_timeout(std::chrono::duration_cast<std::chrono::seconds>(timeout))
                    .automatic_reconnect(false)
                    .finalize();
    if (!username_.empty()) {
        opts.set_user_name(username_);
        opts.set_password(password_);
    }
    client_->start_consuming();
    try {
        auto tok = client_->connect(opts);
        if (!tok->wait_for(timeout + std::chrono::seconds(1))) return "connect timed out";
        return "";
    } catch (const mqtt::exception& e) {
        return std::string(e.what()) + " (rc " + std::to_string(e.get_return_code()) + ")";
    }
}

bool MqttClient::connected() const {
    return client_->is_connected();
}

void MqttClient::subscribe(const std::string& topic) {
    client_->subscribe(topic, 1)->wait_for(std::chrono::seconds(10));
}

void MqttClient::publish(const std::string& topic, const std::string& payload) {
    client_->publish(topic, payload.data(), payload.size(), 1, false)
        ->wait_for(std::chrono::seconds(10));
}

std::optional<std::string> MqttClient::next_message(std::chrono::milliseconds timeout) {
    mqtt::const_message_ptr msg;
    if (!client_->try_consume_message_for(&msg, timeout) || !msg) return std::nullopt;
    return msg->get_topic() + " " + msg->to_string();
}

bool MqttClient::wait_disconnected(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!client_->is_connected()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return !client_->is_connected();
}

}  // namespace brokertls::test
