#include "dns_record_name.hpp"

#include "dns_client.hpp"

namespace brokertls {

ChallengeRecordName challenge_record_name(const ChallengeConfig& config,
                                          const std::string& identifier) {
    auto base = [](const std::string& name) {
        return absolute_name(name.rfind("*.", 0) == 0 ? name.substr(2) : name);
    };
    std::string wanted = base(identifier);
    for (const auto& [domain, record] : config.challenge_domains)
        if (base(domain) == wanted) return {absolute_name(record), true};
    return {"_acme-challenge." + wanted, false};
}

std::string dns01_record_name(const ChallengeConfig& config, const ChallengeTask& task) {
    std::string name = challenge_record_name(config, task.identifier.value).name;
    if (!name.empty() && name.back() == '.') name.pop_back();
    return name;
}

}  // namespace brokertls
