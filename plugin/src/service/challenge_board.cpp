#include "service/challenge_board.hpp"

namespace brokertls {

void ChallengeBoard::put(const std::string& token, const std::string& key_authorization) {
    std::lock_guard lock(mutex_);
    tokens_[token] = key_authorization;
}

void ChallengeBoard::remove(const std::string& token) {
    std::lock_guard lock(mutex_);
    tokens_.erase(token);
}

std::optional<std::string> ChallengeBoard::get(const std::string& token) const {
    std::lock_guard lock(mutex_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) return std::nullopt;
    return it->second;
}

namespace {

class BoardSolver final : public ChallengeSolver {
  public:
    explicit BoardSolver(std::shared_ptr<ChallengeBoard> board) : board_(std::move(board)) {}
    std::string type() const override { return "http-01"; }
    // Tokens are random per challenge (RFC 8555 §8.1), so orders never share one.
    void present(const std::vector<ChallengeTask>& tasks) override {
        for (const auto& t : tasks) board_->put(t.token, t.key_authorization);
    }
    void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override {
        for (const auto& t : tasks) board_->remove(t.token);
    }

  private:
    std::shared_ptr<ChallengeBoard> board_;
};

}  // namespace

std::unique_ptr<ChallengeSolver> make_board_solver(std::shared_ptr<ChallengeBoard> board) {
    return std::make_unique<BoardSolver>(std::move(board));
}

}  // namespace brokertls
