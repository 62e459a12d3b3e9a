#include <condition_variable>
#include <map>
#include <mutex>

#include "challenges/solver.hpp"

namespace brokertls {

// A waiter is released when its profile's generation moves past the one it saw on arrival, so
// one resume releases every order of that profile waiting at the time, and none that come
// later.
struct ManualGate::Impl {
    struct Profile {
        int waiters = 0;
        unsigned long generation = 0;
    };
    std::mutex mutex;
    std::condition_variable changed;
    std::map<std::string, Profile> profiles;
};

std::shared_ptr<ManualGate::Impl> ManualGate::make_impl() {
    return std::make_shared<Impl>();
}

bool ManualGate::resume(const std::string& profile) {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->profiles.find(profile);
    if (it == impl_->profiles.end() || it->second.waiters == 0) return false;
    ++it->second.generation;
    impl_->changed.notify_all();
    return true;
}

std::vector<std::string> ManualGate::waiting() const {
    std::lock_guard lock(impl_->mutex);
    std::vector<std::string> names;
    for (const auto& [name, state] : impl_->profiles) {
        if (state.waiters > 0) names.push_back(name);
    }
    return names;
}

bool ManualGate::wait(const std::string& profile, std::chrono::milliseconds timeout,
                      const std::function<bool()>& stopped) {
    using SteadyClock = std::chrono::steady_clock;
    constexpr std::chrono::milliseconds kStopCheck{100};
    auto deadline = SteadyClock::now() + timeout;
    std::unique_lock lock(impl_->mutex);
    auto& state = impl_->profiles[profile];  // map nodes stay put while others come and go
    const unsigned long arrived = state.generation;
    ++state.waiters;
    bool resumed = false;
    while (true) {
        auto now = SteadyClock::now();
        if (now >= deadline) break;
        auto slice = std::min<SteadyClock::duration>(kStopCheck, deadline - now);
        resumed = impl_->changed.wait_for(lock, slice, [&] { return state.generation != arrived; });
        if (resumed) break;
        // The predicate may take its own locks; never call it holding ours.
        lock.unlock();
        bool stop = stopped && stopped();
        lock.lock();
        if (stop) break;
    }
    resumed = resumed || state.generation != arrived;
    if (--state.waiters == 0) impl_->profiles.erase(profile);
    return resumed;
}

}  // namespace brokertls
