#pragma once
// Where a dns-01 TXT record goes: _acme-challenge.NAME, or the record the operator delegated
// the name's challenges to (`challenge_domains`, for a CNAME to a zone we may update).

#include <string>

#include "brokertls/challenges/solver.hpp"

namespace brokertls {

std::string dns01_record_name(const ChallengeConfig& config, const ChallengeTask& task);

}  // namespace brokertls
