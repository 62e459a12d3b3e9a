#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "challenges/solver.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;

// Polls (bounded) until `profile` is listed as waiting.
bool becomes_waiting(const ManualGate& gate, const std::string& profile) {
    return test::eventually(
        [&] {
            auto names = gate.waiting();
            return std::find(names.begin(), names.end(), profile) != names.end();
        },
        5s, 1ms);
}

const auto never_stopped = [] { return false; };

TEST(ManualGateTest, ResumeFromAnotherThreadReleasesTheWaiter) {
    ManualGate gate;
    std::atomic<bool> resumed{false};
    std::thread waiter([&] { resumed = gate.wait("mqtt", 20s, never_stopped); });
    ASSERT_TRUE(becomes_waiting(gate, "mqtt"));
    EXPECT_EQ(gate.waiting(), std::vector<std::string>{"mqtt"});
    auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(gate.resume("mqtt"));
    waiter.join();
    EXPECT_TRUE(resumed);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
    EXPECT_TRUE(gate.waiting().empty());
    // The resume was consumed: nobody is left for a second one.
    EXPECT_FALSE(gate.resume("mqtt"));
}

TEST(ManualGateTest, ResumeWithNobodyWaitingIsFalseAndDoesNotCarryOver) {
    ManualGate gate;
    EXPECT_FALSE(gate.resume("mqtt"));
    // An earlier resume does not release an order that starts waiting later.
    EXPECT_FALSE(gate.wait("mqtt", 50ms, never_stopped));
}

TEST(ManualGateTest, TimesOutWithoutResume) {
    ManualGate gate;
    auto started = std::chrono::steady_clock::now();
    EXPECT_FALSE(gate.wait("mqtt", 150ms, never_stopped));
    auto took = std::chrono::steady_clock::now() - started;
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 2s);
    EXPECT_TRUE(gate.waiting().empty());
}

TEST(ManualGateTest, StoppedPredicateEndsTheWait) {
    ManualGate gate;
    std::atomic<bool> stop{false};
    std::atomic<bool> resumed{true};
    std::thread waiter([&] { resumed = gate.wait("mqtt", 20s, [&] { return stop.load(); }); });
    ASSERT_TRUE(becomes_waiting(gate, "mqtt"));
    auto started = std::chrono::steady_clock::now();
    stop = true;
    waiter.join();
    EXPECT_FALSE(resumed);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);  // checked every 100 ms
}

TEST(ManualGateTest, ResumeReleasesOnlyTheNamedProfile) {
    ManualGate gate;
    std::atomic<int> a{-1}, b{-1};
    std::thread wa([&] { a = gate.wait("a", 20s, never_stopped); });
    std::thread wb([&] { b = gate.wait("b", 300ms, never_stopped); });
    ASSERT_TRUE(becomes_waiting(gate, "a"));
    ASSERT_TRUE(becomes_waiting(gate, "b"));
    EXPECT_EQ(gate.waiting(), (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(gate.resume("a"));
    wa.join();
    wb.join();
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, 0);
}

}  // namespace
}  // namespace brokertls
