#pragma once
// A queue with its own threads: each thread takes up to `batch` waiting items at a time and
// hands them to `work`. Items still waiting when the queue is destroyed go to `abandon` (a
// signer answers them 503, so no client waits for an answer that never comes).

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

namespace brokertls {

template <class Item>
class WorkQueue {
  public:
    using Work = std::function<void(std::vector<Item>& items, std::stop_token stop)>;
    using Abandon = std::function<void(Item& item)>;

    WorkQueue(int threads, std::size_t batch, Work work, Abandon abandon = {})
        : batch_(batch), work_(std::move(work)), abandon_(std::move(abandon)) {
        for (int i = 0; i < threads; ++i)
            threads_.emplace_back([this](std::stop_token stop) { run(stop); });
    }
    ~WorkQueue() {
        for (auto& t : threads_) t.request_stop();
        { std::lock_guard lock(mutex_); }
        wake_.notify_all();
        threads_.clear();  // joins
        if (abandon_)
            for (auto& item : queue_) abandon_(item);
    }
    WorkQueue(const WorkQueue&) = delete;
    WorkQueue& operator=(const WorkQueue&) = delete;

    void submit(Item item) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(item));
        }
        wake_.notify_one();
    }

  private:
    void run(std::stop_token stop) {
        while (true) {
            std::vector<Item> items;
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [&] { return stop.stop_requested() || !queue_.empty(); });
                if (stop.stop_requested()) return;
                while (!queue_.empty() && items.size() < batch_) {
                    items.push_back(std::move(queue_.front()));
                    queue_.pop_front();
                }
            }
            work_(items, stop);
        }
    }

    std::size_t batch_;
    Work work_;
    Abandon abandon_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Item> queue_;
    std::vector<std::jthread> threads_;
};

}  // namespace brokertls
