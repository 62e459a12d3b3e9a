#include "brokertls/ca/authority.hpp"
#include "service/signer.hpp"

namespace brokertls {

namespace {

// At most this many CSRs per batch: bounds the time the CA lock is held for brokertls-ca.
constexpr std::size_t kMaxBatch = 256;
// A revoke by the operator may hold the CA's lock for a moment; longer means trouble.
constexpr std::chrono::seconds kLockTimeout{10};

class LocalCaSigner final : public Signer {
  public:
    LocalCaSigner(const ServiceIssuer& issuer, Clock& clock, LogLine log)
        : dir_(issuer.ca_dir), clock_(clock), log_(std::move(log)) {
        if (issuer.ca_passphrase_file) {
            std::string text = read_file(*issuer.ca_passphrase_file);
            passphrase_ = text.substr(0, text.find('\n'));
        }
        // Opened once now so a wrong directory or passphrase stops the service at start.
        CertificateAuthority ca(dir_, passphrase_, true, DirectoryLock::Mode::Exclusive,
                                clock_.now(), kLockTimeout);
        for (const auto& w : ca.warnings()) log_("issuer " + issuer.name + ": " + w);
    }

    void submit(SignJob job, std::function<void(SignOutcome)> done) override {
        workers_.submit({std::move(job), std::move(done)});
    }

  private:
    using Pending = PendingJob;

    void sign(std::vector<Pending>& batch) {
        std::vector<SignOutcome> outcomes(batch.size());
        try {
            std::vector<CertificateAuthority::CheckedCsr> requests;
            for (const auto& p : batch)
                requests.push_back({p.job.csr.get(), p.job.profile->kind, p.job.common_name,
                                    p.job.names, p.job.profile->lifetime});
            CertificateAuthority ca(dir_, passphrase_, true, DirectoryLock::Mode::Exclusive,
                                    clock_.now(), kLockTimeout);
            auto certificates = ca.sign_checked(requests);
            auto above = ca.issuing_chain();
            for (std::size_t i = 0; i < batch.size(); ++i) {
                outcomes[i].chain.push_back(certificates[i]);
                outcomes[i].chain.insert(outcomes[i].chain.end(), above.begin(), above.end());
            }
        } catch (const Error& e) {
            // The CA refused the whole batch (its lock, its disk): nothing was issued.
            log_(std::string("local CA ") + dir_.string() + ": " + e.what());
            for (auto& o : outcomes) o = SignOutcome{{}, 503, "the CA is unavailable", {}};
        }
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(outcomes[i]));
    }

    std::filesystem::path dir_;
    Passphrase passphrase_;
    Clock& clock_;
    LogLine log_;
    // One thread: the CA signs under its directory's lock anyway. Last: stopped first.
    SignerWorkers workers_{1, kMaxBatch,
                           [this](std::vector<Pending>& batch, std::stop_token) { sign(batch); }};
};

}  // namespace

std::unique_ptr<Signer> make_local_ca_signer(const ServiceIssuer& issuer, Clock& clock,
                                             LogLine log) {
    return std::make_unique<LocalCaSigner>(issuer, clock, std::move(log));
}

}  // namespace brokertls
