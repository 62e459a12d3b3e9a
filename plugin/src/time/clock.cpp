#include "brokertls/time/clock.hpp"

namespace brokertls {

namespace {

class SystemClockImpl final : public Clock {
  public:
    TimePoint now() const override { return SystemClock::now(); }
    bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv,
                    std::stop_token stop, TimePoint deadline,
                    const std::function<bool()>& done) override {
        // In slices of at most a day: a far deadline (TimePoint::max()) would overflow the
        // steady clock's arithmetic.
        constexpr auto kSlice = std::chrono::hours(24);
        while (!done() && !stop.stop_requested()) {
            TimePoint now = SystemClock::now();
            if (now >= deadline) break;
            auto left = deadline - now;
            auto slice =
                left > kSlice ? std::chrono::duration_cast<SystemClock::duration>(kSlice) : left;
            cv.wait_until(lock, stop, std::chrono::steady_clock::now() + slice, done);
        }
        return done();
    }
};

}  // namespace

Clock& Clock::system() {
    static SystemClockImpl clock;
    return clock;
}

bool Clock::sleep_for(std::chrono::milliseconds duration, std::stop_token stop) {
    std::mutex mutex;
    std::condition_variable_any cv;
    std::unique_lock lock(mutex);
    wait_until(lock, cv, stop, now() + duration, [] { return false; });
    return !stop.stop_requested();
}

FakeClock::FakeClock(TimePoint start) : now_(start.time_since_epoch().count()) {}

TimePoint FakeClock::now() const {
    return TimePoint(TimePoint::duration(now_.load()));
}

bool FakeClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable_any& cv,
                           std::stop_token stop, TimePoint deadline,
                           const std::function<bool()>& done) {
    // Registered without the caller's lock (advance() takes mutex_ and then the caller's):
    // done() is checked again under it before waiting, so no advance() is missed.
    lock.unlock();
    std::multiset<Waiter>::iterator me;
    {
        std::lock_guard guard(mutex_);
        me = waiters_.insert({lock.mutex(), &cv, deadline});
        waiters_changed_.notify_all();
    }
    lock.lock();
    cv.wait(lock, stop, [&] { return done() || now() >= deadline; });
    lock.unlock();
    {
        std::lock_guard guard(mutex_);
        waiters_.erase(me);
        waiters_changed_.notify_all();
    }
    lock.lock();
    return done();
}

void FakeClock::advance(std::chrono::nanoseconds by) {
    set(now() + std::chrono::duration_cast<TimePoint::duration>(by));
}

void FakeClock::set(TimePoint to) {
    std::lock_guard guard(mutex_);
    now_ = to.time_since_epoch().count();
    // Under the waiter's own mutex: it is either before its check of done() (and sees the new
    // time) or inside its wait (and gets this notify).
    for (const auto& w : waiters_) {
        std::lock_guard waiter(*w.mutex);
        w.cv->notify_all();
    }
}

int FakeClock::waiters() const {
    std::lock_guard guard(mutex_);
    return static_cast<int>(waiters_.size());
}

bool FakeClock::await_waiters(int count, std::chrono::milliseconds timeout, TimePoint by) const {
    std::unique_lock guard(mutex_);
    return waiters_changed_.wait_for(guard, timeout, [&] {
        int n = 0;
        for (const auto& w : waiters_)
            if (w.deadline <= by) ++n;
        return n >= count;
    });
}

}  // namespace brokertls
