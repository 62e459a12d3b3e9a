#include "record_name.hpp"

namespace brokertls {

std::string dns01_record_name(const ChallengeConfig& config, const ChallengeTask& task) {
    const std::string& name = task.identifier.value;
    auto it = config.challenge_domains.find(name);
    // "*.example.com" is validated as "example.com"; either spelling may be configured.
    if (it == config.challenge_domains.end() && task.wildcard)
        it = config.challenge_domains.find("*." + name);
    if (it != config.challenge_domains.end()) return it->second;
    return "_acme-challenge." + name;
}

}  // namespace brokertls
