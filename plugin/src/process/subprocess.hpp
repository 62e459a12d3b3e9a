#pragma once
// Runs an operator's program (an exec challenge hook, an event hook) with a bounded time: its
// stdin is `input`, stdout and stderr are captured (each up to kMaxCapturedOutput), and after
// `timeout` its whole process group is killed. A hook starts with only descriptors 0-2 open and a
// minimal environment, so it inherits neither the broker's sockets and files nor secrets in the
// broker's environment. Safe to call from the module's worker threads.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "brokertls/error.hpp"

namespace brokertls {

// What a hook's environment holds besides the variables its caller documents.
inline constexpr const char* kHookPath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
// Captured per stream; the rest is read and discarded so the hook never blocks on a full pipe.
inline constexpr std::size_t kMaxCapturedOutput = 64 * 1024;

struct SubprocessResult {
    int exit_code = -1;  // 128+N when killed by signal N
    bool timed_out = false;
    std::string out, err;                               // at most kMaxCapturedOutput bytes each
    bool out_truncated = false, err_truncated = false;  // more was written and discarded
    // Why the hook failed: "exit code 3: <last line of stderr>", "timed out"; nullopt when it
    // succeeded.
    Problem problem() const;
};

enum class Environment {
    Inherit,  // this process's environment (test fixtures starting servers)
    Minimal,  // kHookPath only (operators' hooks)
};

// Starts `argv` (looked up in PATH) in its own process group with the given descriptors as its
// stdin, stdout and stderr and every other descriptor closed, the environment plus `extra_env`,
// and no signals blocked. Throws Error(Io) "PROGRAM: cannot start: reason".
pid_t spawn_process(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& extra_env, int in_fd, int out_fd,
                    int err_fd, Environment environment = Environment::Inherit);

// Runs a hook: Environment::Minimal plus `extra_env`. Throws Error(Io) "PROGRAM: cannot start:
// reason" when it cannot be started.
SubprocessResult run_subprocess(const std::vector<std::string>& argv, const std::string& input,
                                std::chrono::milliseconds timeout,
                                const std::map<std::string, std::string>& extra_env = {});

}  // namespace brokertls
