// brokertls-gateway: terminates TLS in front of an MQTT broker that cannot load the brokertls
// Mosquitto plugin, with the same brokertls.json: certificate profiles, security profiles,
// identity mapping, renewal. The broker learns the identity from a rewritten CONNECT or a PROXY
// v2 header, never from what the client chose.

#include <iostream>

#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "brokertls/module/security_module.hpp"
#include "config/config.hpp"
#include "gateway.hpp"
#include "process/daemon.hpp"

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

void log_line(const std::string& line) {
    brokertls::daemon_log("brokertls-gateway", line);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace brokertls;
    // Signals are taken by sigwait on the main thread: the workers never see them.
    sigset_t signals = block_daemon_signals();
    DaemonCommandLine command{"/etc/brokertls/brokertls.json"};
    if (auto exit_code = parse_daemon_command_line(argc, argv, "brokertls-gateway",
                                                   BROKERTLS_VERSION, kUsage, command))
        return *exit_code;
    const std::string& config_file = command.config_file;
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
        if (command.check) {
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
            if (wait_for_signal(signals) != SIGHUP) break;
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
