#include "schedule/scheduler.hpp"

#include <utility>

#include "threads.hpp"

namespace brokertls {

Scheduler::Scheduler(Clock& clock, int workers, Run run)
    : clock_(clock), worker_count_(std::max(1, workers)), run_(std::move(run)) {}

Scheduler::~Scheduler() {
    stop();
}

void Scheduler::start() {
    std::lock_guard lock(mutex_);
    if (!workers_.empty() || stop_.stop_requested()) return;
    for (int i = 0; i < worker_count_; ++i)
        workers_.emplace_back([this, stop = stop_.get_token()] {
            block_signals();
            work(stop);
        });
}

void Scheduler::stop() {
    stop_.request_stop();  // wakes every wait on cv_ (condition_variable_any with a stop token)
    std::vector<std::thread> workers;
    {
        std::lock_guard lock(mutex_);
        workers.swap(workers_);
    }
    for (auto& w : workers) w.join();
}

void Scheduler::unschedule(const std::string& name, Entry& e) {
    if (!e.queued && !e.running && e.due != TimePoint::max()) timeline_.erase({e.due, name});
}

void Scheduler::queue(const std::string& name, Entry& e, bool urgent) {
    unschedule(name, e);
    e.queued = true;
    if (urgent)
        queue_.push_front(name);
    else
        queue_.push_back(name);
}

void Scheduler::schedule(const std::string& name, TimePoint at) {
    std::lock_guard lock(mutex_);
    Entry& e = entries_[name];
    e.removed = false;
    if (e.queued || e.running) return;
    unschedule(name, e);
    e.due = at;
    if (at != TimePoint::max()) timeline_.insert({at, name});
    cv_.notify_all();
}

void Scheduler::run_now(const std::string& name, Priority priority) {
    std::lock_guard lock(mutex_);
    Entry& e = entries_[name];
    e.removed = false;
    bool urgent = priority == Priority::Urgent;
    if (e.running) {
        e.again = true;
    } else if (!e.queued) {
        queue(name, e, urgent);
        cv_.notify_all();
    } else if (urgent) {
        // Queued behind routine work: moved to the front.
        std::erase(queue_, name);
        queue_.push_front(name);
    }
}

void Scheduler::remove(const std::string& name) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return;
    if (it->second.running) {
        it->second.removed = true;
        it->second.again = false;
        return;
    }
    unschedule(name, it->second);
    entries_.erase(it);  // a queued name left in queue_ is skipped by take()
}

void Scheduler::promote_due(TimePoint now) {
    while (!timeline_.empty() && timeline_.begin()->first <= now) {
        std::string name = timeline_.begin()->second;
        timeline_.erase(timeline_.begin());
        Entry& e = entries_.at(name);
        e.due = TimePoint::max();
        e.queued = true;
        queue_.push_back(std::move(name));
    }
}

std::optional<std::string> Scheduler::take() {
    while (!queue_.empty()) {
        std::string name = std::move(queue_.front());
        queue_.pop_front();
        auto it = entries_.find(name);
        if (it == entries_.end() || !it->second.queued) continue;  // removed meanwhile
        it->second.queued = false;
        it->second.running = true;
        return name;
    }
    return std::nullopt;
}

void Scheduler::finish(const std::string& name, TimePoint next) {
    auto it = entries_.find(name);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    e.running = false;
    if (e.removed) {
        entries_.erase(it);
    } else if (std::exchange(e.again, false)) {
        queue(name, e);
    } else {
        e.due = next;
        if (next != TimePoint::max()) timeline_.insert({next, name});
    }
    cv_.notify_all();
}

TimePoint Scheduler::run_one(const std::string& name, std::stop_token stop) {
    try {
        return run_(name, stop);
    } catch (...) {
        return clock_.now() + std::chrono::minutes(1);
    }
}

void Scheduler::work(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    while (!stop.stop_requested()) {
        promote_due(clock_.now());
        if (auto name = take()) {
            lock.unlock();
            TimePoint next = run_one(*name, stop);
            lock.lock();
            finish(*name, next);
            continue;
        }
        TimePoint deadline = timeline_.empty() ? TimePoint::max() : timeline_.begin()->first;
        clock_.wait_until(lock, cv_, stop, deadline, [&] {
            return !queue_.empty() || (!timeline_.empty() && timeline_.begin()->first < deadline);
        });
    }
}

std::size_t Scheduler::run_pending() {
    std::set<std::string> ran;
    std::unique_lock lock(mutex_);
    promote_due(clock_.now());
    std::deque<std::string> later;  // ran once already in this call
    while (auto name = take()) {
        if (ran.count(*name)) {
            // Due again at once: leave it queued for the workers.
            Entry& e = entries_.at(*name);
            e.running = false;
            e.queued = true;
            later.push_back(*name);
            continue;
        }
        ran.insert(*name);
        lock.unlock();
        TimePoint next = run_one(*name, stop_.get_token());
        lock.lock();
        finish(*name, next);
        promote_due(clock_.now());
    }
    queue_.insert(queue_.end(), later.begin(), later.end());
    return ran.size();
}

std::optional<Scheduler::JobInfo> Scheduler::info(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(name);
    if (it == entries_.end() || it->second.removed) return std::nullopt;
    return JobInfo{it->second.due, it->second.queued, it->second.running};
}

bool Scheduler::idle(TimePoint until) const {
    std::lock_guard lock(mutex_);
    for (const auto& [name, e] : entries_)
        if (e.running || e.queued) return false;
    return timeline_.empty() || timeline_.begin()->first > until;
}

}  // namespace brokertls
