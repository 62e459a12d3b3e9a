// brokertls-service: the central issuing service for private fleets. It alone holds the ACME
// account and the CA keys; brokers and devices send it CSRs (ACMEMS's POST /sign, or the JSON
// API /v1) and get certificates back.

#include <signal.h>

#include <cstring>
#include <ctime>
#include <iostream>
#include <mutex>

#include "brokertls/error.hpp"
#include "brokertls/time/clock.hpp"
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

std::mutex log_mutex;

void log_line(const std::string& line) {
    std::time_t t = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    std::lock_guard lock(log_mutex);
    std::cerr << stamp << " brokertls-service: " << line << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace brokertls;
    std::string config_file = "/etc/brokertls/service.json";
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << kUsage;
            return 0;
        }
        if (a == "--version") {
            std::cout << "brokertls-service " << BROKERTLS_VERSION << "\n";
            return 0;
        }
        if (a == "--check") {
            check = true;
        } else if (a == "--config" && i + 1 < argc) {
            config_file = argv[++i];
        } else {
            std::cerr << "brokertls-service: unknown argument " << a << "\n\n" << kUsage;
            return 1;
        }
    }
    // Signals are taken by sigwait on the main thread: the server's threads never see them.
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);
    try {
        ServiceConfig config = load_service_config(config_file);
        IssuingService service(config, Clock::system(), log_line);
        if (check) {
            std::cout << config_file << ": ok\n";
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
            int received = 0;
            sigwait(&signals, &received);
            if (received != SIGHUP) break;
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
