#pragma once
// Where brokertls reads the time and waits for it. Code that schedules (renewals, retries,
// backoff, polls) takes a Clock& instead of reading the system clock, so tests drive it with a
// FakeClock: time moves only when the test says so, and every wait wakes at once when it does.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <stop_token>

#include "brokertls/crypto/time.hpp"

namespace brokertls {

class Clock {
  public:
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
    // Waits on `cv` (with `lock` held on entry and on return) until `done()` is true, `stop` is
    // requested or this clock reaches `deadline`; returns done(). `cv` is notified by whoever
    // changes what done() reads, and by stop. Waiting is measured on a monotonic clock, so a
    // step of the wall clock neither cuts a wait short nor stretches it.
    virtual bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv,
                            std::stop_token stop, TimePoint deadline,
                            const std::function<bool()>& done) = 0;
    // Sleeps for `duration` unless `stop` is requested first; false when stopped.
    bool sleep_for(std::chrono::milliseconds duration, std::stop_token stop);

    // The system clock.
    static Clock& system();
};

// A clock for tests: starts at `start` and moves only with advance() or set(), which wake every
// waiter so it sees the new time.
class FakeClock final : public Clock {
  public:
    explicit FakeClock(TimePoint start);
    TimePoint now() const override;
    bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv,
                    std::stop_token stop, TimePoint deadline,
                    const std::function<bool()>& done) override;
    void advance(std::chrono::nanoseconds by);
    void set(TimePoint to);
    // How many threads wait on this clock right now (a test advances once its worker waits).
    int waiters() const;
    // Blocks (in real time, at most `timeout`) until at least `count` threads wait on this
    // clock with a deadline at or before `by`; false on timeout. Lets a test advance time only
    // once the code under test has reached its wait, without sleeping.
    bool await_waiters(int count, std::chrono::milliseconds timeout,
                       TimePoint by = TimePoint::max()) const;

  private:
    struct Waiter {
        std::mutex* mutex;
        std::condition_variable_any* cv;
        TimePoint deadline;
        bool operator<(const Waiter& o) const { return cv < o.cv; }
    };
    // now() is read by waiters that hold their own mutex, while advance() holds mutex_ and takes
    // theirs to notify: so now() takes no lock.
    std::atomic<TimePoint::rep> now_;
    mutable std::mutex mutex_;
    mutable std::condition_variable waiters_changed_;
    std::multiset<Waiter> waiters_;
};

}  // namespace brokertls
