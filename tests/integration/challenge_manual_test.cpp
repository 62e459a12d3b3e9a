#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "challenges/solver.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;

ChallengeTask task(std::string profile, std::string name, std::string token) {
    ChallengeTask t;
    t.profile = std::move(profile);
    t.identifier = {"dns", std::move(name)};
    t.token = std::move(token);
    t.key_authorization = t.token + ".thumbprint";
    return t;
}

bool becomes_waiting(const ManualGate& gate, const std::string& profile) {
    return test::eventually(
        [&] {
            auto names = gate.waiting();
            return std::find(names.begin(), names.end(), profile) != names.end();
        },
        5s, 1ms);
}

class ManualDns01Test : public ::testing::Test {
  protected:
    ManualDns01Test() {
        config_.type = ChallengeConfig::Type::Dns01;
        config_.provider = ChallengeConfig::DnsProvider::Manual;
        config_.timeout = 20s;
    }
    std::unique_ptr<ChallengeSolver> solver() {
        SolverContext context;
        context.log = [this](const std::string& line) {
            std::lock_guard lock(mutex_);
            log_.push_back(line);
        };
        context.event = [this](const std::string& type, const std::string& profile,
                               const std::string& message) {
            std::lock_guard lock(mutex_);
            events_.push_back(type + "|" + profile + "|" + message);
        };
        context.sleep = [this](std::chrono::milliseconds) { return !stopping_.load(); };
        return make_solver(config_, context, gate_);
    }

    ChallengeConfig config_;
    ManualGate gate_;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::vector<std::string> log_, events_;
};

TEST_F(ManualDns01Test, TellsTheOperatorAndWaitsForResume) {
    auto s = solver();
    EXPECT_EQ(s->type(), "dns-01");
    std::vector<ChallengeTask> tasks{task("mqtt", "a.example.com", "t1"),
                                     task("mqtt", "b.example.com", "t2")};
    std::string error;
    std::atomic<bool> returned{false};
    std::thread order([&] {
        try {
            s->present(tasks);
        } catch (const std::exception& e) {
            error = e.what();
        }
        returned = true;
    });
    ASSERT_TRUE(becomes_waiting(gate_, "mqtt"));
    EXPECT_FALSE(returned);
    std::string first = "manual dns-01 for mqtt: set TXT _acme-challenge.a.example.com \"" +
                        dns01_txt_value("t1.thumbprint") +
                        "\" then run `brokertls-ctl resume mqtt`";
    std::string second = "manual dns-01 for mqtt: set TXT _acme-challenge.b.example.com \"" +
                         dns01_txt_value("t2.thumbprint") +
                         "\" then run `brokertls-ctl resume mqtt`";
    {
        std::lock_guard lock(mutex_);
        EXPECT_EQ(log_, (std::vector<std::string>{first, second}));
        EXPECT_EQ(events_, (std::vector<std::string>{"manual-action-required|mqtt|" + first,
                                                     "manual-action-required|mqtt|" + second}));
    }
    EXPECT_FALSE(gate_.resume("other"));
    EXPECT_TRUE(gate_.resume("mqtt"));
    order.join();
    EXPECT_EQ(error, "");
    EXPECT_TRUE(gate_.waiting().empty());

    s->cleanup(tasks);
    std::lock_guard lock(mutex_);
    ASSERT_EQ(log_.size(), 4u);
    EXPECT_EQ(log_[2],
              "manual dns-01 for mqtt: you may now remove TXT "
              "_acme-challenge.a.example.com \"" +
                  dns01_txt_value("t1.thumbprint") + "\"");
}

TEST_F(ManualDns01Test, TimesOutWhenNobodyResumes) {
    config_.timeout = 1s;
    auto s = solver();
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(test::error_of([&] { s->present({task("mqtt", "a.example.com", "t1")}); },
                             ErrorKind::State),
              "mqtt: manual dns-01 not resumed within 1s");
    EXPECT_GE(std::chrono::steady_clock::now() - started, 1s);
    EXPECT_TRUE(gate_.waiting().empty());
}

TEST_F(ManualDns01Test, StoppingModuleEndsTheWait) {
    auto s = solver();
    std::string error;
    std::thread order([&] {
        try {
            s->present({task("mqtt", "a.example.com", "t1")});
        } catch (const Error& e) {
            error = e.what();
        }
    });
    ASSERT_TRUE(becomes_waiting(gate_, "mqtt"));
    auto started = std::chrono::steady_clock::now();
    stopping_ = true;
    order.join();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
    EXPECT_EQ(error, "mqtt: manual dns-01: stopped");
}

}  // namespace
}  // namespace brokertls
