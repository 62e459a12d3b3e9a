// http-01 built-in responder: a tiny HTTP/1.1 server that answers
// GET /.well-known/acme-challenge/<token> for the tokens currently presented, and 404 for
// everything else. It listens only while some order has tokens presented; several orders
// (profiles, issuers) sharing one listen address share one listener.

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <map>
#include <mutex>

#include "brokertls/error.hpp"
#include "socket_server.hpp"
#include "solvers.hpp"

namespace brokertls {
namespace {

constexpr std::string_view kPrefix = "/.well-known/acme-challenge/";
// Request line and headers of a validation request are a few hundred bytes; anything beyond
// this is not a CA and is refused instead of buffered.
constexpr std::size_t kMaxRequest = 8192;
// A client that has not sent its request (and read the answer) by then is dropped.
constexpr std::chrono::seconds kConnectionTimeout{10};

class TokenTable {
  public:
    void add(const std::string& token, const std::string& key_authorization) {
        std::lock_guard lock(mutex_);
        auto& entry = tokens_[token];
        entry.key_authorization = key_authorization;
        ++entry.holders;
    }
    void remove(const std::string& token) {
        std::lock_guard lock(mutex_);
        auto it = tokens_.find(token);
        if (it != tokens_.end() && --it->second.holders <= 0) tokens_.erase(it);
    }
    std::optional<std::string> find(const std::string& token) const {
        std::lock_guard lock(mutex_);
        auto it = tokens_.find(token);
        if (it == tokens_.end()) return std::nullopt;
        return it->second.key_authorization;
    }
    bool empty() const {
        std::lock_guard lock(mutex_);
        return tokens_.empty();
    }

  private:
    struct Entry {
        std::string key_authorization;
        int holders = 0;
    };
    mutable std::mutex mutex_;
    std::map<std::string, Entry> tokens_;
};

std::string http_response(std::string_view status, std::string_view body) {
    std::string out = "HTTP/1.1 ";
    out += status;
    out += "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n";
    out += body;
    return out;
}

// The answer to a complete request head.
std::string answer(std::string_view head, const TokenTable& tokens) {
    Http01Request request = parse_http01_request(head);
    if (request.kind == Http01Request::Kind::Malformed)
        return http_response("400 Bad Request", "bad request\n");
    if (request.kind == Http01Request::Kind::Challenge) {
        if (auto key_authorization = tokens.find(request.token))
            return http_response("200 OK", *key_authorization);
    }
    return http_response("404 Not Found", "not found\n");
}

class HttpConnection : public ServedConnection {
  public:
    HttpConnection(int fd, std::shared_ptr<const TokenTable> tokens)
        : fd_(fd), tokens_(std::move(tokens)) {}

    short advance() override {
        if (response_.empty()) {
            if (short wait = read_request()) return wait;
            if (response_.empty()) return 0;
        }
        while (sent_ < response_.size()) {
            ssize_t n =
                ::send(fd_, response_.data() + sent_, response_.size() - sent_, MSG_NOSIGNAL);
            if (n > 0) {
                sent_ += static_cast<std::size_t>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                return (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ? POLLOUT : 0;
            }
        }
        ::shutdown(fd_, SHUT_WR);
        return 0;
    }

  private:
    // Reads what is available; returns POLLIN while the head is incomplete, 0 once response_
    // is set (or the client went away, leaving it empty).
    short read_request() {
        char buffer[2048];
        while (true) {
            ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
            if (n > 0) {
                request_.append(buffer, static_cast<std::size_t>(n));
                if (request_.find("\r\n\r\n") != std::string::npos) {
                    response_ = answer(request_, *tokens_);
                    return 0;
                }
                if (request_.size() > kMaxRequest) {
                    response_ = http_response("431 Request Header Fields Too Large", "too large\n");
                    return 0;
                }
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                return (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ? POLLIN : 0;
            }
        }
    }

    int fd_;
    std::shared_ptr<const TokenTable> tokens_;
    std::string request_;
    std::string response_;
    std::size_t sent_ = 0;
};

// The running listeners by listen address, shared by every http-01 solver of the process.
struct Listener {
    std::shared_ptr<TokenTable> tokens;
    std::unique_ptr<SocketServer> server;
};
std::mutex listeners_mutex;
std::map<std::string, Listener> listeners;

class Http01Responder : public ChallengeSolver {
  public:
    Http01Responder(const ChallengeConfig& config, SolverContext context)
        : listen_(config.listen.empty() ? "0.0.0.0:80" : config.listen),
          context_(std::move(context)) {}

    std::string type() const override { return "http-01"; }

    void present(const std::vector<ChallengeTask>& tasks) override {
        if (tasks.empty()) return;
        std::lock_guard lock(listeners_mutex);
        auto it = listeners.find(listen_);
        if (it == listeners.end()) {
            auto tokens = std::make_shared<TokenTable>();
            auto server = std::make_unique<SocketServer>(
                listen_, "http-01",
                [tokens](int fd) { return std::make_unique<HttpConnection>(fd, tokens); },
                kConnectionTimeout);
            it = listeners.emplace(listen_, Listener{tokens, std::move(server)}).first;
            context_.log("http-01: listening on " + listen_);
        }
        for (const auto& task : tasks) it->second.tokens->add(task.token, task.key_authorization);
    }

    void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override {
        try {
            std::lock_guard lock(listeners_mutex);
            auto it = listeners.find(listen_);
            if (it == listeners.end()) return;
            for (const auto& task : tasks) it->second.tokens->remove(task.token);
            if (it->second.tokens->empty()) {
                listeners.erase(it);
                context_.log("http-01: stopped listening on " + listen_);
            }
        } catch (const std::exception& e) {
            context_.log(std::string("http-01: cleanup: ") + e.what());
        }
    }

  private:
    std::string listen_;
    SolverContext context_;
};

}  // namespace

Http01Request parse_http01_request(std::string_view head) {
    std::string_view line = head.substr(0, head.find("\r\n"));
    auto first = line.find(' ');
    auto last = line.rfind(' ');
    if (first == std::string_view::npos || first == last ||
        !line.substr(last + 1).starts_with("HTTP/1.")) {
        return {};
    }
    std::string_view method = line.substr(0, first);
    std::string_view target = line.substr(first + 1, last - first - 1);
    if (method == "GET" && target.starts_with(kPrefix)) {
        std::string_view token = target.substr(kPrefix.size());
        if (!token.empty() && token.find('/') == std::string_view::npos)
            return {Http01Request::Kind::Challenge, std::string(token)};
    }
    return {Http01Request::Kind::Other, ""};
}

std::unique_ptr<ChallengeSolver> make_http01_responder(const ChallengeConfig& config,
                                                       SolverContext context) {
    return std::make_unique<Http01Responder>(config, std::move(context));
}

}  // namespace brokertls
