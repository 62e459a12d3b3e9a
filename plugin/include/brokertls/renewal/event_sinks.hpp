#pragma once
// Sends renewal events to the operator's exec hook (event JSON on stdin, BROKERTLS_EVENT and
// BROKERTLS_PROFILE in the environment) and webhook (libcurl POST, JSON body), each bounded by
// events.timeout. Failures are logged, never thrown: an unreachable webhook must not stop a
// renewal. (The broker log and the MQTT topic are written by the module on the broker thread.)

#include <functional>
#include <string>

#include "brokertls/config/config.hpp"
#include "brokertls/renewal/job_state.hpp"

namespace brokertls {

class EventSinks {
  public:
    EventSinks(EventsConfig config, std::function<void(const std::string&)> log);
    // Blocking for at most about 2 × config.timeout; call off the broker thread.
    void dispatch(const RenewalEvent& event) const;

  private:
    EventsConfig config_;
    std::function<void(const std::string&)> log_;
};

}  // namespace brokertls
