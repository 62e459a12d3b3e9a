#pragma once
// RatePlanner: which certificate orders brokertls-service may send to an ACME CA now, so that a
// fleet of thousands of devices stays inside the CA's rate limits (Let's Encrypt's by default)
// instead of collecting rateLimited errors, and which must wait, in order of need.
//
// Pure logic: no I/O, no clock; every call takes `now`. Times are kept at one-second resolution
// (to_json writes seconds), and a `now` earlier than one seen before counts as that one, so the
// sliding windows stay ordered when the wall clock steps back. Not thread-safe: the service
// calls it under one lock, as every decision changes the shared windows.
//
// Cost: a decision is O(log n) in the queue length plus O(c log n) for the c registered domains
// whose queued requests exceed what they have left this week (a handful in practice); windows
// are pruned from their oldest end, so nothing scans the history.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "brokertls/crypto/time.hpp"

namespace brokertls {

// Let's Encrypt's limits (checked 2026). Orders carrying ARI `replaces` are exempt from all.
struct RateLimits {
    int orders_per_window = 300;  // new orders per ACME account
    std::chrono::seconds order_window{std::chrono::hours(3)};
    int certificates_per_domain = 50;  // per registered domain
    std::chrono::seconds domain_window{std::chrono::hours(7 * 24)};
    int certificates_per_name_set = 5;  // per exact set of names
    std::chrono::seconds name_set_window{std::chrono::hours(7 * 24)};
    // Extra public suffixes declared by the operator (e.g. "devices.example.com" once it is on
    // the PSL); without a match a registered domain is the last two labels.
    std::vector<std::string> public_suffixes;
    // Queued requests at most; a new request beyond it is Refused (requests already queued keep
    // their place), so memory stays bounded whatever clients send.
    std::size_t max_queue = 1'000'000;
};

// The name one label below the longest matching public suffix, lower-case: "example.com" for
// "x7k2p.devices.example.com", or "x7k2p.devices.example.com" with public_suffixes
// {"devices.example.com"}. "*.a.b.c" counts as "a.b.c"; a trailing dot is ignored. A name that
// is itself a public suffix, or has fewer than two labels, is its own registered domain.
std::string registered_domain(std::string_view name,
                              const std::vector<std::string>& public_suffixes);

struct IssuanceRequest {
    std::string key;                 // stable per requester (device id, CSR id)
    std::vector<std::string> names;  // DNS names of the certificate
    bool replaces = false;           // an ARI renewal (RFC 9773 `replaces`): exempt, never counted
    TimePoint needed_by;             // when the current certificate must be replaced; now if none
};

struct RateDecision {
    enum class Outcome {
        Admitted,  // send the order now; it has been counted
        Queued,    // come back at retry_at
        Refused,   // the queue is full (RateLimits::max_queue): try again after retry_at
    };
    Outcome outcome = Outcome::Admitted;
    TimePoint retry_at{};      // Queued, Refused
    std::size_t position = 0;  // Queued: place in the queue by need, 1 = head
};

struct DomainUsage {
    std::string domain;
    int used = 0;  // certificates in the domain window
    std::size_t queued = 0;
};

struct RateStatus {
    int orders_used = 0;  // new orders in the order window
    int orders_left = 0;
    std::vector<DomainUsage> busiest_domains;  // most used first (ties: most queued, by name)
    std::size_t queue_length = 0;
    // When the last queued request is expected to be admitted if every one comes back on time;
    // `now` for an empty queue, TimePoint::max() when a limit is 0.
    TimePoint backlog_clears{};
};

class RatePlanner {
  public:
    explicit RatePlanner(RateLimits limits);
    RatePlanner(RatePlanner&&) noexcept;
    RatePlanner& operator=(RatePlanner&&) noexcept;
    ~RatePlanner();

    // Admits or queues one request. A request with `replaces` is always admitted (and leaves the
    // queue if it was waiting). Otherwise it is admitted when every window has room for it and
    // for the requests queued ahead of it (earlier needed_by, ties by first arrival) that could
    // use the same room: a request further back never takes the head's slot. Coming back with the
    // same key keeps the place of first arrival; a queued key not seen again by
    // last_seen + 2 * (retry_at - last_seen) + 1 h is dropped. Throws Error(Usage) for an empty
    // key or names.
    RateDecision decide(const IssuanceRequest& request, TimePoint now);

    // Windows, busiest registered domains (at most `busiest`) and the backlog's end, simulated
    // forward from the windows and the queue (O(n log n) in the queue length).
    RateStatus status(TimePoint now, std::size_t busiest = 10) const;

    // The queue and the windows, to survive a restart. Limits are not stored: from_json applies
    // the ones given (registered domains of queued requests are derived again with them; counted
    // certificates stay under the domain they were counted for). from_json throws Error(Input)
    // naming the field, e.g. "rate plan: queue[3].needed_by: not a time like ...".
    nlohmann::json to_json() const;
    static RatePlanner from_json(const nlohmann::json& state, RateLimits limits);

  private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace brokertls
