#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "brokertls/store/files.hpp"
#include "challenges/solver.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;

ChallengeTask task(std::string name, std::string token, bool wildcard = false) {
    ChallengeTask t;
    t.profile = "mqtt";
    t.identifier = {"dns", std::move(name)};
    t.wildcard = wildcard;
    t.token = std::move(token);
    t.key_authorization = t.token + ".thumbprint";
    return t;
}

class ExecHookTest : public ::testing::Test {
  protected:
    ExecHookTest() {
        config_.type = ChallengeConfig::Type::Dns01;
        config_.provider = ChallengeConfig::DnsProvider::Exec;
        config_.command = dir_ / "hook.sh";
        config_.timeout = 10s;
    }
    void write_hook(const std::string& body) {
        std::ofstream(config_.command) << "#!/bin/sh\n" << body;
        ::chmod(config_.command.c_str(), 0755);
    }
    std::unique_ptr<ChallengeSolver> solver() {
        SolverContext context;
        context.log = [this](const std::string& line) { log_.push_back(line); };
        return make_solver(config_, context, gate_);
    }
    std::string record() const { return (dir_ / "calls").string(); }

    test::TempDir dir_;
    ChallengeConfig config_;
    ManualGate gate_;
    std::vector<std::string> log_;
};

TEST_F(ExecHookTest, RunsPresentAndCleanupWithRecordValueNameAndProfile) {
    write_hook("echo \"$BROKERTLS_PROFILE $*\" >> '" + record() + "'\n");
    config_.challenge_domains["b.example.com"] = "b.acme-delegated.example.net";
    auto s = solver();
    EXPECT_EQ(s->type(), "dns-01");
    std::vector<ChallengeTask> tasks{task("a.example.com", "t1"),
                                     task("a.example.com", "t2", /*wildcard=*/true),
                                     task("b.example.com", "t3")};
    s->present(tasks);
    s->cleanup(tasks);
    EXPECT_EQ(read_file(record()), "mqtt present _acme-challenge.a.example.com " +
                                       dns01_txt_value("t1.thumbprint") +
                                       " a.example.com\n"
                                       "mqtt present _acme-challenge.a.example.com " +
                                       dns01_txt_value("t2.thumbprint") +
                                       " a.example.com\n"
                                       "mqtt present b.acme-delegated.example.net " +
                                       dns01_txt_value("t3.thumbprint") +
                                       " b.example.com\n"
                                       "mqtt cleanup _acme-challenge.a.example.com " +
                                       dns01_txt_value("t1.thumbprint") +
                                       " a.example.com\n"
                                       "mqtt cleanup _acme-challenge.a.example.com " +
                                       dns01_txt_value("t2.thumbprint") +
                                       " a.example.com\n"
                                       "mqtt cleanup b.acme-delegated.example.net " +
                                       dns01_txt_value("t3.thumbprint") + " b.example.com\n");
    EXPECT_TRUE(log_.empty());
}

TEST_F(ExecHookTest, FailingHookNamesTheHookAndItsStderr) {
    write_hook("echo \"checking zone\" >&2\necho \"zone example.com not found\" >&2\nexit 3\n");
    auto s = solver();
    auto message =
        test::error_of([&] { s->present({task("a.example.com", "t1")}); }, ErrorKind::Io);
    EXPECT_EQ(message, "dns-01 exec hook " + config_.command.string() +
                           ": present _acme-challenge.a.example.com: exit code 3: zone "
                           "example.com not found");
    EXPECT_EQ(log_, (std::vector<std::string>{"exec hook: checking zone",
                                              "exec hook: zone example.com not found"}));

    // A failing cleanup is logged, never thrown.
    log_.clear();
    s->cleanup({task("a.example.com", "t1")});
    ASSERT_EQ(log_.size(), 3u);
    EXPECT_EQ(log_[2], "dns-01 exec hook " + config_.command.string() +
                           ": cleanup _acme-challenge.a.example.com: exit code 3: zone "
                           "example.com not found");
}

TEST_F(ExecHookTest, HangingHookIsKilledAtTheTimeout) {
    write_hook("sleep 30\n");
    config_.timeout = 1s;
    auto s = solver();
    auto started = std::chrono::steady_clock::now();
    auto message =
        test::error_of([&] { s->present({task("a.example.com", "t1")}); }, ErrorKind::Io);
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(message, "dns-01 exec hook " + config_.command.string() +
                           ": present _acme-challenge.a.example.com: timed out");
    EXPECT_GE(took, 1s);
    EXPECT_LT(took, 5s);
}

TEST_F(ExecHookTest, HookSeesOnlyItsVariablesAndStandardDescriptors) {
    // The broker holds sockets and files without O_CLOEXEC, and may hold secrets in its
    // environment: a hook gets neither.
    // (PWD is the shell's own: sh sets and exports it whatever it was given.)
    write_hook("/usr/bin/env | grep -v '^PWD=' | sort > '" + record() + "'\nls /proc/self/fd >> '" +
               record() + "'\n");
    int leaked = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC, as a broker's socket
    int high = ::dup2(leaked, 140);
    ::close(leaked);
    ::setenv("BROKERTLS_TEST_SECRET", "hunter2", 1);
    auto s = solver();
    s->present({task("a.example.com", "t1")});
    ::unsetenv("BROKERTLS_TEST_SECRET");
    ::close(high);
    // env's list, then ls's (3 is the directory ls opened to list; the redirection to the
    // record file is ls's stdout).
    EXPECT_EQ(read_file(record()),
              "BROKERTLS_PROFILE=mqtt\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n0\n1\n2\n3\n");
}

TEST_F(ExecHookTest, HookPrintingMegabytesIsCappedAndEscapedInTheLog) {
    write_hook(
        "head -c 3000000 /dev/zero | tr '\\0' 'x'\nprintf 'bad\\033[2Jbyte\\n' >&2\n"
        "head -c 3000000 /dev/zero | tr '\\0' 'y' >&2\n");
    auto s = solver();
    auto started = std::chrono::steady_clock::now();
    s->present({task("a.example.com", "t1")});
    EXPECT_LT(std::chrono::steady_clock::now() - started, 8s);
    ASSERT_GE(log_.size(), 2u);
    EXPECT_EQ(log_.front(), "exec hook: bad\\x1b[2Jbyte");
    EXPECT_EQ(log_.back(), "exec hook: stderr truncated: only its first 65536 bytes were kept");
    std::size_t logged = 0;
    for (const auto& line : log_) logged += line.size();
    EXPECT_LT(logged, 65536u + 200u);
}

TEST_F(ExecHookTest, StopsAtTheFirstFailingTask) {
    write_hook("echo \"$*\" >> '" + record() + "'\n[ \"$4\" != a.example.com ]\n");
    auto s = solver();
    test::error_of(
        [&] {
            s->present({task("a.example.com", "t1"), task("b.example.com", "t2")});
        },
        ErrorKind::Io);
    EXPECT_EQ(read_file(record()), "present _acme-challenge.a.example.com " +
                                       dns01_txt_value("t1.thumbprint") + " a.example.com\n");
}

}  // namespace
}  // namespace brokertls
