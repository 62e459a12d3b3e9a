#pragma once
// brokertls-service of this build, run from a JSON configuration written to DIR/service.json,
// under test::Process (always stopped); the ports of its listeners are read from its log.

#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>
#include <string>

#include "support.hpp"

namespace brokertls::test {

class ServiceProcess {
  public:
    ServiceProcess(const std::filesystem::path& dir, const nlohmann::json& config) {
        std::ofstream(dir / "service.json") << config.dump(2);
        process_ = std::make_unique<Process>(
            std::vector<std::string>{service_binary(), "--config", (dir / "service.json").string()},
            dir / "service.log");
        if (!process_->wait_for_log(" ready\n", std::chrono::seconds(20)))
            throw std::runtime_error("brokertls-service did not start:\n" + process_->log());
        std::regex line("listener (\\S+) on port (\\d+)");
        std::string log = process_->log();
        for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it)
            ports_[(*it)[1]] = std::stoi((*it)[2]);
    }
    int port(const std::string& listener) const { return ports_.at(listener); }
    std::string url(const std::string& listener, const std::string& scheme = "https") const {
        return scheme + "://127.0.0.1:" + std::to_string(port(listener));
    }
    std::string log() const { return process_->log(); }

  private:
    std::unique_ptr<Process> process_;
    std::map<std::string, int> ports_;
};

}  // namespace brokertls::test
