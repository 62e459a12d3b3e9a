// run_subprocess starts operators' hooks: they must not inherit the broker's descriptors or
// environment, and what they print must not grow the broker's memory without bound.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "process/subprocess.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// Descriptors opened without O_CLOEXEC, as the broker opens its sockets, at fixed high numbers.
class LeakableDescriptors {
  public:
    LeakableDescriptors() {
        int sock = ::socket(AF_INET, SOCK_STREAM, 0);
        int file = ::open("/dev/null", O_RDONLY);
        socket_ = ::dup2(sock, 150);
        file_ = ::dup2(file, 151);
        ::close(sock);
        ::close(file);
    }
    ~LeakableDescriptors() { ::close(socket_), ::close(file_); }
    LeakableDescriptors(const LeakableDescriptors&) = delete;
    LeakableDescriptors& operator=(const LeakableDescriptors&) = delete;
    int socket_ = -1, file_ = -1;
};

TEST(Subprocess, HookStartsWithOnlyDescriptorsZeroToTwo) {
    LeakableDescriptors parent;
    ASSERT_EQ(parent.socket_, 150);
    ASSERT_EQ(parent.file_, 151);
    auto result = run_subprocess({"/bin/ls", "/proc/self/fd"}, "", 10s);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    // 3 is the directory ls itself opened to list /proc/self/fd.
    EXPECT_EQ(lines_of(result.out), (std::vector<std::string>{"0", "1", "2", "3"}));
}

TEST(Subprocess, HookEnvironmentIsPathAndTheGivenVariablesOnly) {
    ::setenv("BROKERTLS_TEST_SECRET", "hunter2", 1);
    auto result = run_subprocess({"/usr/bin/env"}, "", 10s, {{"BROKERTLS_PROFILE", "mqtt"}});
    ::unsetenv("BROKERTLS_TEST_SECRET");
    ASSERT_EQ(result.exit_code, 0) << result.err;
    auto env = lines_of(result.out);
    std::sort(env.begin(), env.end());
    EXPECT_EQ(env, (std::vector<std::string>{"BROKERTLS_PROFILE=mqtt",
                                             "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}));
}

TEST(Subprocess, CapturedOutputIsCappedAndTheRestDrained) {
    // Megabytes on both streams: the hook must not block on a full pipe (it would time out),
    // and only the first kMaxCapturedOutput bytes of each stream are kept.
    auto result = run_subprocess(
        {"/bin/sh", "-c", "head -c 8000000 /dev/zero; head -c 3000000 /dev/zero >&2; exit 4"}, "",
        30s);
    EXPECT_FALSE(result.timed_out);
    EXPECT_EQ(result.exit_code, 4);
    EXPECT_EQ(result.out.size(), kMaxCapturedOutput);
    EXPECT_EQ(result.err.size(), kMaxCapturedOutput);
    EXPECT_TRUE(result.out_truncated);
    EXPECT_TRUE(result.err_truncated);
}

TEST(Subprocess, OutputBelowTheCapIsKeptWhole) {
    auto result =
        run_subprocess({"/bin/sh", "-c", "printf 'one\\ntwo\\n'; echo oops >&2"}, "", 10s);
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_EQ(result.out, "one\ntwo\n");
    EXPECT_EQ(result.err, "oops\n");
    EXPECT_FALSE(result.out_truncated);
    EXPECT_FALSE(result.err_truncated);
}

// problem() is the verdict hooks' callers log: nullopt on exit 0, else the exit code and the last
// line of stderr, or "timed out".
TEST(Subprocess, ProblemIsNulloptOnSuccessElseExitCodeAndLastStderrLine) {
    auto ok = run_subprocess({"/bin/sh", "-c", "echo noise >&2; exit 0"}, "", 10s);
    EXPECT_EQ(ok.problem(), std::nullopt);

    auto failed = run_subprocess(
        {"/bin/sh", "-c", "echo first >&2; echo 'zone refused' >&2; exit 3"}, "", 10s);
    EXPECT_EQ(failed.problem(), "exit code 3: zone refused");

    auto silent = run_subprocess({"/bin/sh", "-c", "exit 1"}, "", 10s);
    EXPECT_EQ(silent.problem(), "exit code 1");

    auto slow = run_subprocess({"/bin/sh", "-c", "exec sleep 30"}, "", 200ms);
    EXPECT_TRUE(slow.timed_out);
    EXPECT_EQ(slow.problem(), "timed out");
}

}  // namespace
}  // namespace brokertls
