#pragma once
// What the long-running programs (brokertls-service, brokertls-gateway) share: their command
// line, their log lines and their signals.

#include <signal.h>

#include <optional>
#include <string>

namespace brokertls {

struct DaemonCommandLine {
    std::string config_file;  // the default until --config
    bool check = false;
};

// --config FILE, --check, --version, --help into `line`. An exit code when the program is to
// stop at once: 0 after --help or --version, 1 after a usage error (with the usage on stderr);
// nullopt otherwise.
std::optional<int> parse_daemon_command_line(int argc, char** argv, const char* program,
                                             const char* version, const char* usage,
                                             DaemonCommandLine& line);

// "2026-12-08T01:02:03Z PROGRAM: LINE" on stderr, whole lines whatever the thread.
void daemon_log(const char* program, const std::string& line);

// Blocks SIGINT, SIGTERM and SIGHUP in this thread and every thread it starts afterwards, so the
// main thread alone takes them (wait_for_signal), and ignores SIGPIPE (a peer gone mid-write
// fails that write, it does not end the process). Call first in main().
sigset_t block_daemon_signals();
int wait_for_signal(const sigset_t& signals);

}  // namespace brokertls
