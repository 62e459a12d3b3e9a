// TEMPORARY (branch `solvers` only): lets make_solver link before the rfc2136 solver lands.
// Delete this file when merging the real rfc2136 solver.

#include "brokertls/error.hpp"
#include "solvers.hpp"

namespace brokertls {

std::unique_ptr<ChallengeSolver> make_rfc2136_solver(const ChallengeConfig&, SolverContext) {
    fail(ErrorKind::Usage, "rfc2136", "not built");
}

}  // namespace brokertls
