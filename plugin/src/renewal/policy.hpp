#pragma once
// When to renew and when to retry: pure functions of the certificate, the clock and a random
// source, so every rule is unit-tested without waiting.
//   - renew with a third of the lifetime left (half for certificates of 10 days or less, like
//     Let's Encrypt's 6-day `shortlived`), or `renew_before` ahead of expiry when set and
//     shorter than the lifetime;
//   - an ARI window (RFC 9773) moves that to a random time inside the window, but never later
//     than the point where a twentieth of the lifetime remains;
//   - failures back off 1, 2, 5, 10, 20, 40, 80, 160, 320 min, then 6 h, each jittered by
//     ±20% (never above 6 h), and never sooner than a CA's Retry-After;
//   - periodic checks every check_interval ±50% (mod_md).
// The random spread keeps many brokers that started together (a fleet rollout, a CA outage)
// from hitting the CA in the same second.

#include <chrono>
#include <optional>
#include <random>

#include "acme/client.hpp"
#include "brokertls/crypto/time.hpp"

namespace brokertls {

using Random = std::mt19937_64;

TimePoint renewal_time(TimePoint not_before, TimePoint not_after,
                       std::chrono::seconds renew_before);

// The latest moment ARI may push a renewal to: a twentieth of the lifetime before expiry.
TimePoint ari_deadline(TimePoint not_before, TimePoint not_after);
// A random time in the ARI window, clamped to [now, ari_deadline]; a window already past
// means now.
TimePoint ari_renewal_time(const RenewalInfo& info, TimePoint not_before, TimePoint not_after,
                           TimePoint now, Random& random);

inline constexpr std::chrono::seconds max_failure_backoff = std::chrono::hours(6);
// The delay before retry number `failures` without jitter: 1, 2, 5, 10, 20, 40, 80, 160,
// 320 min, then max_failure_backoff. 0 for failures < 1 (nothing failed).
std::chrono::seconds failure_backoff_base(int failures);
// The delay before retry number `failures` (1 = after the first failure): the base ±20%,
// never above max_failure_backoff.
std::chrono::seconds failure_backoff(int failures, Random& random);
// now + backoff, or the CA's retry-after when that is later.
TimePoint retry_time(int failures, TimePoint now, std::optional<TimePoint> retry_after,
                     Random& random);

// now + interval × [0.5, 1.5).
TimePoint next_check(TimePoint now, std::chrono::seconds interval, Random& random);

}  // namespace brokertls
