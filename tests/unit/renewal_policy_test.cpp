#include <gtest/gtest.h>

#include <climits>
#include <set>

#include "renewal/policy.hpp"

namespace brokertls {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

const TimePoint start = SystemClock::from_time_t(1'700'000'000);
constexpr int draws = 2000;

TEST(RenewalTime, ThirdOfLifetimeLeftForLongCertificates) {
    EXPECT_EQ(renewal_time(start, start + Days(90), seconds(0)), start + Days(60));
    EXPECT_EQ(renewal_time(start, start + Days(397), seconds(0)),
              start + Days(397) - Days(132) - hours(8));
    // Just over the 10-day boundary: a third.
    auto lifetime = Days(10) + seconds(3);
    EXPECT_EQ(renewal_time(start, start + lifetime, seconds(0)),
              start + lifetime - seconds(288001));
}

TEST(RenewalTime, HalfOfLifetimeLeftForShortLivedCertificates) {
    // Let's Encrypt `shortlived`: 6 days (160 h) -> renew with 80 h left.
    EXPECT_EQ(renewal_time(start, start + hours(160), seconds(0)), start + hours(80));
    EXPECT_EQ(renewal_time(start, start + Days(6), seconds(0)), start + Days(3));
    // Exactly 10 days is still short-lived.
    EXPECT_EQ(renewal_time(start, start + Days(10), seconds(0)), start + Days(5));
    EXPECT_EQ(renewal_time(start, start + hours(1), seconds(0)), start + minutes(30));
}

TEST(RenewalTime, RenewBeforeWinsWhenSet) {
    EXPECT_EQ(renewal_time(start, start + Days(90), hours(24 * 10)), start + Days(80));
    EXPECT_EQ(renewal_time(start, start + Days(6), hours(24)), start + Days(5));
    // As long as the lifetime or longer (7d on a 6-day certificate): the default rule, not a
    // renewal loop.
    EXPECT_EQ(renewal_time(start, start + Days(6), hours(24 * 30)), start + Days(3));
    EXPECT_EQ(renewal_time(start, start + Days(90), hours(24 * 90)), start + Days(60));
}

TEST(AriDeadline, TwentiethOfLifetimeBeforeExpiry) {
    EXPECT_EQ(ari_deadline(start, start + Days(90)), start + Days(90) - hours(108));
    EXPECT_EQ(ari_deadline(start, start + Days(6)), start + Days(6) - seconds(25920));
}

TEST(AriRenewalTime, UniformInsideAFutureWindow) {
    TimePoint not_after = start + Days(90);
    RenewalInfo info{start + Days(60), start + Days(62), "", std::nullopt};
    Random random(42);
    TimePoint low = TimePoint::max(), high = TimePoint::min();
    int first_half = 0;
    for (int i = 0; i < draws; ++i) {
        TimePoint t = ari_renewal_time(info, start, not_after, start + Days(1), random);
        ASSERT_GE(t, info.window_start);
        ASSERT_LE(t, info.window_end);
        low = std::min(low, t), high = std::max(high, t);
        if (t < start + Days(61)) ++first_half;
    }
    // Spread over the whole window, not bunched at one end.
    EXPECT_LT(low, info.window_start + hours(1));
    EXPECT_GT(high, info.window_end - hours(1));
    EXPECT_GT(first_half, draws * 4 / 10);
    EXPECT_LT(first_half, draws * 6 / 10);
}

TEST(AriRenewalTime, SameSeedSameChoice) {
    RenewalInfo info{start + Days(60), start + Days(62), "", std::nullopt};
    Random a(7), b(7);
    EXPECT_EQ(ari_renewal_time(info, start, start + Days(90), start, a),
              ari_renewal_time(info, start, start + Days(90), start, b));
}

TEST(AriRenewalTime, NeverLaterThanTheDeadline) {
    TimePoint not_after = start + Days(90);
    TimePoint deadline = ari_deadline(start, not_after);
    RenewalInfo info{deadline - Days(1), not_after, "", std::nullopt};
    Random random(1);
    int clamped = 0;
    for (int i = 0; i < draws; ++i) {
        TimePoint t = ari_renewal_time(info, start, not_after, start, random);
        ASSERT_GE(t, info.window_start);
        ASSERT_LE(t, deadline);
        if (t == deadline) ++clamped;
    }
    // The window reaches 4.5 days past the deadline: most draws land on it, some before it.
    EXPECT_GT(clamped, draws / 2);
    EXPECT_LT(clamped, draws);
}

TEST(AriRenewalTime, NeverBeforeNow) {
    TimePoint not_after = start + Days(90);
    RenewalInfo info{start + Days(60), start + Days(62), "", std::nullopt};
    TimePoint now = start + Days(61) + hours(12);
    Random random(2);
    int immediate = 0;
    for (int i = 0; i < draws; ++i) {
        TimePoint t = ari_renewal_time(info, start, not_after, now, random);
        ASSERT_GE(t, now);
        ASSERT_LE(t, info.window_end);
        if (t == now) ++immediate;
    }
    // Three quarters of the window has passed: those draws mean "now" (RFC 9773 §4.2).
    EXPECT_GT(immediate, draws * 65 / 100);
    EXPECT_LT(immediate, draws * 85 / 100);
}

TEST(AriRenewalTime, PastWindowOrPastDeadlineMeansNow) {
    TimePoint not_after = start + Days(90);
    Random random(3);
    RenewalInfo past{start + Days(10), start + Days(11), "", std::nullopt};
    TimePoint now = start + Days(20);
    EXPECT_EQ(ari_renewal_time(past, start, not_after, now, random), now);
    RenewalInfo ending_now{start + Days(10), now, "", std::nullopt};
    EXPECT_EQ(ari_renewal_time(ending_now, start, not_after, now, random), now);
    // The CA suggests a later window, but we are already past the deadline.
    TimePoint late = ari_deadline(start, not_after) + hours(1);
    RenewalInfo after{late + hours(1), late + hours(5), "", std::nullopt};
    EXPECT_EQ(ari_renewal_time(after, start, not_after, late, random), late);
}

TEST(AriRenewalTime, ReversedWindowIsItsStart) {
    RenewalInfo reversed{start + Days(60), start + Days(50), "", std::nullopt};
    Random random(4);
    EXPECT_EQ(ari_renewal_time(reversed, start, start + Days(90), start, random), start + Days(60));
}

TEST(FailureBackoff, BaseSequenceUpToSixHours) {
    std::vector<seconds> want = {minutes(1),   minutes(2),   minutes(5),  minutes(10),
                                 minutes(20),  minutes(40),  minutes(80), minutes(160),
                                 minutes(320), minutes(360), minutes(360)};
    for (std::size_t i = 0; i < want.size(); ++i)
        EXPECT_EQ(failure_backoff_base(static_cast<int>(i) + 1), want[i]) << "failure " << i + 1;
    EXPECT_EQ(failure_backoff_base(1000), hours(6));
    EXPECT_EQ(failure_backoff_base(INT_MAX), hours(6));
    EXPECT_EQ(failure_backoff_base(0), seconds(0));
    EXPECT_EQ(failure_backoff_base(-1), seconds(0));
}

TEST(FailureBackoff, JitteredWithinTwentyPercentAndNeverAboveTheCap) {
    Random random(5);
    for (int failures : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50, INT_MAX}) {
        seconds base = failure_backoff_base(failures);
        std::set<long long> seen;
        for (int i = 0; i < 500; ++i) {
            seconds d = failure_backoff(failures, random);
            ASSERT_GE(d, base * 4 / 5) << "failure " << failures;
            ASSERT_LT(d, base * 6 / 5) << "failure " << failures;
            ASSERT_LE(d, hours(6)) << "failure " << failures;
            seen.insert(d.count());
        }
        EXPECT_GT(seen.size(), 10u) << "no jitter after failure " << failures;
    }
    EXPECT_EQ(failure_backoff(0, random), seconds(0));
}

TEST(RetryTime, BackoffUnlessRetryAfterIsLater) {
    Random random(8);
    TimePoint now = start;
    TimePoint t = retry_time(3, now, std::nullopt, random);
    EXPECT_GE(t, now + minutes(4));
    EXPECT_LT(t, now + minutes(6));

    TimePoint ca_says = now + hours(2);
    EXPECT_EQ(retry_time(3, now, ca_says, random), ca_says);

    // An earlier Retry-After does not shorten our backoff.
    t = retry_time(3, now, now + seconds(10), random);
    EXPECT_GE(t, now + minutes(4));
    EXPECT_LT(t, now + minutes(6));
}

TEST(NextCheck, IntervalWithFiftyPercentJitter) {
    Random random(9);
    seconds interval = hours(12);
    int early = 0;
    TimePoint low = TimePoint::max(), high = TimePoint::min();
    for (int i = 0; i < draws; ++i) {
        TimePoint t = next_check(start, interval, random);
        ASSERT_GE(t, start + hours(6));
        ASSERT_LT(t, start + hours(18));
        if (t < start + interval) ++early;
        low = std::min(low, t), high = std::max(high, t);
    }
    EXPECT_GT(early, draws * 4 / 10);
    EXPECT_LT(early, draws * 6 / 10);
    EXPECT_LT(low, start + hours(7));
    EXPECT_GT(high, start + hours(17));
    EXPECT_EQ(next_check(start, seconds(0), random), start);
}

}  // namespace
}  // namespace brokertls
