// brokertls-service: the central issuing service for private fleets. It alone holds the ACME
// account and the CA keys; brokers and devices send it CSRs (ACMEMS's POST /sign, or the JSON
// API /v1) and get certificates back.

#include <iostream>

#include "brokertls/error.hpp"
#include "brokertls/time/clock.hpp"
#include "process/daemon.hpp"
#include "service/http_server.hpp"
#include "service/issuing_service.hpp"
#include "service/service_config.hpp"

namespace {

constexpr const char* kUsage = R"(Usage: brokertls-service [--config FILE] [--check]

Serves the listeners of FILE (default /etc/brokertls/service.json) until SIGINT or SIGTERM.
SIGHUP re-reads the listeners' TLS certificates and keys.

Options:
  --config FILE   the service configuration (see the README, "brokertls-service")
  --check         check the configuration (and open every issuer) and exit
  --version       print the version and exit
Exit codes: 0 ok, 1 usage error, 2 configuration or start-up error.
)";

void log_line(const std::string& line) {
    brokertls::daemon_log("brokertls-service", line);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace brokertls;
    // Signals are taken by sigwait on the main thread: the server's threads never see them.
    sigset_t signals = block_daemon_signals();
    DaemonCommandLine command{"/etc/brokertls/service.json"};
    if (auto exit_code = parse_daemon_command_line(argc, argv, "brokertls-service",
                                                   BROKERTLS_VERSION, kUsage, command))
        return *exit_code;
    try {
        ServiceConfig config = load_service_config(command.config_file);
        IssuingService service(config, Clock::system(), log_line);
        if (command.check) {
            std::cout << command.config_file << ": ok\n";
            return 0;
        }
        std::vector<HttpListenerConfig> listeners;
        for (const auto& l : config.listeners)
            listeners.push_back({l.listen, l.tls, config.limits, service.handler(l), l.name});
        HttpServer server(std::move(listeners), config.threads, log_line);
        for (std::size_t i = 0; i < config.listeners.size(); ++i)
            log_line("listener " + config.listeners[i].name + " on port " +
                     std::to_string(server.port(i)) + (config.listeners[i].tls ? " (TLS)" : ""));
        log_line("ready");
        while (true) {
            if (wait_for_signal(signals) != SIGHUP) break;
            try {
                server.reload_tls();
                log_line("TLS certificates reloaded");
            } catch (const Error& e) {
                log_line(std::string("TLS reload failed, the previous certificates stay: ") +
                         e.what());
            }
        }
        log_line("stopping");
    } catch (const Error& e) {
        log_line(e.what());
        return 2;
    }
    return 0;
}
