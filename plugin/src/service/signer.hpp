#pragma once
// Who turns a checked CSR into a certificate chain for the service: a brokertls-ca directory
// (local-ca, batched) or an ACME CA. The service checks who asks and for which names; a signer
// only signs. submit() returns at once and `done` runs later on the signer's own thread, so
// the HTTP threads never wait for a CA.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/time/clock.hpp"
#include "challenges/solver.hpp"
#include "service/service_config.hpp"
#include "service/work_queue.hpp"

namespace brokertls {

struct SignJob {
    std::shared_ptr<const CertificateRequest> csr;  // signature and key already checked
    std::string common_name;                        // "" when the CSR has none
    std::vector<SubjectAltName> names;              // the CSR's SANs (the CN added for servers)
    const ServiceProfile* profile = nullptr;
    std::string replaces;  // ACME ARI: the certificate being renewed ("" = new issuance)
};

// A chain (leaf first), or why not with the HTTP status that says it: 421 the CA could not
// validate the names, 429 rate limited (retry_after), 503 the CA is unavailable, 500 a fault.
struct SignOutcome {
    std::vector<Certificate> chain;
    int status = 200;
    std::string reason;
    std::optional<std::chrono::seconds> retry_after;
};

class Signer {
  public:
    virtual ~Signer() = default;
    virtual void submit(SignJob job, std::function<void(SignOutcome)> done) = 0;
};

using LogLine = std::function<void(const std::string&)>;

// A job waiting for a signer's thread, and its answer.
struct PendingJob {
    SignJob job;
    std::function<void(SignOutcome)> done;
};
// A signer's queue and threads; jobs left at stop are answered 503.
class SignerWorkers : public WorkQueue<PendingJob> {
  public:
    SignerWorkers(int threads, std::size_t batch, Work work)
        : WorkQueue(threads, batch, std::move(work), [](PendingJob& p) {
              p.done(SignOutcome{{}, 503, "the service is stopping", std::nullopt});
          }) {}
};

// A brokertls-ca directory: jobs arriving together are signed as one batch (one lock, one
// index append, one sync), which is what makes a thousand certificates a second possible.
std::unique_ptr<Signer> make_local_ca_signer(const ServiceIssuer& issuer, Clock& clock,
                                             LogLine log);

// An ACME CA: one order per job on `workers` threads, its account under STATE_DIR/accounts/,
// challenges answered by `solver`.
std::unique_ptr<Signer> make_acme_signer(const ServiceIssuer& issuer,
                                         std::shared_ptr<ChallengeSolver> solver,
                                         const std::filesystem::path& state_dir, Clock& clock,
                                         LogLine log, int workers,
                                         std::chrono::seconds order_timeout);

}  // namespace brokertls
