#include "service/rate_plan.hpp"

#include <algorithm>
#include <cctype>
#include <compare>
#include <cstdint>
#include <deque>
#include <limits>
#include <queue>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

// An order-statistics tree: "how many queued requests are ahead of this one" in O(log n). The
// standard library has none; libstdc++'s policy-based tree is used by GCC and by clang here.
#include <ext/pb_ds/assoc_container.hpp>
#include <ext/pb_ds/tree_policy.hpp>
#include <nlohmann/json.hpp>

#include "brokertls/error.hpp"

namespace brokertls {

namespace {

using Seconds = std::chrono::seconds;

// The order of the queue: earliest need first, then first arrival.
struct QueueKey {
    TimePoint needed_by;
    std::uint64_t seq = 0;
    auto operator<=>(const QueueKey&) const = default;
};

template <class Mapped>
using OrderTree = __gnu_pbds::tree<QueueKey, Mapped, std::less<QueueKey>, __gnu_pbds::rb_tree_tag,
                                   __gnu_pbds::tree_order_statistics_node_update>;

// One sliding window of counted certificates (a registered domain or a name set), and the queued
// requests that need room in it.
struct Bucket {
    std::deque<TimePoint> issued;  // ascending
    OrderTree<__gnu_pbds::null_type> queued;
};

struct Entry {
    std::vector<std::string> names;    // lower-case, sorted, unique
    std::vector<std::string> domains;  // their registered domains, sorted, unique
    std::string name_set;              // names joined by ','
    QueueKey order;
    TimePoint last_seen;
    TimePoint retry_at;
    TimePoint drop_at;
};

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view strip_name(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.starts_with("*.")) name.remove_prefix(2);
    return name;
}

TimePoint whole_seconds(TimePoint t) {
    return std::chrono::floor<Seconds>(t);
}

// When the k-th (0-based) admission from now fits a window of `limit` per `window` that holds
// issued[first..] (ascending, all inside the window at `now`), if every earlier one is admitted
// as soon as it fits: admission m of the whole sequence must wait for entry m - limit to leave
// the window, so the times repeat every `limit` admissions, one window later each round.
TimePoint slot(const std::deque<TimePoint>* issued, std::size_t first, int limit, Seconds window,
               std::size_t k, TimePoint now) {
    if (limit <= 0) return TimePoint::max();
    const auto per_round = static_cast<std::size_t>(limit);
    const std::size_t used = issued ? issued->size() - first : 0;
    const std::size_t rounds = k / per_round;
    const std::size_t index = used + k % per_round;  // in the whole sequence
    TimePoint base = now;
    if (index >= per_round) base = std::max(now, (*issued)[first + index - per_round] + window);
    return base + rounds * window;
}

// Index of the first time still inside a window ending at now (times <= now - window have left).
std::size_t first_live(const std::deque<TimePoint>& times, Seconds window, TimePoint now) {
    auto it = std::upper_bound(times.begin(), times.end(), now - window);
    return static_cast<std::size_t>(it - times.begin());
}

int count_as_int(std::size_t n) {
    return static_cast<int>(std::min<std::size_t>(n, std::numeric_limits<int>::max()));
}

}  // namespace

std::string registered_domain(std::string_view name,
                              const std::vector<std::string>& public_suffixes) {
    const std::string host = lower(strip_name(name));
    // The longest public suffix that is a whole-label suffix of host; by default its last label.
    std::size_t suffix_start = host.rfind('.');
    if (suffix_start == std::string::npos) return host;
    ++suffix_start;
    for (const std::string& declared : public_suffixes) {
        const std::string suffix = lower(strip_name(declared));
        if (suffix.empty()) continue;
        if (host == suffix) return host;
        if (host.size() > suffix.size() && host.ends_with(suffix) &&
            host[host.size() - suffix.size() - 1] == '.') {
            suffix_start = std::min(suffix_start, host.size() - suffix.size());
        }
    }
    // One label more than the suffix.
    if (suffix_start < 2) return host;
    const std::size_t dot = host.rfind('.', suffix_start - 2);
    return dot == std::string::npos ? host : host.substr(dot + 1);
}

