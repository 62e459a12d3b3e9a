#pragma once
// The solver implementations make_solver() chooses between (internal to the library).

#include <memory>

#include "challenges/solver.hpp"

namespace brokertls {

// http-01: a built-in responder listening on config.listen only while tasks are presented.
std::unique_ptr<ChallengeSolver> make_http01_responder(const ChallengeConfig& config,
                                                       SolverContext context);
// http-01: token files under config.webroot/.well-known/acme-challenge/.
std::unique_ptr<ChallengeSolver> make_webroot_solver(const ChallengeConfig& config,
                                                     SolverContext context);
// tls-alpn-01 (RFC 8737): a TLS responder on config.listen for ALPN "acme-tls/1".
std::unique_ptr<ChallengeSolver> make_tls_alpn_responder(const ChallengeConfig& config,
                                                         SolverContext context);
// dns-01 through RFC 2136 UPDATE signed with TSIG (ldns).
std::unique_ptr<ChallengeSolver> make_rfc2136_solver(const ChallengeConfig& config,
                                                     SolverContext context);
// dns-01 through the operator's hook: COMMAND present|cleanup RECORD VALUE NAME.
std::unique_ptr<ChallengeSolver> make_exec_solver(const ChallengeConfig& config,
                                                  SolverContext context);
// dns-01 by hand: log the record, emit manual-action-required, wait for the operator.
std::unique_ptr<ChallengeSolver> make_manual_solver(const ChallengeConfig& config,
                                                    SolverContext context, ManualGate& gate);

}  // namespace brokertls
