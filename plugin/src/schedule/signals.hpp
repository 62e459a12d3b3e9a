#pragma once

#include <pthread.h>
#include <signal.h>

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

}  // namespace brokertls