struct RatePlanner::State {
    RateLimits limits;
    TimePoint latest{};  // the latest `now` seen: time never runs back inside the planner
    std::deque<TimePoint> orders;
    std::unordered_map<std::string, Bucket> domains;
    std::unordered_map<std::string, Bucket> name_sets;
    // Every counted certificate once per bucket, oldest first, so expiry is popped from the
    // front whatever bucket it belongs to.
    std::deque<std::pair<TimePoint, std::string>> domain_expiry;
    std::deque<std::pair<TimePoint, std::string>> name_set_expiry;
    OrderTree<std::string> queue;  // need order -> request key
    std::unordered_map<std::string, Entry> entries;
    std::set<std::pair<TimePoint, QueueKey>> drops;
    // Domains with more queued requests than room left this window: their requests beyond the
    // room cannot take an order slot now, so they do not hold one back for those behind them.
    std::unordered_set<std::string> congested;
    std::uint64_t next_seq = 0;

    explicit State(RateLimits l) : limits(std::move(l)) {}

    int domain_left(const Bucket& b) const {
        return limits.certificates_per_domain - count_as_int(b.issued.size());
    }

    void refresh_domain(const std::string& domain) {
        auto it = domains.find(domain);
        if (it == domains.end()) return;
        const Bucket& b = it->second;
        if (b.issued.empty() && b.queued.empty()) {
            congested.erase(domain);
            domains.erase(it);
            return;
        }
        const long left = std::max(0, domain_left(b));
        if (static_cast<long>(b.queued.size()) > left)
            congested.insert(domain);
        else
            congested.erase(domain);
    }

    void refresh_name_set(const std::string& name_set) {
        auto it = name_sets.find(name_set);
        if (it != name_sets.end() && it->second.issued.empty() && it->second.queued.empty())
            name_sets.erase(it);
    }

    void prune(TimePoint now) {
        while (!orders.empty() && orders.front() <= now - limits.order_window) orders.pop_front();
        while (!domain_expiry.empty() &&
               domain_expiry.front().first <= now - limits.domain_window) {
            const std::string domain = std::move(domain_expiry.front().second);
            domain_expiry.pop_front();
            domains[domain].issued.pop_front();
            refresh_domain(domain);
        }
        while (!name_set_expiry.empty() &&
               name_set_expiry.front().first <= now - limits.name_set_window) {
            const std::string name_set = std::move(name_set_expiry.front().second);
            name_set_expiry.pop_front();
            name_sets[name_set].issued.pop_front();
            refresh_name_set(name_set);
        }
        while (!drops.empty() && drops.begin()->first <= now) {
            auto it = queue.find(drops.begin()->second);
            const std::string key = it->second;
            remove(key);
        }
    }

    void insert(const std::string& key, Entry entry) {
        queue.insert({entry.order, key});
        for (const std::string& d : entry.domains) {
            domains[d].queued.insert(entry.order);
            refresh_domain(d);
        }
        name_sets[entry.name_set].queued.insert(entry.order);
        drops.insert({entry.drop_at, entry.order});
        entries.insert_or_assign(key, std::move(entry));
    }

    void remove(const std::string& key) {
        auto it = entries.find(key);
        if (it == entries.end()) return;
        const Entry& e = it->second;
        queue.erase(e.order);
        for (const std::string& d : e.domains) {
            domains[d].queued.erase(e.order);
            refresh_domain(d);
        }
        name_sets[e.name_set].queued.erase(e.order);
        refresh_name_set(e.name_set);
        drops.erase({e.drop_at, e.order});
        entries.erase(it);
    }

    void count(const Entry& e, TimePoint now) {
        orders.push_back(now);
        for (const std::string& d : e.domains) {
            domains[d].issued.push_back(now);
            domain_expiry.emplace_back(now, d);
            refresh_domain(d);
        }
        name_sets[e.name_set].issued.push_back(now);
        name_set_expiry.emplace_back(now, e.name_set);
    }

