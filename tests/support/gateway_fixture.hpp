#pragma once
// brokertls-gateway of this build in front of a broker without the brokertls plugin, under
// test::Process (always stopped). The gateway's brokertls.json is written to DIR/brokertls.json;
// the ports of its listeners and of its status endpoint are read from its log. A plain broker
// (Debian's mosquitto 2.0, or the vendored 2.1 when built) runs from a mosquitto.conf written
// here: no plugin, no TLS, on a free loopback port.

#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>
#include <string>

#include "support.hpp"

namespace brokertls::test {

inline std::string gateway_binary() {
    return BROKERTLS_GATEWAY_BINARY;
}

// The vendored Mosquitto 2.1's broker; "" when this build has none (BROKERTLS_MOSQUITTO21).
inline std::string mosquitto21_binary() {
#ifdef BROKERTLS_GATEWAY_MOSQUITTO21
    return std::string(BROKERTLS_GATEWAY_MOSQUITTO21) + "/sbin/mosquitto";
#else
    return "";
#endif
}

class GatewayProcess {
  public:
    GatewayProcess(const std::filesystem::path& dir, const nlohmann::json& config) {
        std::ofstream(dir / "brokertls.json") << config.dump(2);
        process_ =
            std::make_unique<Process>(std::vector<std::string>{gateway_binary(), "--config",
                                                               (dir / "brokertls.json").string()},
                                      dir / "gateway.log");
        if (!process_->wait_for_log(" ready\n", std::chrono::seconds(20)))
            throw std::runtime_error("brokertls-gateway did not start:\n" + process_->log());
        std::regex line("listener (\\S+) on port (\\d+)");
        std::string log = process_->log();
        for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it)
            ports_[(*it)[1]] = std::stoi((*it)[2]);
        std::smatch status;
        if (std::regex_search(log, status, std::regex("status on port (\\d+)")))
            status_port_ = std::stoi(status[1]);
    }
    int port(const std::string& listener) const { return ports_.at(listener); }
    // GET /status, parsed; throws when the endpoint does not answer.
    nlohmann::json status() const {
        auto r = run({"curl", "-sf", "--max-time", "5",
                      "http://127.0.0.1:" + std::to_string(status_port_) + "/status"});
        if (r.exit_code != 0) throw std::runtime_error("GET /status: " + describe(r));
        return nlohmann::json::parse(r.out);
    }
    std::string log() const { return process_->log(); }
    bool wait_for_log(const std::string& text,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return process_->wait_for_log(text, timeout);
    }
    Process& process() { return *process_; }

  private:
    std::unique_ptr<Process> process_;
    std::map<std::string, int> ports_;
    int status_port_ = -1;
};

// A broker with neither TLS nor the brokertls plugin: what the gateway fronts.
class PlainBroker {
  public:
    // `listener_lines` follow "listener PORT 127.0.0.1".
    PlainBroker(const std::filesystem::path& dir, const std::string& binary,
                const std::string& listener_lines)
        : port_(free_port()) {
        std::filesystem::path conf = dir / "mosquitto.conf";
        std::ofstream(conf)
            << "user root\nlog_dest stderr\nlog_type all\nconnection_messages true\n"
            << "listener " << port_ << " 127.0.0.1\n"
            << listener_lines << "\n";
        process_ = std::make_unique<Process>(std::vector<std::string>{binary, "-c", conf.string()},
                                             dir / "mosquitto.log");
        // Not by connecting: the tests count the connections the broker saw.
        if (!process_->wait_for_log(" running\n", std::chrono::seconds(10)))
            throw std::runtime_error("mosquitto did not start:\n" + process_->log());
    }
    int port() const { return port_; }
    std::string log() const { return process_->log(); }
    bool wait_for_log(const std::string& text,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return process_->wait_for_log(text, timeout);
    }

  private:
    int port_;
    std::unique_ptr<Process> process_;
};

}  // namespace brokertls::test
