// The ACME signer: one order per job on a few worker threads (an order waits for the CA and
// for DNS for seconds to minutes; the HTTP threads never do).

#include <optional>

#include "acme/problem.hpp"
#include "issuers/acme_issuer.hpp"
#include "issuers/issuer.hpp"
#include "service/signer.hpp"

namespace brokertls {

namespace {

// What a client is told when an order fails: ACMEMS's codes. The CA's problem detail goes to
// the log and the audit; it names the identifier, not the client's secrets.
SignOutcome failure(const std::exception& e, TimePoint now) {
    if (const auto* acme = dynamic_cast<const AcmeError*>(&e)) {
        const AcmeProblem& p = acme->problem();
        if (p.short_type() == "rateLimited" || p.status == 429) {
            std::optional<std::chrono::seconds> retry;
            if (p.retry_after && *p.retry_after > now)
                retry = std::chrono::ceil<std::chrono::seconds>(*p.retry_after - now);
            return {{},
                    429,
                    "the CA's rate limit: " + p.to_string(),
                    retry.value_or(std::chrono::seconds(3600))};
        }
        if (p.status >= 500 || p.status == 0)
            return {{}, 503, "the CA is unavailable: " + p.to_string(), std::chrono::seconds(60)};
        return {{}, 421, "validation failed: " + p.to_string(), std::nullopt};
    }
    if (const auto* error = dynamic_cast<const Error*>(&e); error && error->kind() == ErrorKind::Io)
        return {{},
                503,
                std::string("the CA or DNS is unavailable: ") + e.what(),
                std::chrono::seconds(60)};
    return {{}, 421, std::string("validation failed: ") + e.what(), std::nullopt};
}

class AcmeSigner final : public Signer {
  public:
    AcmeSigner(const ServiceIssuer& issuer, std::shared_ptr<ChallengeSolver> solver,
               std::filesystem::path state_dir, Clock& clock, LogLine log, int workers,
               std::chrono::seconds order_timeout)
        : issuer_(issuer.acme),
          solver_(std::move(solver)),
          state_dir_(std::move(state_dir)),
          clock_(clock),
          log_(std::move(log)),
          order_timeout_(order_timeout) {
        workers_.emplace(workers, 1, [this](std::vector<PendingJob>& jobs, std::stop_token stop) {
            for (auto& p : jobs) p.done(order(p.job, stop));
        });
    }

    void submit(SignJob job, std::function<void(SignOutcome)> done) override {
        workers_->submit({std::move(job), std::move(done)});
    }

  private:
    SignOutcome order(const SignJob& job, std::stop_token stop) {
        std::string label =
            job.profile->name + " " + (job.names.empty() ? "" : job.names.front().value);
        auto line = [this](const std::string& text) {
            log_("issuer " + issuer_.name + ": " + text);
        };
        try {
            auto transport = default_transport(issuer_, stop);
            AcmeClient client(
                *transport, issuer_.directory, clock_,
                [this, stop](std::chrono::milliseconds d) { return clock_.sleep_for(d, stop); });
            // One account per issuer, shared by the workers: created once under this lock.
            {
                std::lock_guard lock(account_mutex_);
                ensure_account(client, issuer_, state_dir_, line);
            }
            ObtainRequest request{label, job.names,    "",
                                  "",    job.replaces, clock_.now() + order_timeout_};
            auto chain = obtain_certificate(client, *solver_, *job.csr, request, line);
            return SignOutcome{std::move(chain), 200, "", std::nullopt};
        } catch (const std::exception& e) {
            line(label + ": " + e.what());
            return failure(e, clock_.now());
        }
    }

    IssuerConfig issuer_;
    std::shared_ptr<ChallengeSolver> solver_;
    std::filesystem::path state_dir_;
    Clock& clock_;
    LogLine log_;
    std::chrono::seconds order_timeout_;
    std::mutex account_mutex_;
    std::optional<SignerWorkers> workers_;  // last: stopped before the rest goes
};

}  // namespace

std::unique_ptr<Signer> make_acme_signer(const ServiceIssuer& issuer,
                                         std::shared_ptr<ChallengeSolver> solver,
                                         const std::filesystem::path& state_dir, Clock& clock,
                                         LogLine log, int workers,
                                         std::chrono::seconds order_timeout) {
    return std::make_unique<AcmeSigner>(issuer, std::move(solver), state_dir, clock, std::move(log),
                                        workers, order_timeout);
}

}  // namespace brokertls