    Entry describe(const IssuanceRequest& request) const {
        Entry e;
        for (const std::string& name : request.names) {
            if (strip_name(name).empty())
                fail(ErrorKind::Usage, "rate plan: request " + request.key, "empty DNS name");
            e.names.push_back(lower(name));
            e.domains.push_back(registered_domain(name, limits.public_suffixes));
        }
        for (auto* list : {&e.names, &e.domains}) {
            std::sort(list->begin(), list->end());
            list->erase(std::unique(list->begin(), list->end()), list->end());
        }
        for (const std::string& name : e.names) {
            if (!e.name_set.empty()) e.name_set += ',';
            e.name_set += name;
        }
        return e;
    }

    // How many requests queued ahead of `order` could use an order slot now: all of them, less
    // those that their registered domain's weekly room keeps waiting anyway. A request ahead in
    // two congested domains is subtracted twice, so the result is clamped at 0.
    std::size_t order_rivals_ahead(const QueueKey& order) const {
        const std::size_t ahead = queue.order_of_key(order);
        std::size_t blocked = 0;
        for (const std::string& d : congested) {
            const Bucket& b = domains.at(d);
            const std::size_t in_domain = b.queued.order_of_key(order);
            const auto room = static_cast<std::size_t>(std::max(0, domain_left(b)));
            if (in_domain > room) blocked += in_domain - room;
        }
        return ahead > blocked ? ahead - blocked : 0;
    }
};

RatePlanner::RatePlanner(RateLimits limits) : state_(std::make_unique<State>(std::move(limits))) {}
RatePlanner::RatePlanner(RatePlanner&&) noexcept = default;
RatePlanner& RatePlanner::operator=(RatePlanner&&) noexcept = default;
RatePlanner::~RatePlanner() = default;

RateDecision RatePlanner::decide(const IssuanceRequest& request, TimePoint now) {
    State& s = *state_;
    if (request.key.empty()) fail(ErrorKind::Usage, "rate plan", "request without a key");
    if (request.names.empty())
        fail(ErrorKind::Usage, "rate plan: request " + request.key, "no DNS names");
    now = std::max(whole_seconds(now), s.latest);
    s.latest = now;
    s.prune(now);

    if (request.replaces) {
        s.remove(request.key);
        return {};
    }

    Entry e = s.describe(request);
    // A request coming back keeps its first arrival; its need may have moved.
    auto known = s.entries.find(request.key);
    const bool queued_before = known != s.entries.end();
    e.order = {whole_seconds(request.needed_by), queued_before ? known->second.order.seq : 0};
    if (queued_before)
        s.remove(request.key);
    else
        e.order.seq = s.next_seq;

    const std::size_t order_ahead = s.order_rivals_ahead(e.order);
    TimePoint turn =
        slot(&s.orders, 0, s.limits.orders_per_window, s.limits.order_window, order_ahead, now);
    for (const std::string& d : e.domains) {
        auto it = s.domains.find(d);
        const Bucket* b = it == s.domains.end() ? nullptr : &it->second;
        turn = std::max(turn,
                        slot(b ? &b->issued : nullptr, 0, s.limits.certificates_per_domain,
                             s.limits.domain_window, b ? b->queued.order_of_key(e.order) : 0, now));
    }
    {
        auto it = s.name_sets.find(e.name_set);
        const Bucket* b = it == s.name_sets.end() ? nullptr : &it->second;
        turn = std::max(
            turn, slot(b ? &b->issued : nullptr, 0, s.limits.certificates_per_name_set,
                       s.limits.name_set_window, b ? b->queued.order_of_key(e.order) : 0, now));
    }

    if (turn <= now) {
        s.count(e, now);
        return {};
    }
    if (!queued_before && s.entries.size() >= s.limits.max_queue)
        return {RateDecision::Outcome::Refused, turn, 0};
    if (!queued_before) ++s.next_seq;
    e.last_seen = now;
    e.retry_at = turn;
    // A requester that stays away twice as long as it was told (plus an hour of slack for
    // clocks and restarts) has gone; its place must not hold back those behind it.
    e.drop_at = turn == TimePoint::max() ? turn : now + 2 * (turn - now) + std::chrono::hours(1);
    const std::size_t position = s.queue.order_of_key(e.order) + 1;
    s.insert(request.key, std::move(e));
    return {RateDecision::Outcome::Queued, turn, position};
}

