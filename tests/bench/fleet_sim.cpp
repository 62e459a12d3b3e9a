// Fleet simulation of brokertls-service's RatePlanner (service/rate_plan.hpp) under Let's
// Encrypt's limits, on a simulated clock (event time: nothing sleeps, nothing is stepped).
//
//   fleet_sim [--devices N] [--renew-at F] [--jitter F] [--days D]
//
// N devices (default 100,000) all ask for their first certificate at t=0 (the first rollout):
// new orders, counted against the 300-per-3-h order window and the 50-per-week limit of their
// registered domain. A queued device comes back exactly at its retry_at. Then D (365) days of
// steady state after the rollout: each device asks for renewal at F (0.5) of its certificate's
// lifetime plus a random delay of up to `jitter` (0.05) of it (offline devices, back-off); its
// order carries ARI `replaces`, so the planner must admit it at once. Per scenario:
//   (a) one registered domain (example.com)            (b) public_suffixes devices.example.com
// for 45-day and 6-day certificates. Printed: the rollout's length (simulated, and as the
// planner's status() predicted it at t=0), renewals per day (mean, max), renewals later than a
// third of the lifetime left (must be 0), the least lifetime left at a renewal, and the cost of
// a decision.
//
// Renewals before the steady-state window are not simulated one by one: exempt orders never
// touch the planner's windows or queue (a device holding a certificate is not queued), so they
// cannot change the rollout. For (a) that is ~2000 weeks; each device's renewal chain starts
// from its last due time before the window, computed.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "service/rate_plan.hpp"

