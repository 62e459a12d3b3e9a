#include "service/request_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace brokertls {

RequestLimiter::RequestLimiter(int per_minute, std::size_t max_keys)
    : per_minute_(per_minute), max_keys_(max_keys) {}

double RequestLimiter::refill(Bucket& b, TimePoint now) const {
    double seconds = std::chrono::duration<double>(now - b.updated).count();
    if (seconds > 0) {
        b.tokens = std::min<double>(per_minute_, b.tokens + seconds * per_minute_ / 60.0);
        b.updated = now;
    }
    return b.tokens;
}

std::optional<std::chrono::seconds> RequestLimiter::admit(const std::string& key, TimePoint now) {
    if (per_minute_ <= 0) return std::nullopt;
    std::lock_guard lock(mutex_);
    if (buckets_.size() >= max_keys_ && !buckets_.count(key)) {
        // Full buckets hold nothing worth remembering.
        for (auto it = buckets_.begin(); it != buckets_.end();)
            it = refill(it->second, now) >= per_minute_ ? buckets_.erase(it) : std::next(it);
        // Still full: a flood of distinct keys; the newcomer waits like an empty bucket would.
        if (buckets_.size() >= max_keys_) return std::chrono::seconds(60 / per_minute_ + 1);
    }
    auto [it, added] = buckets_.try_emplace(key, Bucket{static_cast<double>(per_minute_), now});
    if (refill(it->second, now) >= 1.0) {
        it->second.tokens -= 1.0;
        return std::nullopt;
    }
    double wait = (1.0 - it->second.tokens) * 60.0 / per_minute_;
    return std::chrono::seconds(static_cast<long>(std::ceil(wait)));
}

}  // namespace brokertls
