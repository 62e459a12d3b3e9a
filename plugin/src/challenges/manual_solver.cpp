// dns-01 by hand: the operator is told which TXT records to set (log line and a
// "manual-action-required" event), then the order waits on the ManualGate until
// `brokertls-ctl resume PROFILE` (or $CONTROL resumeChallenge), the configured timeout, or the
// module stopping.

#include <algorithm>

#include "brokertls/error.hpp"
#include "dns_record_name.hpp"
#include "solvers.hpp"

namespace brokertls {
namespace {

// "24h", "90m", "45s": the largest unit that states the timeout exactly.
std::string describe(std::chrono::seconds duration) {
    long s = static_cast<long>(duration.count());
    if (s > 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
    if (s > 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
    return std::to_string(s) + "s";
}

class ManualSolver : public ChallengeSolver {
  public:
    ManualSolver(const ChallengeConfig& config, SolverContext context, ManualGate& gate)
        : config_(config), context_(std::move(context)), gate_(gate) {}

    std::string type() const override { return "dns-01"; }

    void present(const std::vector<ChallengeTask>& tasks) override {
        std::vector<std::string> profiles;
        for (const auto& task : tasks) {
            std::string message = "manual dns-01 for " + task.profile + ": set TXT " +
                                  dns01_record_name(config_, task) + " \"" +
                                  dns01_txt_value(task.key_authorization) +
                                  "\" then run `brokertls-ctl resume " + task.profile + "`";
            context_.log(message);
            context_.event("manual-action-required", task.profile, message);
            if (std::find(profiles.begin(), profiles.end(), task.profile) == profiles.end())
                profiles.push_back(task.profile);
        }
        // The Sleeper contract: it returns false as soon as the module is stopping, so a
        // zero-length sleep is a non-blocking "are we stopping?" the gate can poll.
        auto stopped = [this] {
            return context_.sleep && !context_.sleep(std::chrono::milliseconds(0));
        };
        // One resume per profile releases all of its records: the operator sets them all first.
        for (const auto& profile : profiles) {
            if (gate_.wait(profile, config_.timeout, stopped)) continue;
            if (stopped()) fail(ErrorKind::State, profile + ": manual dns-01", "stopped");
            fail(ErrorKind::State, profile,
                 "manual dns-01 not resumed within " + describe(config_.timeout));
        }
    }

    void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override {
        for (const auto& task : tasks) {
            try {
                context_.log("manual dns-01 for " + task.profile + ": you may now remove TXT " +
                             dns01_record_name(config_, task) + " \"" +
                             dns01_txt_value(task.key_authorization) + "\"");
            } catch (const std::exception& e) {
                context_.log(std::string("manual dns-01: cleanup: ") + e.what());
            }
        }
    }

  private:
    ChallengeConfig config_;
    SolverContext context_;
    ManualGate& gate_;
};

}  // namespace

std::unique_ptr<ChallengeSolver> make_manual_solver(const ChallengeConfig& config,
                                                    SolverContext context, ManualGate& gate) {
    return std::make_unique<ManualSolver>(config, std::move(context), gate);
}

}  // namespace brokertls
