#include "service/signer.hpp"

namespace brokertls {

SignerWorkers::SignerWorkers(int threads, std::size_t batch, Work work)
    : batch_(batch), work_(std::move(work)) {
    for (int i = 0; i < threads; ++i)
        threads_.emplace_back([this](std::stop_token stop) { run(stop); });
}

SignerWorkers::~SignerWorkers() {
    for (auto& t : threads_) t.request_stop();
    { std::lock_guard lock(mutex_); }
    wake_.notify_all();
    threads_.clear();  // joins
    for (auto& p : queue_) p.done(SignOutcome{{}, 503, "the service is stopping", std::nullopt});
}

void SignerWorkers::submit(SignJob job, std::function<void(SignOutcome)> done) {
    {
        std::lock_guard lock(mutex_);
        queue_.push_back({std::move(job), std::move(done)});
    }
    wake_.notify_one();
}

void SignerWorkers::run(std::stop_token stop) {
    while (true) {
        std::vector<Pending> jobs;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stop.stop_requested() || !queue_.empty(); });
            if (stop.stop_requested()) return;
            while (!queue_.empty() && jobs.size() < batch_) {
                jobs.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        work_(jobs, stop);
    }
}

}  // namespace brokertls
