#include "process/daemon.hpp"

#include <ctime>
#include <iostream>
#include <mutex>

namespace brokertls {

std::optional<int> parse_daemon_command_line(int argc, char** argv, const char* program,
                                             const char* version, const char* usage,
                                             DaemonCommandLine& line) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            return 0;
        }
        if (a == "--version") {
            std::cout << program << " " << version << "\n";
            return 0;
        }
        if (a == "--check") {
            line.check = true;
        } else if (a == "--config" && i + 1 < argc) {
            line.config_file = argv[++i];
        } else {
            std::cerr << program << ": unknown argument " << a << "\n\n" << usage;
            return 1;
        }
    }
    return std::nullopt;
}

void daemon_log(const char* program, const std::string& line) {
    static std::mutex mutex;
    std::time_t t = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    std::lock_guard lock(mutex);
    std::cerr << stamp << " " << program << ": " << line << std::endl;
}

sigset_t block_daemon_signals() {
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);
    return signals;
}

int wait_for_signal(const sigset_t& signals) {
    int received = 0;
    sigwait(&signals, &received);
    return received;
}

}  // namespace brokertls
