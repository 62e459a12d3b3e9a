#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "brokertls/error.hpp"
#include "service/rate_plan.hpp"

namespace brokertls {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
using Outcome = RateDecision::Outcome;

const TimePoint t0 = from_iso8601("2026-12-01T00:00:00Z");
const Days week(7);

// Every device its own registered domain: only the order window binds.
RateLimits per_device_domains() {
    RateLimits limits;
    limits.public_suffixes = {"devices.example.com"};
    return limits;
}

IssuanceRequest device(int n, TimePoint needed_by, bool replaces = false) {
    const std::string id = "d" + std::to_string(n);
    return {id, {id + ".devices.example.com"}, replaces, needed_by};
}

// The message of the Error that from_json throws, "" if it throws none.
std::string from_json_error(const nlohmann::json& state) {
    try {
        RatePlanner::from_json(state, RateLimits{});
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Input);
        return e.what();
    }
    return "";
}

TEST(RatePlannerDomain, LastTwoLabelsUnlessAPublicSuffixIsDeclared) {
    EXPECT_EQ(registered_domain("x7k2p.devices.example.com", {}), "example.com");
    EXPECT_EQ(registered_domain("X7K2P.Devices.Example.COM.", {}), "example.com");
    EXPECT_EQ(registered_domain("*.devices.example.com", {}), "example.com");
    EXPECT_EQ(registered_domain("example.com", {}), "example.com");
    EXPECT_EQ(registered_domain("localhost", {}), "localhost");
    const std::vector<std::string> suffixes{"example.com", "devices.example.com"};
    EXPECT_EQ(registered_domain("x7k2p.devices.example.com", suffixes),
              "x7k2p.devices.example.com");
    EXPECT_EQ(registered_domain("*.x7k2p.devices.example.com", suffixes),
              "x7k2p.devices.example.com");
    EXPECT_EQ(registered_domain("a.b.x7k2p.devices.example.com", suffixes),
              "x7k2p.devices.example.com");
    EXPECT_EQ(registered_domain("www.example.com", suffixes), "www.example.com");
    // A declared suffix matches whole labels only.
    EXPECT_EQ(registered_domain("a.mydevices.example.com", {"devices.example.com"}), "example.com");
}

TEST(RatePlannerOrders, The301stOrderWaitsForTheOldestToLeaveTheWindow) {
    RatePlanner planner(per_device_domains());
    for (int i = 0; i < 300; ++i)
        ASSERT_EQ(planner.decide(device(i, t0), t0 + seconds(10 * i)).outcome, Outcome::Admitted);
    const TimePoint later = t0 + hours(1);
    RateDecision d = planner.decide(device(300, later), later);
    EXPECT_EQ(d.outcome, Outcome::Queued);
    EXPECT_EQ(d.retry_at, t0 + hours(3));
    EXPECT_EQ(d.position, 1u);
    // The next one waits for the second oldest.
    d = planner.decide(device(301, later), later);
    EXPECT_EQ(d.retry_at, t0 + hours(3) + seconds(10));
    EXPECT_EQ(d.position, 2u);

    EXPECT_EQ(planner.decide(device(300, later), t0 + hours(3) - seconds(1)).outcome,
              Outcome::Queued);
    EXPECT_EQ(planner.decide(device(300, later), t0 + hours(3)).outcome, Outcome::Admitted);
    RateStatus status = planner.status(t0 + hours(3));
    EXPECT_EQ(status.orders_used, 300);
    EXPECT_EQ(status.orders_left, 0);
    EXPECT_EQ(status.queue_length, 1u);
}

