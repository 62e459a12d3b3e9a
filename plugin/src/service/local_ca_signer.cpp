#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

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
        thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
    }

    ~LocalCaSigner() override {
        thread_.request_stop();
        { std::lock_guard lock(mutex_); }
        wake_.notify_all();
        thread_.join();
    }

    void submit(SignJob job, std::function<void(SignOutcome)> done) override {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back({std::move(job), std::move(done)});
        }
        wake_.notify_one();
    }

  private:
    struct Pending {
        SignJob job;
        std::function<void(SignOutcome)> done;
    };

    void run(std::stop_token stop) {
        while (true) {
            std::vector<Pending> batch;
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [&] { return stop.stop_requested() || !queue_.empty(); });
                if (stop.stop_requested()) break;
                while (!queue_.empty() && batch.size() < kMaxBatch) {
                    batch.push_back(std::move(queue_.front()));
                    queue_.pop_front();
                }
            }
            sign(batch);
        }
        // Answer what is left so no client waits for a response that never comes.
        std::lock_guard lock(mutex_);
        for (auto& p : queue_) p.done(SignOutcome{{}, 503, "the service is stopping", {}});
        queue_.clear();
    }

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
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Pending> queue_;
    std::jthread thread_;
};

}  // namespace

std::unique_ptr<Signer> make_local_ca_signer(const ServiceIssuer& issuer, Clock& clock,
                                             LogLine log) {
    return std::make_unique<LocalCaSigner>(issuer, clock, std::move(log));
}

}  // namespace brokertls
