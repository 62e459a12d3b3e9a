#pragma once
// Sends renewal events to the operator's exec hook (event JSON on stdin; its environment is
// BROKERTLS_EVENT, BROKERTLS_PROFILE and PATH, nothing inherited from the broker) and webhook
// (libcurl POST, JSON body), each bounded by events.timeout. Failures are logged, never thrown: an
// unreachable webhook must not stop a renewal. (The broker log and the MQTT topic are written by
// the module on the broker thread.)
//
// Log lines: "events: exec hook PATH: exit code 3: <last stderr line>" (or "timed out after
// 10s", "cannot start: ..."), "events: webhook URL: HTTP 500" (or the curl error). The URL is
// logged without user, password and query, where webhook tokens usually live.

#include <functional>
#include <string>

#include "config/config.hpp"
#include "renewal/job_state.hpp"

namespace brokertls {

class EventSinks {
  public:
    EventSinks(EventsConfig config, std::function<void(const std::string&)> log);
    // Blocking for at most about 2 × config.timeout; call off the broker thread. The exec hook
    // runs first, then the webhook. Safe to call from several threads at once.
    void dispatch(const RenewalEvent& event) const noexcept;

  private:
    void run_exec(const std::string& json, const RenewalEvent& event) const;
    void post_webhook(const std::string& json) const;
    void report(const std::string& line) const noexcept;

    EventsConfig config_;
    std::function<void(const std::string&)> log_;
};

}  // namespace brokertls
