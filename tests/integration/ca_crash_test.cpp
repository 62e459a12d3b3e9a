// brokertls-ca stopped part-way: SIGTERM/SIGINT during a fleet batch (it must clean up and issue
// nothing), and SIGKILL at random points of `issue --count` and `revoke` (the next command must
// finish or undo the work, and the CA must stay consistent: every certificate in certs/ listed
// once in the index and the other way round, the CRL equal to the index's revocations, no
// temporary files left).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/crl.hpp"
#include "brokertls/store/files.hpp"
#include "ca_dir_test.hpp"
#include "support.hpp"

extern char** environ;

namespace brokertls::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// A brokertls-ca process whose output goes to a file, so the test can signal it mid-run.
class CaProcess {
  public:
    CaProcess(const std::vector<std::string>& argv, const fs::path& log) : log_(log) {
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) pid_ = -1;
    }
    CaProcess(const CaProcess&) = delete;
    CaProcess& operator=(const CaProcess&) = delete;
    ~CaProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    bool started() const { return pid_ > 0; }
    void signal(int sig) const { ::kill(pid_, sig); }
    // The exit code, 128+signal when a signal ended it, -1 if it still ran after `timeout`.
    int wait(Millis timeout) {
        int status = 0;
        bool done =
            eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout, 1ms);
        if (!done) return -1;
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::string output() const { return read_file(log_); }

  private:
    pid_t pid_ = -1;
    fs::path log_;
};

// Every file under `dir` with its bytes (the CA directory before and after a command).
std::map<std::string, std::string> snapshot(const fs::path& dir) {
    std::map<std::string, std::string> s;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        s[fs::relative(e.path(), dir).string()] = e.is_directory() ? "dir" : read_file(e.path());
    return s;
}

class CaCrashTest : public CaDirTest {
  protected:
    // The CA after a command has run since the last kill: no leftovers, index and certs/ agree,
    // the CRL lists exactly the index's revocations.
    void expect_consistent(const std::string& context) const {
        EXPECT_EQ(temp_files(tmp_.path()), std::vector<std::string>{}) << context;
        EXPECT_FALSE(fs::exists(dir_ / ".pending")) << context;
        RunResult r = run(ca({"list", "--json"}));
        ASSERT_EQ(r.exit_code, 0) << context << ": " << describe(r);
        std::map<std::string, std::string> indexed;  // serial -> fingerprint
        std::set<std::string> revoked;
        for (const auto& e : json::parse(r.out)) {
            std::string serial = e.at("serial");
            EXPECT_TRUE(indexed.emplace(serial, e.at("fingerprint")).second)
                << context << ": serial " << serial << " listed twice";
            if (e.at("status") == "revoked") revoked.insert(serial);
        }
        std::map<std::string, std::string> copies;
        for (const auto& f : fs::directory_iterator(dir_ / "certs"))
            copies[f.path().stem().string()] = Certificate::load(f.path()).fingerprint_sha256();
        EXPECT_EQ(copies, indexed) << context << ": certs/ and index.jsonl differ";
        if (fs::exists(dir_ / "crl.pem")) {
            std::set<std::string> in_crl;
            for (const auto& rc : Crl::load(dir_ / "crl.pem").revoked())
                in_crl.insert(rc.serial_hex);
            EXPECT_EQ(in_crl, revoked) << context << ": crl.pem and the index differ";
        } else {
            EXPECT_TRUE(revoked.empty()) << context;
        }
    }

    // Starts a batch and signals it once its first temporary files exist.
    void interrupt_batch(int sig) {
        auto before = snapshot(dir_);
        CaProcess p(
            ca({"issue", "client", "--count", "20000", "--prefix", "d-", "--out", out_.string()}),
            tmp_ / "issue.log");
        ASSERT_TRUE(p.started());
        ASSERT_TRUE(eventually([&] { return !temp_files(out_).empty(); }, 60s))
            << "no temporary files appeared: " << p.output();
        p.signal(sig);
        int code = p.wait(60s);
        std::string output = p.output();
        EXPECT_EQ(code, 128 + sig) << output;
        EXPECT_NE(output.find(std::string("interrupted by SIG") + sigabbrev_np(sig)),
                  std::string::npos)
            << output;
        EXPECT_NE(output.find("nothing was issued"), std::string::npos) << output;
        EXPECT_EQ(temp_files(tmp_.path()), std::vector<std::string>{});
        EXPECT_EQ(snapshot(dir_), before);
        EXPECT_FALSE(fs::exists(out_)) << "the output directory it created is not removed";
    }
};

TEST_F(CaCrashTest, SigtermStopsABatchAndIssuesNothing) {
    interrupt_batch(SIGTERM);
}

TEST_F(CaCrashTest, SigintStopsABatchAndIssuesNothing) {
    interrupt_batch(SIGINT);
}

