#pragma once
// Test helpers: scratch directories, subprocesses with bounded waits that are always stopped,
// and free loopback ports.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace brokertls::test {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
  public:
    TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir();
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

struct RunResult {
    int exit_code = -1;  // -1: killed after the timeout
    std::string out;
    std::string err;
};

// Runs a program to completion (killed after `timeout`), with `input` on its stdin.
RunResult run(const std::vector<std::string>& argv, const std::string& input = "",
              std::chrono::milliseconds timeout = std::chrono::seconds(60),
              const std::map<std::string, std::string>& env = {});

// "exit N / stdout / stderr" for assertion messages.
std::string describe(const RunResult& r);

// Temporary files of our naming anywhere under `dir` (".X.tmp-..." of atomic writes,
// "PATH.brokertls-new" of deploys): after a command or a stop there must be none.
std::vector<std::string> temp_files(const std::filesystem::path& dir);

// A background process (a server). Its stdout and stderr go to a log file; the destructor
// kills it (SIGTERM, then SIGKILL) and reaps it.
class Process {
  public:
    Process(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
            const std::map<std::string, std::string>& env = {});
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process();

    pid_t pid() const { return pid_; }
    bool running();
    std::string log() const;
    // Waits until the log contains `text`; false after `timeout` or if the process exits.
    bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout);
    // SIGTERM to its process group (unless it already exited), after `timeout` SIGKILL.
    // Returns its exit code (128+N when signal N ended it), -1 when it had to be killed.
    int stop(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  private:
    pid_t pid_ = -1;
    int exit_code_ = -1;  // once reaped
    std::filesystem::path log_file_;
};

// Polls `done` every `every` until it holds or `timeout` passes: the bounded wait every test
// uses instead of sleeping.
template <class Predicate>
bool eventually(Predicate&& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every = std::chrono::milliseconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(every);
    }
    return true;
}

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();
// Waits until something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(int port, std::chrono::milliseconds timeout);

// The brokertls-ca binary of this build.
std::string ca_binary();
// brokertls-service and brokertls-enroll of this build.
std::string service_binary();
std::string enroll_binary();

}  // namespace brokertls::test
