#pragma once
// Requests per minute per key (a peer address, a client): a token bucket each, so a burst up to
// the per-minute figure passes and a steady flood is held to it. Bounded memory: buckets that
// have refilled are forgotten when the table grows past its cap.

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "brokertls/crypto/time.hpp"

namespace brokertls {

class RequestLimiter {
  public:
    // `per_minute` 0: no limit.
    explicit RequestLimiter(int per_minute, std::size_t max_keys = 100'000);
    // nullopt when the request may go on (and it is counted); else how long to wait.
    std::optional<std::chrono::seconds> admit(const std::string& key, TimePoint now);

  private:
    struct Bucket {
        double tokens;
        TimePoint updated;
    };
    double refill(Bucket& b, TimePoint now) const;
    int per_minute_;
    std::size_t max_keys_;
    std::mutex mutex_;
    std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace brokertls