namespace {

using namespace brokertls;
using std::chrono::duration;
using std::chrono::hours;
using Clock = std::chrono::steady_clock;

struct Options {
    int devices = 100'000;
    double renew_at = 0.5;
    double jitter = 0.05;
    int days = 365;
};

struct Result {
    double rollout_days = 0;
    double predicted_days = 0;
    double renewals_mean = 0;
    long renewals_max = 0;
    long late = 0;
    long refused_renewals = 0;
    double min_left_days = 0;
    double status_ms = 0;       // status() with the whole fleet queued
    double us_per_order = 0;    // decide() for a new order (admitted or queued), mean
    double us_per_renewal = 0;  // decide() for an ARI renewal, mean
    double wall_s = 0;
};

double in_days(SystemClock::duration d) {
    return duration<double, std::ratio<86400>>(d).count();
}

IssuanceRequest request(int device, TimePoint needed_by, bool replaces) {
    const std::string id = "d" + std::to_string(device);
    return {id, {id + ".devices.example.com"}, replaces, needed_by};
}

Result simulate(const Options& o, const RateLimits& limits, SystemClock::duration lifetime) {
    const auto wall0 = Clock::now();
    const TimePoint t0 = from_iso8601("2026-12-07T00:00:00Z");
    RatePlanner planner(limits);
    Result r;
    Clock::duration in_planner{};
    long decisions = 0;

    // The first rollout: every device asks at t0 and comes back at its retry_at until admitted.
    using Event = std::pair<TimePoint, int>;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> events;
    for (int d = 0; d < o.devices; ++d) events.emplace(t0, d);
    std::vector<TimePoint> issued(static_cast<std::size_t>(o.devices));
    bool predicted = false;
    TimePoint rollout_end = t0;
    while (!events.empty()) {
        auto [now, d] = events.top();
        events.pop();
        if (!predicted && now > t0) {
            // Everybody has asked once: what the planner expects for the backlog.
            const auto c0 = Clock::now();
            r.predicted_days = in_days(planner.status(t0).backlog_clears - t0);
            r.status_ms = duration<double, std::milli>(Clock::now() - c0).count();
            predicted = true;
        }
        const IssuanceRequest first = request(d, t0, false);
        const auto c0 = Clock::now();
        const RateDecision decision = planner.decide(first, now);
        in_planner += Clock::now() - c0;
        ++decisions;
        if (decision.outcome == RateDecision::Outcome::Admitted) {
            issued[static_cast<std::size_t>(d)] = now;
            rollout_end = std::max(rollout_end, now);
        } else {
            events.emplace(decision.retry_at, d);
        }
    }
    r.rollout_days = in_days(rollout_end - t0);
    r.us_per_order =
        duration<double, std::micro>(in_planner).count() / static_cast<double>(decisions);
    in_planner = {};
    decisions = 0;

    // Steady state: renewals due in [rollout_end, rollout_end + days).
    const auto interval = std::chrono::duration_cast<SystemClock::duration>(lifetime * o.renew_at);
    const auto max_jitter = std::chrono::duration_cast<SystemClock::duration>(lifetime * o.jitter);
    const TimePoint window_end = rollout_end + Days(o.days);
    std::mt19937_64 random(42);
    std::uniform_int_distribution<SystemClock::rep> jitter(0, max_jitter.count());
    // Per device: when its current certificate was issued; the event is its renewal request.
    std::vector<TimePoint> current(issued);
    for (int d = 0; d < o.devices; ++d) {
        TimePoint& cert = current[static_cast<std::size_t>(d)];
        if (cert + interval < rollout_end) cert += ((rollout_end - cert) / interval) * interval;
        events.emplace(cert + interval + SystemClock::duration(jitter(random)), d);
    }
    std::vector<long> per_day(static_cast<std::size_t>(o.days), 0);
    SystemClock::duration min_left = lifetime;
    while (!events.empty() && events.top().first < window_end) {
        auto [now, d] = events.top();
        events.pop();
        TimePoint& cert = current[static_cast<std::size_t>(d)];
        const IssuanceRequest renewal = request(d, now, true);
        const auto c0 = Clock::now();
        const RateDecision decision = planner.decide(renewal, now);
        in_planner += Clock::now() - c0;
        ++decisions;
        if (decision.outcome != RateDecision::Outcome::Admitted) ++r.refused_renewals;
        const auto left = cert + lifetime - now;
        min_left = std::min(min_left, left);
        if (left < lifetime / 3) ++r.late;
        if (now >= rollout_end) ++per_day[static_cast<std::size_t>(in_days(now - rollout_end))];
        cert = now;
        events.emplace(now + interval + SystemClock::duration(jitter(random)), d);
    }
    long total = 0;
    for (long n : per_day) {
        total += n;
        r.renewals_max = std::max(r.renewals_max, n);
    }
    r.renewals_mean = static_cast<double>(total) / o.days;
    r.min_left_days = in_days(min_left);
    r.us_per_renewal =
        duration<double, std::micro>(in_planner).count() / static_cast<double>(decisions);
    r.wall_s = duration<double>(Clock::now() - wall0).count();
    return r;
}

bool option(int& i, int argc, char** argv, std::string_view name, double& value) {
    if (argv[i] != name || i + 1 >= argc) return false;
    value = std::atof(argv[++i]);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        double v = 0;
        if (option(i, argc, argv, "--devices", v))
            o.devices = static_cast<int>(v);
        else if (option(i, argc, argv, "--renew-at", v))
            o.renew_at = v;
        else if (option(i, argc, argv, "--jitter", v))
            o.jitter = v;
        else if (option(i, argc, argv, "--days", v))
            o.days = static_cast<int>(v);
        else {
            std::fprintf(stderr,
                         "usage: fleet_sim [--devices N] [--renew-at F] [--jitter F] [--days D]\n");
            return 2;
        }
    }
    if (o.devices < 1 || o.days < 1 || o.renew_at <= 0 || o.renew_at >= 1 || o.jitter < 0) {
        std::fprintf(stderr, "fleet_sim: devices and days >= 1, 0 < renew-at < 1, jitter >= 0\n");
        return 2;
    }
    std::printf(
        "%d devices, first rollout at t=0, renewal at %.2f of the lifetime + up to %.2f, "
        "%d days of steady state\n\n",
        o.devices, o.renew_at, o.jitter, o.days);
    std::printf("%-22s %5s %10s %10s %9s %9s %6s %5s %9s %8s %8s %6s\n", "registered domain",
                "life", "rollout", "predicted", "status", "renew/day", "max", "late", "min left",
                "us/order", "us/renew", "wall");
    struct Scenario {
        const char* name;
        std::vector<std::string> public_suffixes;
    };
    const Scenario scenarios[] = {{"(a) one: example.com", {}},
                                  {"(b) one per device", {"devices.example.com"}}};
    const std::pair<const char*, SystemClock::duration> lifetimes[] = {{"45 d", Days(45)},
                                                                       {"6 d", hours(6 * 24)}};
    long late = 0, refused = 0;
    for (const auto& [life_name, lifetime] : lifetimes) {
        for (const Scenario& s : scenarios) {
            RateLimits limits;
            limits.public_suffixes = s.public_suffixes;
            const Result r = simulate(o, limits, lifetime);
            late += r.late;
            refused += r.refused_renewals;
            char rollout[32], predicted[32];
            auto span = [](char* out, double days) {
                if (days >= 70)
                    std::snprintf(out, 32, "%.1f wk", days / 7);
                else
                    std::snprintf(out, 32, "%.2f d", days);
            };
            span(rollout, r.rollout_days);
            span(predicted, r.predicted_days);
            std::printf(
                "%-22s %5s %10s %10s %6.0f ms %9.0f %6ld %5ld %7.2f d %8.2f %8.2f %4.1f s\n",
                s.name, life_name, rollout, predicted, r.status_ms, r.renewals_mean, r.renewals_max,
                r.late, r.min_left_days, r.us_per_order, r.us_per_renewal, r.wall_s);
        }
    }
    std::printf(
        "\nrollout: first order at t=0 to the last device's first certificate; predicted: "
        "RatePlanner::status().backlog_clears at t=0 (status: its run time)\n"
        "renew/day, max: renewals per day in the steady state; late: renewals with less than a "
        "third of the lifetime left; min left: the least lifetime left at a renewal\n"
        "us/order, us/renew: mean time of RatePlanner::decide for a new order, for an ARI "
        "renewal; wall: the scenario's run time\n");
    if (late != 0 || refused != 0) {
        std::printf("FAIL: %ld late renewals, %ld renewals not admitted\n", late, refused);
        return 1;
    }
    return 0;
}
