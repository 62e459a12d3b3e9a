#include "support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "brokertls/error.hpp"
#include "process/subprocess.hpp"

namespace brokertls::test {
namespace fs = std::filesystem;

namespace {

// Test servers and tools start like the module's hooks: own process group, so stop() also
// reaches anything the program starts.
pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
            int in_fd, int out_fd, int err_fd) {
    try {
        return spawn_process(argv, env, in_fd, out_fd, err_fd);
    } catch (const Error& e) {
        throw std::runtime_error(e.what());
    }
}

// Waits for `pid` up to `timeout`, then kills its group; returns the exit code or -1.
int wait_bounded(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (true) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (std::chrono::steady_clock::now() >= deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::mt19937_64 rng(std::random_device{}());
    path_ = fs::path(base && *base ? base : "/tmp") / ("brokertls-test-" + std::to_string(rng()));
    fs::create_directories(path_);
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

RunResult run(const std::vector<std::string>& argv, const std::string& input,
              std::chrono::milliseconds timeout, const std::map<std::string, std::string>& env) {
    TempDir scratch;
    fs::path in = scratch / "in", out = scratch / "out", err = scratch / "err";
    std::ofstream(in, std::ios::binary) << input;
    int in_fd = open(in.c_str(), O_RDONLY | O_CLOEXEC);
    int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    RunResult result;
    try {
        pid_t pid = spawn(argv, env, in_fd, out_fd, err_fd);
        result.exit_code = wait_bounded(pid, timeout);
    } catch (...) {
        close(in_fd), close(out_fd), close(err_fd);
        throw;
    }
    close(in_fd), close(out_fd), close(err_fd);
    result.out = slurp(out);
    result.err = slurp(err);
    return result;
}

std::string describe(const RunResult& r) {
    return "exit " + std::to_string(r.exit_code) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

std::vector<std::string> temp_files(const fs::path& dir) {
    std::vector<std::string> found;
    std::error_code ec;
    if (!fs::exists(dir, ec)) return found;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        std::string name = e.path().filename().string();
        if (name.find(".tmp-") != std::string::npos || name.ends_with(".brokertls-new"))
            found.push_back(e.path().string());
    }
    return found;
}

Process::Process(const std::vector<std::string>& argv, const fs::path& log_file,
                 const std::map<std::string, std::string>& env)
    : log_file_(log_file) {
    int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log_fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    try {
        pid_ = spawn(argv, env, in_fd, log_fd, log_fd);
    } catch (...) {
        close(in_fd), close(log_fd);
        throw;
    }
    close(in_fd), close(log_fd);
}

Process::~Process() {
    stop();
}

bool Process::running() {
    if (pid_ < 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return false;
    }
    return true;
}

std::string Process::log() const {
    return slurp(log_file_);
}

bool Process::wait_for_log(const std::string& text, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (log().find(text) != std::string::npos) return true;
        if (!running()) return log().find(text) != std::string::npos;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

int Process::stop(std::chrono::milliseconds timeout) {
    if (pid_ < 0) return exit_code_;
    kill(-pid_, SIGTERM);
    exit_code_ = wait_bounded(pid_, timeout);  // kills the group itself after the timeout
    pid_ = -1;
    return exit_code_;
}

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        close(fd);
        throw std::runtime_error("no free port");
    }
    close(fd);
    return ntohs(addr.sin_port);
}

bool wait_for_port(int port, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(port));
        bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        close(fd);
        if (ok) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

std::string ca_binary() {
    return BROKERTLS_CA_BINARY;
}

std::string service_binary() {
    return BROKERTLS_SERVICE_BINARY;
}

std::string enroll_binary() {
    return BROKERTLS_ENROLL_BINARY;
}

}  // namespace brokertls::test
