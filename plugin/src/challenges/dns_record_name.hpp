#pragma once
// Which TXT record a dns-01 value for a name goes to, before any CNAME is followed.

#include <string>

#include "challenges/solver.hpp"
#include "config/config.hpp"

namespace brokertls {

struct ChallengeRecordName {
    std::string name;            // absolute, lower case
    bool explicit_name = false;  // from challenge_domains: used as is, no CNAME following
};

// challenge_domains[NAME] when the operator named the record (matched without regard to case
// or a trailing dot), else "_acme-challenge.NAME." (a "*." prefix is dropped: a wildcard is
// validated at its base name).
ChallengeRecordName challenge_record_name(const ChallengeConfig& config,
                                          const std::string& identifier);

// The same record name without the trailing dot, as hooks and operators write it.
std::string dns01_record_name(const ChallengeConfig& config, const ChallengeTask& task);

}  // namespace brokertls
