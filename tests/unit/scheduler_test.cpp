// The scheduler on a FakeClock: time moves only when a test says so, and a test advances it only
// once the workers wait on the clock (await_waiters), so no test sleeps or races real time.

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "schedule/scheduler.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;

class SchedulerTest : public ::testing::Test {
  protected:
    // What each run of a job returns, and a log of the runs.
    TimePoint next_for(const std::string& name) {
        std::lock_guard lock(mutex);
        auto it = next.find(name);
        return it == next.end() ? TimePoint::max() : it->second;
    }
    std::vector<std::string> runs() {
        std::lock_guard lock(mutex);
        return ran;
    }
    Scheduler::Run recorder() {
        return [this](const std::string& name, std::stop_token) {
            std::lock_guard lock(mutex);
            ran.push_back(name);
            auto it = next.find(name);
            return it == next.end() ? TimePoint::max() : it->second;
        };
    }
    // Every worker waits on the clock: nothing is running or about to run.
    void settle(Scheduler& s, int workers = 1) {
        ASSERT_TRUE(clock.await_waiters(workers, 10s));
        ASSERT_TRUE(s.idle(clock.now()));
    }

    FakeClock clock{SystemClock::now()};
    std::mutex mutex;
    std::map<std::string, TimePoint> next;
    std::vector<std::string> ran;
};

TEST_F(SchedulerTest, AJobRunsWhenItIsDueAndNotBefore) {
    Scheduler s(clock, 1, recorder());
    TimePoint t0 = clock.now();
    s.schedule("a", t0 + 10min);
    s.start();
    settle(s);
    EXPECT_TRUE(runs().empty());
    clock.advance(9min);
    settle(s);
    EXPECT_TRUE(runs().empty());
    clock.advance(1min);
    ASSERT_TRUE(test::eventually([&] { return runs().size() == 1; }, 10s));
    settle(s);
    EXPECT_EQ(runs(), std::vector<std::string>{"a"});
    EXPECT_EQ(s.info("a")->due, TimePoint::max());  // it returned "only when asked"
}

TEST_F(SchedulerTest, TheTimeAJobReturnsIsItsNextRun) {
    TimePoint t0 = clock.now();
    next["a"] = t0 + 1h;
    Scheduler s(clock, 1, recorder());
    s.run_now("a");
    s.start();
    ASSERT_TRUE(test::eventually([&] { return runs().size() == 1; }, 10s));
    settle(s);
    EXPECT_EQ(s.info("a")->due, t0 + 1h);
    next["a"] = t0 + 3h;
    clock.advance(1h);
    ASSERT_TRUE(test::eventually([&] { return runs().size() == 2; }, 10s));
    settle(s);
    EXPECT_EQ(s.info("a")->due, t0 + 3h);
    EXPECT_TRUE(s.idle(t0 + 3h - 1s));
    EXPECT_FALSE(s.idle(t0 + 3h));
}

TEST_F(SchedulerTest, RunNowOfAQueuedJobQueuesItOnce) {
    Scheduler s(clock, 1, recorder());
    for (int i = 0; i < 5; ++i) s.run_now("a");
    s.run_now("b");
    s.schedule("b", clock.now());  // already queued: stays queued once
    EXPECT_EQ(s.run_pending(), 2u);
    EXPECT_EQ(runs(), (std::vector<std::string>{"a", "b"}));
}

// A changed file or an operator's command does not wait behind a start-up's checks.
TEST_F(SchedulerTest, UrgentWorkGoesBeforeARoutineBacklog) {
    Scheduler s(clock, 1, recorder());
    for (const char* name : {"r1", "r2", "r3", "late"}) s.run_now(name);
    s.run_now("late", Scheduler::Priority::Urgent);  // queued already: moved to the front
    s.run_now("new", Scheduler::Priority::Urgent);
    EXPECT_EQ(s.run_pending(), 5u);
    EXPECT_EQ(runs(), (std::vector<std::string>{"new", "late", "r1", "r2", "r3"}));
}

TEST_F(SchedulerTest, EarlierJobsRunFirstAndTheTimelineFollowsMoves) {
    TimePoint t0 = clock.now();
    Scheduler s(clock, 1, recorder());
    s.schedule("late", t0 + 2h);
    s.schedule("early", t0 + 1h);
    s.schedule("moved", t0 + 30min);
    s.schedule("moved", t0 + 3h);  // moved later: no run at 30 min
    clock.set(t0 + 2h);
    EXPECT_EQ(s.run_pending(), 2u);
    EXPECT_EQ(runs(), (std::vector<std::string>{"early", "late"}));
    clock.set(t0 + 3h);
    EXPECT_EQ(s.run_pending(), 1u);
    EXPECT_EQ(runs().back(), "moved");
}