RateStatus RatePlanner::status(TimePoint now, std::size_t busiest) const {
    const State& s = *state_;
    now = std::max(whole_seconds(now), s.latest);
    const RateLimits& l = s.limits;
    RateStatus out;
    const std::size_t orders_first = first_live(s.orders, l.order_window, now);
    out.orders_used = count_as_int(s.orders.size() - orders_first);
    out.orders_left = std::max(0, l.orders_per_window - out.orders_used);
    out.queue_length = s.queue.size();

    // Requests that stayed away too long are not waited for.
    std::vector<std::pair<QueueKey, const Entry*>> waiting;
    waiting.reserve(s.queue.size());
    for (const auto& [order, key] : s.queue) {
        const Entry& e = s.entries.at(key);
        if (e.drop_at > now) waiting.emplace_back(order, &e);
    }
    out.queue_length = waiting.size();

    // Ranked without copying names: there may be one registered domain per device.
    struct Usage {
        int used;
        std::size_t queued;
        std::string_view domain;
    };
    std::vector<Usage> usage;
    usage.reserve(s.domains.size());
    for (const auto& [domain, b] : s.domains) {
        const std::size_t first = first_live(b.issued, l.domain_window, now);
        usage.push_back({count_as_int(b.issued.size() - first), b.queued.size(), domain});
    }
    const std::size_t shown = std::min(busiest, usage.size());
    std::partial_sort(usage.begin(), usage.begin() + static_cast<long>(shown), usage.end(),
                      [](const Usage& a, const Usage& b) {
                          return std::tie(b.used, b.queued, a.domain) <
                                 std::tie(a.used, a.queued, b.domain);
                      });
    for (std::size_t i = 0; i < shown; ++i)
        out.busiest_domains.push_back(
            {std::string(usage[i].domain), usage[i].used, usage[i].queued});

    // The backlog, simulated forward in event time: each registered domain (a request's first)
    // releases its queued requests in need order as its weekly window allows, and the account's
    // order window serves whichever domain is ready first. Exact for one domain and for domains
    // that never run out; name-set limits are left out (they bind only on repeated identical
    // requests).
    out.backlog_clears = now;
    if (waiting.empty()) return out;
    struct Sim {
        std::vector<TimePoint> issued;  // inside the window at now, then simulated admissions
        std::vector<QueueKey> queued;   // need order
        std::size_t next = 0;
    };
    std::unordered_map<std::string_view, Sim> sims;
    for (const auto& [order, e] : waiting) {
        auto [it, fresh] = sims.try_emplace(e->domains.front());
        if (fresh) {
            auto b = s.domains.find(e->domains.front());
            if (b != s.domains.end()) {
                const auto& times = b->second.issued;
                it->second.issued.assign(
                    times.begin() + static_cast<long>(first_live(times, l.domain_window, now)),
                    times.end());
            }
        }
        it->second.queued.push_back(order);
    }
    auto ready = [&](const std::vector<TimePoint>& issued, int limit, Seconds window) {
        if (limit <= 0) return TimePoint::max();
        const auto per = static_cast<std::size_t>(limit);
        return issued.size() < per ? now : std::max(now, issued[issued.size() - per] + window);
    };
    std::vector<TimePoint> orders(s.orders.begin() + static_cast<long>(orders_first),
                                  s.orders.end());
    using Turn = std::tuple<TimePoint, QueueKey, Sim*>;
    std::priority_queue<Turn, std::vector<Turn>, std::greater<>> turns;
    for (auto& [domain, sim] : sims)
        turns.emplace(ready(sim.issued, l.certificates_per_domain, l.domain_window),
                      sim.queued.front(), &sim);
    while (!turns.empty()) {
        auto [domain_ready, order, sim] = turns.top();
        turns.pop();
        const TimePoint at =
            std::max(domain_ready, ready(orders, l.orders_per_window, l.order_window));
        if (at == TimePoint::max()) {
            out.backlog_clears = at;
            return out;
        }
        orders.push_back(at);
        sim->issued.push_back(at);
        out.backlog_clears = std::max(out.backlog_clears, at);
        if (++sim->next < sim->queued.size())
            turns.emplace(ready(sim->issued, l.certificates_per_domain, l.domain_window),
                          sim->queued[sim->next], sim);
    }
    return out;
}

