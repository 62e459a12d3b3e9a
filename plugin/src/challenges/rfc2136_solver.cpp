// dns-01 through RFC 2136: every task's TXT record is added by a TSIG-signed UPDATE to the
// primary, then the solver waits until each authoritative server shows every value.

#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "brokertls/error.hpp"
#include "dns_client.hpp"
#include "dns_query.hpp"
#include "dns_record_name.hpp"
#include "dns_tsig_key.hpp"
#include "dns_update.hpp"
#include "solvers.hpp"

namespace brokertls {
namespace {

// The resolver for CNAME, SOA and NS lookups, made on first use. One per present() or
// cleanup() call: orders may run on several threads, and an ldns resolver is not thread-safe.
class Lookups {
  public:
    explicit Lookups(const std::string& resolver) : resolver_(resolver) {}
    const DnsClient& get() {
        if (!client_) client_.emplace(DnsClient::for_lookups(resolver_));
        return *client_;
    }

  private:
    const std::string& resolver_;
    std::optional<DnsClient> client_;
};

// One server that must show some values at one name.
struct PropagationCheck {
    const DnsClient* server;
    std::string name;
    std::set<std::string> values;
    Problem last_problem;  // why the last query failed, if it did
};

class Rfc2136Solver final : public ChallengeSolver {
  public:
    Rfc2136Solver(ChallengeConfig config, SolverContext context)
        : config_(std::move(config)), context_(std::move(context)) {}

    std::string type() const override { return "dns-01"; }

    void present(const std::vector<ChallengeTask>& tasks) override {
        // The key first: a bad key file fails before any DNS traffic.
        TsigKey key = load_tsig_key(config_.tsig_key_file);
        DnsClient primary = primary_server();
        Lookups lookups(config_.resolver);
        std::vector<TxtRecord> records;
        for (const auto& task : tasks) {
            TxtRecord record = record_for(task, lookups);
            remember(task, record);  // before sending: an UPDATE that timed out may still apply
            update_txt(primary, key, record, TxtChange::Add, config_.ttl);
            context_.log("rfc2136: added TXT " + record.name + " (zone " + record.zone + ") via " +
                         primary.describe());
            records.push_back(std::move(record));
        }
        wait_for_propagation(records, lookups);
    }

    void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override {
        try {
            cleanup_all(tasks);
        } catch (const std::exception& e) {
            log_quietly(std::string("rfc2136: cleanup failed: ") + e.what());
        } catch (...) {
            log_quietly("rfc2136: cleanup failed");
        }
    }

  private:
    void cleanup_all(const std::vector<ChallengeTask>& tasks) {
        std::optional<TsigKey> key;
        std::optional<DnsClient> primary;
        try {
            key = load_tsig_key(config_.tsig_key_file);
            primary.emplace(primary_server());
        } catch (const std::exception& e) {
            log_quietly(std::string("rfc2136: cleanup skipped: ") + e.what());
        }
        Lookups lookups(config_.resolver);
        for (const auto& task : tasks) {
            std::optional<TxtRecord> record = forget(task);
            if (!key || !primary) continue;
            try {
                if (!record) record = record_for(task, lookups);
                update_txt(*primary, *key, *record, TxtChange::Delete, config_.ttl);
                context_.log("rfc2136: removed TXT " + record->name + " via " +
                             primary->describe());
            } catch (const std::exception& e) {
                log_quietly(std::string("rfc2136: cleanup of ") + task.identifier.value +
                            " failed: " + e.what());
            }
        }
    }

    DnsClient primary_server() const {
        if (config_.dns_server.empty()) fail(ErrorKind::Input, "rfc2136", "dns_server is not set");
        return DnsClient(parse_dns_endpoint(config_.dns_server, "rfc2136: dns_server"));
    }

    TxtRecord record_for(const ChallengeTask& task, Lookups& lookups) const {
        if (task.identifier.type != "dns")
            fail(ErrorKind::Usage, "dns-01: " + task.identifier.value,
                 "only DNS names can be validated by dns-01");
        ChallengeRecordName choice = challenge_record_name(config_, task.identifier.value);
        TxtRecord record;
        record.name =
            choice.explicit_name ? choice.name : follow_cnames(lookups.get(), choice.name);
        record.zone = config_.zone.empty() ? find_zone(lookups.get(), record.name)
                                           : absolute_name(config_.zone);
        record.value = dns01_txt_value(task.key_authorization);
        return record;
    }

