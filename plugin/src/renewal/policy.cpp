#include "renewal/policy.hpp"

#include <algorithm>
#include <array>

namespace brokertls {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// A uniformly random duration in [low, high] (in clock ticks, so no precision is lost).
SystemClock::duration uniform_between(SystemClock::duration low, SystemClock::duration high,
                                      Random& random) {
    if (high <= low) return low;
    std::uniform_int_distribution<SystemClock::rep> pick(low.count(), high.count());
    return SystemClock::duration(pick(random));
}

}  // namespace

TimePoint renewal_time(TimePoint not_before, TimePoint not_after,
                       std::chrono::seconds renew_before) {
    auto lifetime = not_after - not_before;
    // A renew_before as long as the lifetime would make every new certificate due at once
    // (renewing in a loop until the CA rate-limits): a third of the lifetime instead.
    if (renew_before.count() > 0 && renew_before < lifetime) return not_after - renew_before;
    // Short-lived certificates (6-day `shortlived`) get half their lifetime as margin.
    if (lifetime <= std::chrono::hours(24 * 10)) return not_after - lifetime / 2;
    return not_after - lifetime / 3;
}

TimePoint ari_deadline(TimePoint not_before, TimePoint not_after) {
    return not_after - (not_after - not_before) / 20;
}

TimePoint ari_renewal_time(const RenewalInfo& info, TimePoint not_before, TimePoint not_after,
                           TimePoint now, Random& random) {
    if (info.window_end <= now) return now;
    // RFC 9773 §4.2: a uniform time inside the window; one that is already past means now.
    TimePoint start = info.window_start;
    TimePoint end = std::max(info.window_start, info.window_end);
    TimePoint chosen = start + uniform_between(SystemClock::duration::zero(), end - start, random);
    // A CA suggesting a window too close to expiry must not leave us without time to retry.
    chosen = std::min(chosen, ari_deadline(not_before, not_after));
    return std::max(chosen, now);
}

std::chrono::seconds failure_backoff_base(int failures) {
    static constexpr std::array<minutes, 9> steps = {minutes(1),  minutes(2),   minutes(5),
                                                     minutes(10), minutes(20),  minutes(40),
                                                     minutes(80), minutes(160), minutes(320)};
    if (failures < 1) return seconds(0);
    if (static_cast<std::size_t>(failures) > steps.size()) return max_failure_backoff;
    return steps[static_cast<std::size_t>(failures - 1)];
}

std::chrono::seconds failure_backoff(int failures, Random& random) {
    seconds base = failure_backoff_base(failures);
    // ±20%: [0.8 × base, 1.2 × base)
    auto low = std::chrono::duration_cast<SystemClock::duration>(base * 4 / 5);
    auto high =
        std::chrono::duration_cast<SystemClock::duration>(base * 6 / 5) - SystemClock::duration(1);
    auto jittered = std::chrono::duration_cast<seconds>(uniform_between(low, high, random));
    return std::min(jittered, max_failure_backoff);
}

TimePoint retry_time(int failures, TimePoint now, std::optional<TimePoint> retry_after,
                     Random& random) {
    TimePoint backoff = now + failure_backoff(failures, random);
    return retry_after ? std::max(backoff, *retry_after) : backoff;
}

TimePoint next_check(TimePoint now, std::chrono::seconds interval, Random& random) {
    auto span = std::chrono::duration_cast<SystemClock::duration>(interval);
    // [0.5, 1.5) × interval
    return now + uniform_between(span / 2, span / 2 + span - SystemClock::duration(1), random);
}

}  // namespace brokertls
