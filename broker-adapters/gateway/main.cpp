// brokertls-gateway: terminates TLS in front of an MQTT broker that cannot load the brokertls
// Mosquitto plugin, with the same brokertls.json: certificate profiles, security profiles,
// identity mapping, renewal. The broker learns the identity from a rewritten CONNECT or a PROXY
// v2 header, never from what the client chose.

#include <signal.h>

#include <ctime>
#include <iostream>
#include <mutex>

#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "brokertls/module/security_module.hpp"
#include "config/config.hpp"
#include "gateway.hpp"

namespace {

constexpr const char* kUsage = R"(Usage: brokertls-gateway [--config FILE] [--check]

Serves the listeners of the "gateway" section of FILE (default /etc/brokertls/brokertls.json)
until SIGINT or SIGTERM, then stops accepting and drains open connections (up to
gateway.drain_timeout). SIGHUP re-reads the certificates and the configuration's profiles.

Options:
  --config FILE   brokertls.json with a "gateway" section (see the README, "brokertls-gateway")
  --check         check the configuration and the certificates and exit
  --version       print the version and exit
Exit codes: 0 ok, 1 usage error, 2 configuration or start-up error.
)";

std::mutex log_mutex;

void log_line(const std::string& line) {
    std::time_t t = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    std::lock_guard lock(log_mutex);
    std::cerr << stamp << " brokertls-gateway: " << line << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace brokertls;
    std::string config_file = "/etc/brokertls/brokertls.json";
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << kUsage;
            return 0;
        }
        if (a == "--version") {
            std::cout << "brokertls-gateway " << BROKERTLS_VERSION << "\n";
            return 0;
        }
        if (a == "--check") {
            check = true;
        } else if (a == "--config" && i + 1 < argc) {
            config_file = argv[++i];
        } else {
            std::cerr << "brokertls-gateway: unknown argument " << a << "\n\n" << kUsage;
            return 1;
        }
    }
    // Signals are taken by sigwait on the main thread: the workers never see them.
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);
    try {
        Config config = load_config(config_file);
        if (!config.gateway)
            fail(ErrorKind::Input, config_file, "no \"gateway\" section (the gateway's listeners)");
        SecurityModule module(config_file);
        for (const auto& line : module.take_startup_log()) log_line(printable(line));
        for (const auto& listener : config.gateway->listeners)
            if (!listener.security_profile.empty())
                module.use_security_profile(listener.security_profile);
        Gateway gateway(config, module, log_line);
        if (check) {
            std::cout << config_file << ": ok\n";
            return 0;
        }
        gateway.start();
        for (std::size_t i = 0; i < config.gateway->listeners.size(); ++i) {
            const auto& l = config.gateway->listeners[i];
            log_line("listener " + l.name + " on port " + std::to_string(gateway.port(i)) + " to " +
                     l.upstream);
        }
        if (gateway.status_port() >= 0)
            log_line("status on port " + std::to_string(gateway.status_port()));
        log_line("ready");
        while (true) {
            int received = 0;
            sigwait(&signals, &received);
            if (received != SIGHUP) break;
            log_line("SIGHUP: re-reading certificates and configuration");
            gateway.reload();
        }
        log_line("stopping");
        gateway.stop();
        log_line("stopped");
    } catch (const Error& e) {
        log_line(printable(e.what()));
        return 2;
    } catch (const std::exception& e) {
        log_line(printable(e.what()));
        return 2;
    }
    return 0;
}