    void wait_for_propagation(const std::vector<TxtRecord>& records, Lookups& lookups) {
        if (records.empty()) return;
        std::map<std::string, std::unique_ptr<DnsClient>> servers;
        std::vector<PropagationCheck> checks;
        for (const auto& record : records) {
            for (const auto& endpoint : propagation_servers(record.zone, lookups)) {
                auto& server = servers[endpoint.text()];
                if (!server)
                    server = std::make_unique<DnsClient>(
                        endpoint, DnsClient::Limits{std::chrono::seconds(1), 1});
                auto same = std::find_if(checks.begin(), checks.end(), [&](const auto& c) {
                    return c.server == server.get() && c.name == record.name;
                });
                if (same == checks.end())
                    checks.push_back({server.get(), record.name, {record.value}, std::nullopt});
                else
                    same->values.insert(record.value);
            }
        }
        context_.log("dns-01: waiting for " + std::to_string(records.size()) + " TXT value(s) on " +
                     std::to_string(servers.size()) + " server(s), up to " +
                     std::to_string(config_.propagation_timeout.count()) + " s");

        auto deadline = std::chrono::steady_clock::now() + config_.propagation_timeout;
        while (true) {
            std::erase_if(checks, [](PropagationCheck& check) { return visible(check); });
            if (checks.empty()) return;
            auto now = std::chrono::steady_clock::now();
            if (now >= deadline) {
                const PropagationCheck& late = checks.front();
                fail(ErrorKind::Io, "dns-01: " + late.name,
                     "value not visible on " + late.server->describe() + " after " +
                         std::to_string(config_.propagation_timeout.count()) + " s" +
                         (late.last_problem ? " (" + *late.last_problem + ")" : ""));
            }
            auto pause = std::min<std::chrono::milliseconds>(
                config_.propagation_interval,
                std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
            if (!sleep(pause)) throw Error(ErrorKind::State, "stopped");
        }
    }

    static bool visible(PropagationCheck& check) {
        try {
            auto found = txt_values(*check.server, check.name);
            check.last_problem.reset();
            return std::all_of(check.values.begin(), check.values.end(), [&](const auto& v) {
                return std::find(found.begin(), found.end(), v) != found.end();
            });
        } catch (const Error& e) {
            check.last_problem = e.what();
            return false;
        }
    }

    std::vector<DnsEndpoint> propagation_servers(const std::string& zone, Lookups& lookups) const {
        std::vector<DnsEndpoint> out;
        if (!config_.propagation_servers.empty()) {
            for (const auto& s : config_.propagation_servers)
                out.push_back(parse_dns_endpoint(s, "dns-01: propagation_servers"));
            return out;
        }
        for (const auto& host : zone_nameservers(lookups.get(), zone))
            for (const auto& address : host_addresses(lookups.get(), host))
                out.push_back({address, 53});
        return out;
    }

    bool sleep(std::chrono::milliseconds pause) {
        if (context_.sleep) return context_.sleep(pause);
        std::this_thread::sleep_for(pause);
        return true;
    }

    void log_quietly(const std::string& line) noexcept {
        try {
            context_.log(line);
        } catch (...) {
        }
    }

    void remember(const ChallengeTask& task, const TxtRecord& record) {
        std::lock_guard lock(mutex_);
        presented_[task.token] = record;
    }
    std::optional<TxtRecord> forget(const ChallengeTask& task) {
        std::lock_guard lock(mutex_);
        auto it = presented_.find(task.token);
        if (it == presented_.end()) return std::nullopt;
        TxtRecord record = std::move(it->second);
        presented_.erase(it);
        return record;
    }

    ChallengeConfig config_;
    SolverContext context_;
    std::mutex mutex_;
    std::map<std::string, TxtRecord> presented_;  // by token, for cleanup
};

}  // namespace

std::unique_ptr<ChallengeSolver> make_rfc2136_solver(const ChallengeConfig& config,
                                                     SolverContext context) {
    return std::make_unique<Rfc2136Solver>(config, std::move(context));
}

}  // namespace brokertls
