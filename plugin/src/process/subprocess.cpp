#include "process/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "brokertls/error.hpp"

extern char** environ;

namespace brokertls {
namespace {

struct Pipe {
    int fd[2] = {-1, -1};
    Pipe() {
        if (pipe2(fd, O_CLOEXEC) != 0) fail(ErrorKind::Io, "pipe", std::strerror(errno));
    }
    ~Pipe() { close_both(); }
    void close_end(int i) {
        if (fd[i] >= 0) close(fd[i]);
        fd[i] = -1;
    }
    void close_both() { close_end(0), close_end(1); }
};

std::vector<std::string> environment_with(Environment base,
                                          const std::map<std::string, std::string>& extra) {
    std::vector<std::string> env;
    char* minimal[] = {const_cast<char*>(kHookPath), nullptr};
    for (char** e = base == Environment::Inherit ? environ : minimal; *e; ++e) {
        std::string entry(*e);
        if (!extra.count(entry.substr(0, entry.find('=')))) env.push_back(entry);
    }
    for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

}  // namespace

pid_t spawn_process(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& extra_env, int in_fd, int out_fd,
                    int err_fd, Environment environment) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
    // The broker (and libraries in it) open descriptors without O_CLOEXEC: listening sockets,
    // client connections, files. A hook must not hold them open or write to them.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own process group, so a timeout also stops whatever the hook started.
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    // The broker ignores SIGPIPE; a hook's shell pipelines need the default back.
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    std::vector<std::string> args = argv;
    std::vector<std::string> envs = environment_with(environment, extra_env);
    auto cargs = c_strings(args);
    auto cenv = c_strings(envs);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, cargs[0], &actions, &attr, cargs.data(), cenv.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) fail(ErrorKind::Io, argv[0], std::string("cannot start: ") + std::strerror(rc));
    return pid;
}

Problem SubprocessResult::problem() const {
    if (timed_out) return "timed out";
    if (exit_code == 0) return std::nullopt;
    std::string last = err;
    while (!last.empty() && (last.back() == '\n' || last.back() == '\r')) last.pop_back();
    if (auto nl = last.rfind('\n'); nl != std::string::npos) last = last.substr(nl + 1);
    std::string reason = "exit code " + std::to_string(exit_code);
    return last.empty() ? reason : reason + ": " + last;
}

SubprocessResult run_subprocess(const std::vector<std::string>& argv, const std::string& input,
                                std::chrono::milliseconds timeout,
                                const std::map<std::string, std::string>& extra_env) {
    if (argv.empty()) fail(ErrorKind::Usage, "run_subprocess", "no program");
    Pipe in, out, err;
    pid_t pid =
        spawn_process(argv, extra_env, in.fd[0], out.fd[1], err.fd[1], Environment::Minimal);
    in.close_end(0), out.close_end(1), err.close_end(1);
    fcntl(in.fd[1], F_SETFL, O_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);  // a hook that ignores stdin must not kill the broker

    SubprocessResult result;
    std::size_t written = 0;
    if (input.empty()) in.close_end(1);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    while (out.fd[0] >= 0 || err.fd[0] >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            result.timed_out = true;
            break;
        }
        pollfd fds[3] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}, {in.fd[1], POLLOUT, 0}};
        if (poll(fds, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                std::string& kept = i == 0 ? result.out : result.err;
                auto size = static_cast<std::size_t>(n);
                auto room = kMaxCapturedOutput - kept.size();
                kept.append(buffer, std::min(size, room));
                if (size > room) (i == 0 ? result.out_truncated : result.err_truncated) = true;
            } else if (n == 0 || errno != EINTR) {
                (i == 0 ? out : err).close_end(0);
            }
        }
        if (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t n = write(in.fd[1], input.data() + written, input.size() - written);
            if (n > 0) written += static_cast<std::size_t>(n);
            if (n < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
            if (written >= input.size()) in.close_end(1);
        }
    }
    in.close_end(1);
    int status = 0;
    if (result.timed_out) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        result.exit_code = -1;
        return result;
    }
    // Output closed: the program is exiting; a program that closed its output early is still
    // bounded by the deadline.
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() >= deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            result.timed_out = true;
            return result;
        }
        usleep(2000);
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

}  // namespace brokertls
