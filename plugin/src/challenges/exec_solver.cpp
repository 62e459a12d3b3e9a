// dns-01 through the operator's hook: `COMMAND present|cleanup RECORD_NAME VALUE NAME` with
// BROKERTLS_PROFILE and PATH as its whole environment (run_subprocess: nothing inherited). The hook
// owns the DNS side entirely, including waiting until the record is visible: present() returns when
// the hook exits 0. Orders for a name and its wildcard set two values on one record, so a hook must
// add (and remove) single values rather than replace the record; cleanup may also run for a task
// whose present failed.

#include <sstream>

#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "dns_record_name.hpp"
#include "process/subprocess.hpp"
#include "solvers.hpp"

namespace brokertls {
namespace {

class ExecSolver : public ChallengeSolver {
  public:
    ExecSolver(const ChallengeConfig& config, SolverContext context)
        : config_(config), context_(std::move(context)) {}

    std::string type() const override { return "dns-01"; }

    void present(const std::vector<ChallengeTask>& tasks) override {
        for (const auto& task : tasks) {
            if (Problem problem = run_hook("present", task)) {
                fail(ErrorKind::Io, "dns-01 exec hook " + config_.command.string(),
                     "present " + dns01_record_name(config_, task) + ": " + *problem);
            }
        }
    }

    void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override {
        for (const auto& task : tasks) {
            try {
                if (Problem problem = run_hook("cleanup", task)) {
                    context_.log("dns-01 exec hook " + config_.command.string() + ": cleanup " +
                                 dns01_record_name(config_, task) + ": " + *problem);
                }
            } catch (const std::exception& e) {
                context_.log(std::string("dns-01 exec hook: cleanup: ") + e.what());
            }
        }
    }

  private:
    // Runs the hook for one task; SubprocessResult::problem(), printable.
    Problem run_hook(const std::string& action, const ChallengeTask& task) {
        auto result =
            run_subprocess({config_.command.string(), action, dns01_record_name(config_, task),
                            dns01_txt_value(task.key_authorization), task.identifier.value},
                           "", config_.timeout, {{"BROKERTLS_PROFILE", task.profile}});
        std::istringstream err(result.err);
        for (std::string line; std::getline(err, line);) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.empty()) context_.log("exec hook: " + printable(line));
        }
        if (result.err_truncated)
            context_.log("exec hook: stderr truncated: only its first " +
                         std::to_string(kMaxCapturedOutput) + " bytes were kept");
        Problem problem = result.problem();
        if (problem) problem = printable(*problem);
        return problem;
    }

    ChallengeConfig config_;
    SolverContext context_;
};

}  // namespace

std::unique_ptr<ChallengeSolver> make_exec_solver(const ChallengeConfig& config,
                                                  SolverContext context) {
    return std::make_unique<ExecSolver>(config, std::move(context));
}

}  // namespace brokertls
