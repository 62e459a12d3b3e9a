#pragma once
// When to run which job: one due time per job, a queue that holds each job at most once, and a
// fixed pool of workers that run what is due. It knows nothing of certificates: a job is a name,
// and running it returns when it wants to run next. Time comes from an injected Clock, so every
// path (due, run now, stop, a reschedule while running) is tested on a FakeClock.

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "brokertls/time/clock.hpp"

namespace brokertls {

class Scheduler {
  public:
    // Runs job `name` and returns when it is due next (TimePoint::max(): only when asked).
    // Called on a worker thread, never twice at once for one name; `stop` is requested by
    // stop(). An exception counts as "look again in a minute" (the caller's run reports its
    // own failures; this is the last line).
    using Run = std::function<TimePoint(const std::string& name, std::stop_token stop)>;

    Scheduler(Clock& clock, int workers, Run run);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    void start();  // the workers; idempotent, and nothing after stop()
    void stop();   // requests stop (running jobs see it) and joins the workers

    // Adds job `name` due at `at`, or moves it there. A running job's own answer decides its
    // next time, unless run_now() came in between.
    void schedule(const std::string& name, TimePoint at);
    // Runs `name` as soon as a worker is free, or again right after its current run. Urgent
    // work (files that changed, an operator's command) goes before a backlog of routine
    // checks (the check of every profile after a start).
    enum class Priority { Routine, Urgent };
    void run_now(const std::string& name, Priority priority = Priority::Routine);
    // Forgets `name`; a run in progress finishes and its answer is dropped.
    void remove(const std::string& name);
    // Runs, on the calling thread, every job queued or due now, each at most once: for work
    // that must be done before the workers start (start-up) and for tests. Returns how many.
    std::size_t run_pending();

    struct JobInfo {
        TimePoint due = TimePoint::max();
        bool queued = false, running = false;
    };
    std::optional<JobInfo> info(const std::string& name) const;
    // True when nothing runs, nothing is queued and nothing is due at or before `until`.
    bool idle(TimePoint until) const;

  private:
    struct Entry {
        TimePoint due = TimePoint::max();  // in timeline_ when not queued, running or max
        bool queued = false, running = false;
        bool again = false;    // run_now() while running
        bool removed = false;  // remove() while running
    };
    void work(std::stop_token stop);
    void queue(const std::string& name, Entry& e, bool urgent = false);  // with mutex_
    void unschedule(const std::string& name, Entry& e);
    void promote_due(TimePoint now);
    std::optional<std::string> take();
    void finish(const std::string& name, TimePoint next);
    TimePoint run_one(const std::string& name, std::stop_token stop);

    Clock& clock_;
    int worker_count_;
    Run run_;
    mutable std::mutex mutex_;
    std::condition_variable_any cv_;
    std::map<std::string, Entry> entries_;
    std::set<std::pair<TimePoint, std::string>> timeline_;
    std::deque<std::string> queue_;
    std::stop_source stop_;
    std::vector<std::thread> workers_;
};

}  // namespace brokertls
