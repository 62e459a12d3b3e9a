#include "brokertls/renewal/policy.hpp"

namespace brokertls {

TimePoint renewal_time(TimePoint not_before, TimePoint not_after,
                       std::chrono::seconds renew_before) {
    if (renew_before.count() > 0) return not_after - renew_before;
    auto lifetime = not_after - not_before;
    // Short-lived certificates (6-day `shortlived`) get half their lifetime as margin.
    if (lifetime <= std::chrono::hours(24 * 10)) return not_after - lifetime / 2;
    return not_after - lifetime / 3;
}

}  // namespace brokertls
