#pragma once
// http-01 for brokertls-service (ACMEMS): web servers forward GET /.well-known/acme-challenge/
// to the service's acme-challenge listeners, which answer from this board. The ACME signer's
// solver puts key authorizations on it while an order is validated and takes them off after.
// An unknown token is a 404, so several service instances can stand behind one proxy with
// `proxy_next_upstream http_404`.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "challenges/solver.hpp"

namespace brokertls {

class ChallengeBoard {
  public:
    void put(const std::string& token, const std::string& key_authorization);
    void remove(const std::string& token);
    std::optional<std::string> get(const std::string& token) const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, std::string> tokens_;
};

// The http-01 solver that writes to `board`.
std::unique_ptr<ChallengeSolver> make_board_solver(std::shared_ptr<ChallengeBoard> board);

}  // namespace brokertls
