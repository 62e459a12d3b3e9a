#pragma once
// Runs an operator's program (an exec challenge hook, an event hook) with a bounded time: its
// stdin is `input`, stdout and stderr are captured, and after `timeout` its whole process group
// is killed. Safe to call from the module's worker threads.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace brokertls {

struct SubprocessResult {
    int exit_code = -1;  // 128+N when killed by signal N
    bool timed_out = false;
    std::string out, err;
    // "exit code 3: <last line of stderr>", "timed out", or "" when it succeeded.
    std::string failure() const;
};

// Starts `argv` (looked up in PATH) in its own process group with the given descriptors as its
// stdin, stdout and stderr, the environment plus `extra_env`, and no signals blocked. Throws
// Error(Io) "PROGRAM: cannot start: reason".
pid_t spawn_process(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& extra_env, int in_fd, int out_fd,
                    int err_fd);

// Throws Error(Io) "PROGRAM: cannot start: reason" when it cannot be started.
SubprocessResult run_subprocess(const std::vector<std::string>& argv, const std::string& input,
                                std::chrono::milliseconds timeout,
                                const std::map<std::string, std::string>& extra_env = {});

}  // namespace brokertls