namespace {

constexpr const char* kFormat = "brokertls-rate-plan/1";

nlohmann::json times_json(const std::deque<TimePoint>& times) {
    nlohmann::json out = nlohmann::json::array();
    for (TimePoint t : times) out.push_back(to_iso8601(t));
    return out;
}

[[noreturn]] void bad(const std::string& field, std::string_view why) {
    fail(ErrorKind::Input, "rate plan: " + field, why);
}

const nlohmann::json& member(const nlohmann::json& object, const std::string& where,
                             const std::string& name) {
    auto it = object.find(name);
    if (it == object.end()) bad(where.empty() ? name : where + "." + name, "missing");
    return *it;
}

void only_keys(const nlohmann::json& object, const std::string& where,
               std::initializer_list<std::string_view> keys) {
    for (const auto& [key, value] : object.items()) {
        if (std::find(keys.begin(), keys.end(), key) == keys.end())
            bad(where.empty() ? key : where + "." + key, "unknown field");
    }
}

std::string text(const nlohmann::json& value, const std::string& field) {
    if (!value.is_string()) bad(field, "not a string");
    return value.get<std::string>();
}

TimePoint time_of(const nlohmann::json& value, const std::string& field) {
    if (!value.is_string()) bad(field, "not a time like 2026-11-24T17:05:00Z");
    try {
        return from_iso8601(value.get<std::string>());
    } catch (const Error&) {
        bad(field, "not a time like 2026-11-24T17:05:00Z");
    }
}

std::uint64_t count_of(const nlohmann::json& value, const std::string& field) {
    // Written as unsigned; built in code a small number may be a signed one.
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0)
        bad(field, "not a non-negative integer");
    return value.get<std::uint64_t>();
}

std::deque<TimePoint> times_of(const nlohmann::json& value, const std::string& field) {
    if (!value.is_array()) bad(field, "not an array of times");
    std::deque<TimePoint> out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string at = field + "[" + std::to_string(i) + "]";
        out.push_back(time_of(value[i], at));
        if (out.size() > 1 && out.back() < out[out.size() - 2])
            bad(at, "earlier than the one before");
    }
    return out;
}

}  // namespace

nlohmann::json RatePlanner::to_json() const {
    const State& s = *state_;
    nlohmann::json out = {{"format", kFormat}, {"next_seq", s.next_seq}};
    out["orders"] = times_json(s.orders);
    for (const auto& [field, buckets] :
         {std::pair{"domains", &s.domains}, std::pair{"name_sets", &s.name_sets}}) {
        nlohmann::json object = nlohmann::json::object();
        for (const auto& [name, b] : *buckets)
            if (!b.issued.empty()) object[name] = times_json(b.issued);
        out[field] = std::move(object);
    }
    nlohmann::json queue = nlohmann::json::array();
    for (const auto& [order, key] : s.queue) {
        const Entry& e = s.entries.at(key);
        queue.push_back({{"key", key},
                         {"names", e.names},
                         {"needed_by", to_iso8601(order.needed_by)},
                         {"seq", order.seq},
                         {"last_seen", to_iso8601(e.last_seen)},
                         {"retry_at", e.retry_at == TimePoint::max()
                                          ? nlohmann::json(nullptr)
                                          : nlohmann::json(to_iso8601(e.retry_at))}});
    }
    out["queue"] = std::move(queue);
    return out;
}