TEST(RatePlannerOrders, RenewalsWithReplacesNeverQueueAndCountNothing) {
    RatePlanner planner(per_device_domains());
    for (int i = 0; i < 300; ++i) planner.decide(device(i, t0), t0);
    ASSERT_EQ(planner.decide(device(300, t0), t0).outcome, Outcome::Queued);
    for (int i = 1000; i < 2000; ++i)
        EXPECT_EQ(planner.decide(device(i, t0, true), t0 + seconds(i)).outcome, Outcome::Admitted);
    // A queued device that renews with `replaces` leaves the queue.
    EXPECT_EQ(planner.decide(device(300, t0, true), t0 + hours(1)).outcome, Outcome::Admitted);
    RateStatus status = planner.status(t0 + hours(1));
    EXPECT_EQ(status.orders_used, 300);
    EXPECT_EQ(status.queue_length, 0u);
    // Renewals of one exact name set are not limited either (5 per week otherwise).
    RatePlanner same_names(RateLimits{});
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(same_names.decide({"dev", {"dev.example.com"}, true, t0}, t0).outcome,
                  Outcome::Admitted);
}

TEST(RatePlannerDomains, FiftyCertificatesPerRegisteredDomainPerWeek) {
    RatePlanner planner(RateLimits{});
    for (int i = 0; i < 50; ++i)
        ASSERT_EQ(planner.decide(device(i, t0), t0 + hours(i)).outcome, Outcome::Admitted);
    RateDecision d = planner.decide(device(50, t0 + hours(50)), t0 + hours(50));
    EXPECT_EQ(d.outcome, Outcome::Queued);
    EXPECT_EQ(d.retry_at, t0 + week);
    // Another registered domain is not held back by example.com's queue.
    EXPECT_EQ(planner.decide({"o", {"o.other.org"}, false, t0}, t0 + hours(50)).outcome,
              Outcome::Admitted);
    RateStatus status = planner.status(t0 + hours(50));
    ASSERT_EQ(status.busiest_domains.size(), 2u);
    EXPECT_EQ(status.busiest_domains[0].domain, "example.com");
    EXPECT_EQ(status.busiest_domains[0].used, 50);
    EXPECT_EQ(status.busiest_domains[0].queued, 1u);
    EXPECT_EQ(status.busiest_domains[1].domain, "other.org");
    EXPECT_EQ(planner.decide(device(50, t0), t0 + week).outcome, Outcome::Admitted);
}

TEST(RatePlannerDomains, PublicSuffixesMakeEachDeviceItsOwnDomain) {
    RatePlanner shared(RateLimits{});
    RatePlanner separate(per_device_domains());
    int shared_admitted = 0, separate_admitted = 0;
    for (int i = 0; i < 120; ++i) {
        shared_admitted += shared.decide(device(i, t0), t0).outcome == Outcome::Admitted;
        separate_admitted += separate.decide(device(i, t0), t0).outcome == Outcome::Admitted;
    }
    EXPECT_EQ(shared_admitted, 50);
    EXPECT_EQ(separate_admitted, 120);
}

TEST(RatePlannerDomains, AQueueBeyondADomainsWeekDoesNotHoldBackOtherDomains) {
    RateLimits limits;
    limits.orders_per_window = 60;
    RatePlanner planner(limits);
    // 50 admitted and 100 waiting for next week, all of example.com.
    for (int i = 0; i < 150; ++i) planner.decide(device(i, t0), t0);
    EXPECT_EQ(planner.status(t0).queue_length, 100u);
    // 10 order slots are left; example.com's 100 cannot use them, so they go to other domains,
    // and the 11th waits for the order window.
    for (int i = 0; i < 10; ++i) {
        const std::string name = "n" + std::to_string(i) + ".other" + std::to_string(i) + ".org";
        EXPECT_EQ(planner.decide({name, {name}, false, t0}, t0).outcome, Outcome::Admitted);
    }
    RateDecision d = planner.decide({"late", {"late.late.org"}, false, t0}, t0);
    EXPECT_EQ(d.outcome, Outcome::Queued);
    EXPECT_EQ(d.retry_at, t0 + hours(3));
}