TEST_F(CaCrashTest, SigkillLeftoversAreRemovedByTheNextCommand) {
    CaProcess p(
        ca({"issue", "client", "--count", "20000", "--prefix", "d-", "--out", out_.string()}),
        tmp_ / "issue.log");
    ASSERT_TRUE(p.started());
    ASSERT_TRUE(eventually([&] { return temp_files(out_).size() > 100; }, 60s)) << p.output();
    p.signal(SIGKILL);
    ASSERT_EQ(p.wait(10s), 128 + SIGKILL);
    ASSERT_FALSE(temp_files(tmp_.path()).empty());
    ASSERT_TRUE(fs::exists(dir_ / ".pending"));

    // A reader leaves the work alone, and says who will do it.
    RunResult r = run(ca({"list"}));
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.err.find("interrupted"), std::string::npos) << describe(r);
    // The next command that changes the CA undoes the batch and removes every leftover.
    r = run(ca({"crl"}));
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.err.find("interrupted `issue`"), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("temporary file(s) removed"), std::string::npos) << describe(r);
    expect_consistent("after SIGKILL");
    r = run(ca({"list", "--json"}));
    EXPECT_EQ(json::parse(r.out).size(), 0u) << "a batch killed before committing issues nothing";
}

// SIGKILL at random points of `issue --count` and of `revoke`, at least 50 kills each.
TEST_F(CaCrashTest, RandomSigkillsKeepTheCaConsistent) {
    constexpr int kKillsWanted = 50;
    constexpr int kMaxRuns = 400;   // with the budget below, bounds the test's time
    constexpr auto kBudget = 200s;  // under the 300 s CTest timeout of scripts/test
    unsigned seed = std::random_device{}();
    if (const char* s = std::getenv("BROKERTLS_CRASH_SEED")) seed = std::stoul(s);
    std::printf("[ crash    ] seed %u (set BROKERTLS_CRASH_SEED to repeat)\n", seed);
    std::mt19937 rng(seed);
    auto deadline = std::chrono::steady_clock::now() + kBudget;

    // How long a whole command takes here: the kills land anywhere within it.
    auto timed = [&](const std::vector<std::string>& argv) {
        auto start = std::chrono::steady_clock::now();
        RunResult r = run(argv);
        EXPECT_EQ(r.exit_code, 0) << describe(r);
        return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start);
    };
    Millis issue_time = timed(
        ca({"issue", "client", "--count", "10", "--prefix", "warm-", "--out", out_.string()}));
    Millis revoke_time = timed(ca({"revoke", (out_ / "warm-1.crt").string()}));

    struct Tally {
        int killed = 0, recovered = 0, finished = 0;  // recovered: left work for the next command
    };
    std::map<std::string, Tally> tally;
    std::vector<fs::path> revocable;  // warm-2.. and the certificates of the batches
    for (int i = 2; i <= 10; ++i)
        revocable.push_back(out_ / ("warm-" + std::to_string(i) + ".crt"));

    for (int run_no = 0; run_no < kMaxRuns && std::chrono::steady_clock::now() < deadline;
         ++run_no) {
        bool want_issue = tally["issue"].killed < kKillsWanted;
        bool want_revoke = tally["revoke"].killed < kKillsWanted;
        if (!want_issue && !want_revoke) break;
        if (!want_issue && revocable.empty()) {
            // Killed batches may leave nothing to revoke: issue more, without a kill.
            std::string refill = "r" + std::to_string(run_no) + "-";
            timed(ca(
                {"issue", "client", "--count", "10", "--prefix", refill, "--out", out_.string()}));
            for (int i = 1; i <= 10; ++i)
                revocable.push_back(out_ / (refill + std::to_string(i) + ".crt"));
        }
        bool issue = want_issue && (!want_revoke || revocable.empty() || rng() % 2 == 0);
        std::string what = issue ? "issue" : "revoke";
        std::vector<std::string> argv;
        std::string prefix = "b" + std::to_string(run_no) + "-";
        if (issue) {
            argv = ca(
                {"issue", "client", "--count", "10", "--prefix", prefix, "--out", out_.string()});
        } else {
            argv = ca({"revoke", revocable.back().string()});
        }
        Millis span = issue ? issue_time : revoke_time;
        Millis delay(std::uniform_int_distribution<long>(0, span.count())(rng));
        CaProcess p(argv, tmp_ / "run.log");
        ASSERT_TRUE(p.started());
        std::this_thread::sleep_for(delay);  // the random kill point, not a synchronisation
        p.signal(SIGKILL);
        int code = p.wait(30s);
        ASSERT_NE(code, -1) << "did not end after SIGKILL";
        std::string context = what + " run " + std::to_string(run_no) + " killed after " +
                              std::to_string(delay.count()) + " ms";
        if (code == 128 + SIGKILL) {
            ++tally[what].killed;
        } else {
            ASSERT_EQ(code, 0) << context << ": " << p.output();
            ++tally[what].finished;
        }
        // The next command finishes or undoes the killed one.
        RunResult r = run(ca({"crl"}));
        ASSERT_EQ(r.exit_code, 0) << context << ": " << describe(r);
        if (r.err.find("an interrupted") != std::string::npos) ++tally[what].recovered;
        expect_consistent(context);
        if (HasFailure()) return;
        if (issue) {
            for (int i = 1; i <= 10; ++i) {
                fs::path crt = out_ / (prefix + std::to_string(i) + ".crt");
                if (fs::exists(crt)) revocable.push_back(crt);
            }
        } else {
            revocable.pop_back();
        }
    }
    for (auto& [name, t] : tally)
        std::printf(
            "[ crash    ] %s: %d kills survived, %d of them mid-change (finished or "
            "undone by the next command); %d runs finished before the kill\n",
            name.c_str(), t.killed, t.recovered, t.finished);
    EXPECT_GE(tally["issue"].killed, kKillsWanted);
    EXPECT_GE(tally["revoke"].killed, kKillsWanted);
}

}  // namespace
}  // namespace brokertls::test
