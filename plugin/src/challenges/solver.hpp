#pragma once
// Challenge solvers behind one interface: the ACME order flow hands a solver every challenge of
// an order at once (so dns-01 adds all records, then waits for propagation once), answers the
// challenges when present() returns, and always calls cleanup() afterwards, also on failure.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "acme/client.hpp"
#include "config/config.hpp"

namespace brokertls {

struct ChallengeTask {
    std::string profile;        // certificate profile being obtained (logs, manual resume)
    AcmeIdentifier identifier;  // the name validated: "a.example.com" also for "*.a.example.com"
    bool wildcard = false;
    std::string token;
    std::string key_authorization;  // token "." account thumbprint
};

// What a solver may do besides its own work: log a line, emit a typed event (the manual mode's
// "manual-action-required"), wait interruptibly.
struct SolverContext {
    std::function<void(const std::string& line)> log = [](const std::string&) {};
    std::function<void(const std::string& type, const std::string& profile,
                       const std::string& message)>
        event = [](const std::string&, const std::string&, const std::string&) {};
    Sleeper sleep;
};

class ChallengeSolver {
  public:
    virtual ~ChallengeSolver() = default;
    // "http-01", "dns-01" or "tls-alpn-01": the ACME challenge type this solver answers.
    virtual std::string type() const = 0;
    // Returns once the CA may check every task (responder serving, records visible on the
    // authoritative servers, operator resumed). Throws Error with the reason otherwise.
    virtual void present(const std::vector<ChallengeTask>& tasks) = 0;
    // Undoes present() for these tasks; never throws (failures are logged).
    virtual void cleanup(const std::vector<ChallengeTask>& tasks) noexcept = 0;
};

// The dns-01 TXT value: base64url(SHA-256(key authorization)).
std::string dns01_txt_value(const std::string& key_authorization);

// Resumes paused manual dns-01 orders ($CONTROL resumeChallenge, `brokertls-ctl resume NAME`).
// Shared by the module (which resumes) and every manual solver (which waits).
class ManualGate {
  public:
    // Marks `profile` resumed; false when no order of that profile is waiting.
    bool resume(const std::string& profile);
    // Names of the profiles waiting for an operator.
    std::vector<std::string> waiting() const;
    // Blocks until resume(profile), `timeout`, or `stopped()` becomes true (checked every
    // 100 ms). True when resumed.
    bool wait(const std::string& profile, std::chrono::milliseconds timeout,
              const std::function<bool()>& stopped);

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_ = make_impl();
    static std::shared_ptr<Impl> make_impl();
};

// Builds the solver `config` describes. `gate` is used by manual dns-01 only.
std::unique_ptr<ChallengeSolver> make_solver(const ChallengeConfig& config, SolverContext context,
                                             ManualGate& gate);

}  // namespace brokertls