TEST(RatePlannerQueue, ALaterNeedThatRetriesFirstDoesNotJumpTheHead) {
    RateLimits limits = per_device_domains();
    limits.orders_per_window = 1;
    RatePlanner planner(limits);
    ASSERT_EQ(planner.decide(device(0, t0), t0).outcome, Outcome::Admitted);
    // Device 1 arrives first but needs its certificate later than device 2.
    RateDecision late = planner.decide(device(1, t0 + Days(10)), t0);
    RateDecision soon = planner.decide(device(2, t0 + Days(5)), t0 + seconds(1));
    EXPECT_EQ(late.position, 1u);
    EXPECT_EQ(soon.position, 1u);
    EXPECT_EQ(soon.retry_at, t0 + hours(3));
    // The window has room for one: device 1 comes back first and still waits.
    late = planner.decide(device(1, t0 + Days(10)), t0 + hours(3));
    EXPECT_EQ(late.outcome, Outcome::Queued);
    EXPECT_EQ(late.position, 2u);
    EXPECT_EQ(late.retry_at, t0 + hours(6));
    EXPECT_EQ(planner.decide(device(2, t0 + Days(5)), t0 + hours(3)).outcome, Outcome::Admitted);
    EXPECT_EQ(planner.decide(device(1, t0 + Days(10)), t0 + hours(6)).outcome, Outcome::Admitted);
}

TEST(RatePlannerQueue, ARequesterThatStaysAwayIsDropped) {
    RateLimits limits = per_device_domains();
    limits.orders_per_window = 1;
    limits.order_window = hours(1);
    RatePlanner planner(limits);
    planner.decide(device(0, t0), t0);
    // Told t0+1h and t0+2h: dropped when not back by twice that plus an hour.
    EXPECT_EQ(planner.decide(device(1, t0), t0).retry_at, t0 + hours(1));
    EXPECT_EQ(planner.decide(device(2, t0), t0).retry_at, t0 + hours(2));
    // Device 2 comes back on time, behind device 1, which does not.
    RateDecision d = planner.decide(device(2, t0), t0 + hours(2));
    EXPECT_EQ(d.outcome, Outcome::Queued);
    EXPECT_EQ(d.position, 2u);
    EXPECT_EQ(planner.status(t0 + hours(3) - seconds(1)).queue_length, 2u);
    EXPECT_EQ(planner.status(t0 + hours(3)).queue_length, 1u);
    EXPECT_EQ(planner.decide(device(2, t0), t0 + hours(3)).outcome, Outcome::Admitted);
    // Device 1 comes back late: a newcomer, behind one that arrived meanwhile.
    planner.decide(device(3, t0), t0 + hours(3));
    EXPECT_EQ(planner.decide(device(1, t0), t0 + hours(3)).position, 2u);
}

TEST(RatePlannerQueue, AFullQueueRefusesNewcomersAndKeepsItsEntries) {
    RateLimits limits = per_device_domains();
    limits.orders_per_window = 1;
    limits.max_queue = 2;
    RatePlanner planner(limits);
    planner.decide(device(0, t0), t0);
    EXPECT_EQ(planner.decide(device(1, t0), t0).outcome, Outcome::Queued);
    EXPECT_EQ(planner.decide(device(2, t0), t0).outcome, Outcome::Queued);
    RateDecision d = planner.decide(device(3, t0), t0);
    EXPECT_EQ(d.outcome, Outcome::Refused);
    EXPECT_EQ(d.retry_at, t0 + hours(9));
    EXPECT_EQ(planner.decide(device(2, t0), t0 + seconds(1)).outcome, Outcome::Queued);
    EXPECT_EQ(planner.status(t0).queue_length, 2u);
}

TEST(RatePlannerStatus, BacklogFollowsTheWindows) {
    RatePlanner domain(RateLimits{});
    for (int i = 0; i < 170; ++i) domain.decide(device(i, t0), t0);
    RateStatus status = domain.status(t0);
    EXPECT_EQ(status.queue_length, 120u);
    // 50 a week: weeks 1, 2 and 3.
    EXPECT_EQ(status.backlog_clears, t0 + 3 * week);

    RatePlanner orders(per_device_domains());
    for (int i = 0; i < 1300; ++i) orders.decide(device(i, t0), t0 + seconds(i / 100));
    status = orders.status(t0 + hours(1));
    EXPECT_EQ(status.orders_used, 300);
    EXPECT_EQ(status.orders_left, 0);
    // 300 per 3 h, the first 300 at t0..t0+2s: the last 100 go in the fourth round.
    EXPECT_EQ(status.backlog_clears, t0 + hours(12));
    EXPECT_EQ(RatePlanner(RateLimits{}).status(t0).backlog_clears, t0);
}