RatePlanner RatePlanner::from_json(const nlohmann::json& state, RateLimits limits) {
    if (!state.is_object()) bad("(top level)", "not a JSON object");
    only_keys(state, "", {"format", "next_seq", "orders", "domains", "name_sets", "queue"});
    if (text(member(state, "", "format"), "format") != kFormat)
        bad("format", std::string("not ") + kFormat);
    RatePlanner planner(std::move(limits));
    State& s = *planner.state_;
    s.next_seq = count_of(member(state, "", "next_seq"), "next_seq");

    s.orders = times_of(member(state, "", "orders"), "orders");
    TimePoint latest = s.orders.empty() ? TimePoint{} : s.orders.back();
    for (const auto& [field, buckets, expiry] :
         {std::tuple{"domains", &s.domains, &s.domain_expiry},
          std::tuple{"name_sets", &s.name_sets, &s.name_set_expiry}}) {
        const nlohmann::json& object = member(state, "", field);
        if (!object.is_object()) bad(field, "not an object");
        for (const auto& [name, times] : object.items()) {
            const std::string where = std::string(field) + "." + name;
            if (name.empty()) bad(where, "empty name");
            Bucket& b = (*buckets)[name];
            b.issued = times_of(times, where);
            if (b.issued.empty()) bad(where, "empty");
            for (TimePoint t : b.issued) expiry->emplace_back(t, name);
            latest = std::max(latest, b.issued.back());
        }
        std::stable_sort(expiry->begin(), expiry->end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
    }

    const nlohmann::json& queue = member(state, "", "queue");
    if (!queue.is_array()) bad("queue", "not an array");
    std::set<std::uint64_t> seqs;
    for (std::size_t i = 0; i < queue.size(); ++i) {
        const std::string where = "queue[" + std::to_string(i) + "]";
        const nlohmann::json& item = queue[i];
        if (!item.is_object()) bad(where, "not an object");
        only_keys(item, where, {"key", "names", "needed_by", "seq", "last_seen", "retry_at"});
        IssuanceRequest request;
        request.key = text(member(item, where, "key"), where + ".key");
        if (request.key.empty()) bad(where + ".key", "empty");
        if (s.entries.count(request.key)) bad(where + ".key", "'" + request.key + "' twice");
        const nlohmann::json& names = member(item, where, "names");
        if (!names.is_array() || names.empty()) bad(where + ".names", "not a non-empty array");
        for (std::size_t n = 0; n < names.size(); ++n) {
            const std::string at = where + ".names[" + std::to_string(n) + "]";
            request.names.push_back(text(names[n], at));
            if (strip_name(request.names.back()).empty()) bad(at, "empty DNS name");
        }
        Entry e = s.describe(request);
        e.order = {time_of(member(item, where, "needed_by"), where + ".needed_by"),
                   count_of(member(item, where, "seq"), where + ".seq")};
        if (e.order.seq >= s.next_seq) bad(where + ".seq", "not below next_seq");
        if (!seqs.insert(e.order.seq).second) bad(where + ".seq", "used twice");
        e.last_seen = time_of(member(item, where, "last_seen"), where + ".last_seen");
        const nlohmann::json& retry = member(item, where, "retry_at");
        e.retry_at = retry.is_null() ? TimePoint::max() : time_of(retry, where + ".retry_at");
        if (e.retry_at < e.last_seen) bad(where + ".retry_at", "earlier than last_seen");
        e.drop_at = e.retry_at == TimePoint::max()
                        ? e.retry_at
                        : e.last_seen + 2 * (e.retry_at - e.last_seen) + std::chrono::hours(1);
        latest = std::max(latest, e.last_seen);
        s.insert(request.key, std::move(e));
    }
    s.latest = latest;
    return planner;
}

}  // namespace brokertls
