#pragma once
// Threads brokertls starts inside a broker: how they treat the broker's signals, and a loop
// spread over the cores.

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace brokertls {

// Called first in each thread brokertls starts: the broker's signals (SIGHUP reload, SIGTERM,
// SIGINT, SIGUSR1/2) then reach one of the broker's own threads, where they interrupt its
// event loop at once, instead of one of ours. Faults (SIGSEGV ...) are not blocked.
inline void block_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Calls f(0) .. f(count - 1), spread over the cores (this thread and at most 7 more, which end
// before it returns); f must not throw.
template <class F>
void for_each_parallel(std::size_t count, F f) {
    unsigned workers = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
    std::atomic<std::size_t> next{0};
    auto work = [&] {
        for (std::size_t i; (i = next.fetch_add(1)) < count;) f(i);
    };
    std::vector<std::jthread> threads;
    for (unsigned w = 1; w < workers && w < count; ++w)
        threads.emplace_back([&] {
            block_signals();
            work();
        });
    work();
}

}  // namespace brokertls