TEST(RatePlannerJson, RoundTripKeepsQueueAndWindows) {
    RatePlanner planner(RateLimits{});
    for (int i = 0; i < 60; ++i) planner.decide(device(i, t0 + Days(i % 3)), t0 + hours(i));
    planner.decide({"pair", {"b.other.org", "a.other.org"}, false, t0}, t0);
    const nlohmann::json saved = planner.to_json();
    RatePlanner restored = RatePlanner::from_json(saved, RateLimits{});
    EXPECT_EQ(restored.to_json(), saved);
    const TimePoint later = t0 + hours(70);
    RateStatus a = planner.status(later), b = restored.status(later);
    EXPECT_EQ(b.queue_length, 10u);
    EXPECT_EQ(a.queue_length, b.queue_length);
    EXPECT_EQ(a.orders_used, b.orders_used);
    EXPECT_EQ(a.backlog_clears, b.backlog_clears);
    ASSERT_EQ(b.busiest_domains.size(), 2u);
    EXPECT_EQ(b.busiest_domains[0].used, 50);
    for (int i = 50; i < 60; ++i) {
        RateDecision x = planner.decide(device(i, t0 + Days(i % 3)), later);
        RateDecision y = restored.decide(device(i, t0 + Days(i % 3)), later);
        EXPECT_EQ(x.outcome, y.outcome);
        EXPECT_EQ(x.retry_at, y.retry_at);
        EXPECT_EQ(x.position, y.position);
    }
}

TEST(RatePlannerJson, RefusesMalformedStateNamingTheField) {
    RatePlanner planner(RateLimits{});
    for (int i = 0; i < 52; ++i) planner.decide(device(i, t0), t0);
    const nlohmann::json good = planner.to_json();
    ASSERT_EQ(from_json_error(good), "");

    auto broken = [&](auto change) {
        nlohmann::json state = good;
        change(state);
        return from_json_error(state);
    };
    EXPECT_EQ(broken([](nlohmann::json& s) { s.erase("format"); }), "rate plan: format: missing");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["format"] = "v0"; }),
              "rate plan: format: not brokertls-rate-plan/1");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["extra"] = 1; }), "rate plan: extra: unknown field");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["next_seq"] = -1; }),
              "rate plan: next_seq: not a non-negative integer");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["orders"][1] = "yesterday"; }),
              "rate plan: orders[1]: not a time like 2026-11-24T17:05:00Z");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["orders"][0] = "2027-01-01T00:00:00Z"; }),
              "rate plan: orders[1]: earlier than the one before");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["domains"]["example.com"] = 3; }),
              "rate plan: domains.example.com: not an array of times");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["queue"][1]["needed_by"] = 5; }),
              "rate plan: queue[1].needed_by: not a time like 2026-11-24T17:05:00Z");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["queue"][0].erase("names"); }),
              "rate plan: queue[0].names: missing");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["queue"][1]["key"] = s["queue"][0]["key"]; }),
              "rate plan: queue[1].key: 'd50' twice");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["queue"][1]["seq"] = 999; }),
              "rate plan: queue[1].seq: not below next_seq");
    EXPECT_EQ(broken([](nlohmann::json& s) { s["queue"][0]["retry_at"] = "2020-01-01T00:00:00Z"; }),
              "rate plan: queue[0].retry_at: earlier than last_seen");
    EXPECT_EQ(from_json_error(nlohmann::json::array()),
              "rate plan: (top level): not a JSON object");
}

}  // namespace
}  // namespace brokertls