// A job asked to run while it runs (a reload, a renew command) runs again right after, once.
TEST_F(SchedulerTest, RunNowDuringARunRunsItAgainAfterwards) {
    std::atomic<bool> in_run{false}, release{false};
    std::atomic<int> count{0};
    Scheduler s(clock, 2, [&](const std::string&, std::stop_token) {
        ++count;
        in_run = true;
        test::eventually([&] { return release.load(); }, 10s);
        in_run = false;
        return TimePoint::max();
    });
    s.run_now("a");
    s.start();
    ASSERT_TRUE(test::eventually([&] { return in_run.load(); }, 10s));
    s.run_now("a");
    s.run_now("a");
    ASSERT_TRUE(s.info("a")->running);
    // Never twice at once: the second worker does not take it while the first runs.
    EXPECT_EQ(count, 1);
    release = true;
    ASSERT_TRUE(test::eventually([&] { return count == 2 && s.idle(clock.now()); }, 10s));
    EXPECT_EQ(count, 2);
}

TEST_F(SchedulerTest, ARemovedJobDoesNotRunAndARunningOnesAnswerIsDropped) {
    std::atomic<bool> in_run{false}, release{false};
    Scheduler s(clock, 1, [&](const std::string& name, std::stop_token) {
        if (name == "running") {
            in_run = true;
            test::eventually([&] { return release.load(); }, 10s);
        }
        std::lock_guard lock(mutex);
        ran.push_back(name);
        return clock.now() + 1min;
    });
    s.schedule("gone", clock.now() + 1min);
    s.remove("gone");
    s.run_now("running");
    s.start();
    ASSERT_TRUE(test::eventually([&] { return in_run.load(); }, 10s));
    s.remove("running");
    release = true;
    ASSERT_TRUE(test::eventually([&] { return runs().size() == 1; }, 10s));
    settle(s);
    EXPECT_FALSE(s.info("running"));
    clock.advance(2min);
    settle(s);
    EXPECT_EQ(runs(), std::vector<std::string>{"running"});
}

// stop() reaches a running job through its stop token and joins the workers at once.
TEST_F(SchedulerTest, StopInterruptsARunningJobAndJoins) {
    std::atomic<bool> in_run{false}, saw_stop{false};
    Scheduler s(clock, 1, [&](const std::string&, std::stop_token stop) {
        in_run = true;
        // An interruptible wait on the clock, as an ACME poll does.
        saw_stop = !clock.sleep_for(24h, stop);
        return TimePoint::max();
    });
    s.run_now("a");
    s.start();
    ASSERT_TRUE(test::eventually([&] { return in_run.load(); }, 10s));
    auto before = std::chrono::steady_clock::now();
    s.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
    EXPECT_TRUE(saw_stop);
    s.run_now("a");  // nothing runs after stop
    s.start();
    EXPECT_EQ(clock.waiters(), 0);
}

// A failing run (an exception escaping the job) is retried a minute later, not lost.
TEST_F(SchedulerTest, AnExceptionIsRetriedAfterAMinute) {
    std::atomic<int> count{0};
    Scheduler s(clock, 1, [&](const std::string&, std::stop_token) -> TimePoint {
        ++count;
        throw std::runtime_error("boom");
    });
    s.run_now("a");
    EXPECT_EQ(s.run_pending(), 1u);
    EXPECT_EQ(s.info("a")->due, clock.now() + 1min);
}

TEST(FakeClock, SleepWakesWhenTimeIsAdvancedPastItsEnd) {
    FakeClock clock(SystemClock::now());
    std::atomic<bool> done{false};
    std::stop_source stop;
    std::thread sleeper([&] {
        clock.sleep_for(10min, stop.get_token());
        done = true;
    });
    ASSERT_TRUE(clock.await_waiters(1, 10s));
    clock.advance(9min);
    ASSERT_TRUE(clock.await_waiters(1, 10s));
    EXPECT_FALSE(done);
    clock.advance(1min);
    sleeper.join();
    EXPECT_TRUE(done);
}

}  // namespace
}  // namespace brokertls
