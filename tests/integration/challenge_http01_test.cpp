#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "challenges/solver.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;

struct HttpAnswer {
    int status = 0;
    std::string body;
};

HttpAnswer get(int port, const std::string& path, const std::string& method = "GET") {
    auto r = test::run({"curl", "-s", "-m", "5", "-X", method, "-w", "\n%{http_code}",
                        "http://127.0.0.1:" + std::to_string(port) + path},
                       "", 10s);
    auto nl = r.out.rfind('\n');
    if (nl == std::string::npos) return {};
    return {std::atoi(r.out.c_str() + nl + 1), r.out.substr(0, nl)};
}

// A plain TCP connection to 127.0.0.1:port, or -1.
int connect_to(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Whether a new listener could take the port (as the responder does, with SO_REUSEADDR so
// closed connections in TIME_WAIT do not count).
bool port_is_free(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok =
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd, 1) == 0;
    ::close(fd);
    return ok;
}

// Everything the server sends until it closes (bounded).
std::string read_all(int fd) {
    std::string out;
    char buffer[4096];
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
}

ChallengeTask task(std::string token, std::string profile = "mqtt") {
    ChallengeTask t;
    t.profile = std::move(profile);
    t.identifier = {"dns", "broker.example.com"};
    t.token = std::move(token);
    t.key_authorization = t.token + ".thumbprint-abc";
    return t;
}

class Http01Test : public ::testing::Test {
  protected:
    Http01Test() : port_(test::free_port()) {
        config_.type = ChallengeConfig::Type::Http01;
        config_.listen = "127.0.0.1:" + std::to_string(port_);
    }
    std::unique_ptr<ChallengeSolver> solver() {
        SolverContext context;
        context.log = [this](const std::string& line) {
            std::lock_guard lock(log_mutex_);
            log_.push_back(line);
        };
        return make_solver(config_, context, gate_);
    }
    std::string url(const std::string& token) const {
        return "/.well-known/acme-challenge/" + token;
    }

    int port_;
    ChallengeConfig config_;
    ManualGate gate_;
    std::mutex log_mutex_;
    std::vector<std::string> log_;
};

TEST_F(Http01Test, ServesHeldTokensOnlyWhilePresented) {
    auto s = solver();
    EXPECT_TRUE(port_is_free(port_));  // not listening before present()
    std::vector<ChallengeTask> tasks{task("tok-A_1"), task("tokB")};
    s->present(tasks);

    auto a = get(port_, url("tok-A_1"));
    EXPECT_EQ(a.status, 200);
    EXPECT_EQ(a.body, "tok-A_1.thumbprint-abc");
    EXPECT_EQ(get(port_, url("tokB")).body, "tokB.thumbprint-abc");
    auto headers = test::run({"curl", "-s", "-m", "5", "-D", "-", "-o", "/dev/null",
                              "http://127.0.0.1:" + std::to_string(port_) + url("tokB")});
    EXPECT_NE(headers.out.find("Content-Type: text/plain"), std::string::npos) << headers.out;

    EXPECT_EQ(get(port_, url("unknown")).status, 404);
    EXPECT_EQ(get(port_, "/").status, 404);
    EXPECT_EQ(get(port_, "/index.html").status, 404);
    EXPECT_EQ(get(port_, url("tokB") + "/x").status, 404);
    EXPECT_EQ(get(port_, "/.well-known/acme-challenge/").status, 404);
    EXPECT_EQ(get(port_, url("tokB"), "POST").status, 404);

    s->cleanup(tasks);
    EXPECT_EQ(get(port_, url("tokB")).status, 0);  // nothing listens any more
    EXPECT_TRUE(port_is_free(port_));
    EXPECT_EQ(log_, (std::vector<std::string>{"http-01: listening on " + config_.listen,
                                              "http-01: stopped listening on " + config_.listen}));
}

TEST_F(Http01Test, ConcurrentPresentersShareTheListener) {
    auto first = solver();
    auto second = solver();
    std::vector<ChallengeTask> first_tasks{task("first", "profile-a")};
    std::vector<ChallengeTask> second_tasks{task("second", "profile-b")};
    std::atomic<int> failures{0};
    auto present = [&](ChallengeSolver& s, const std::vector<ChallengeTask>& tasks) {
        try {
            s.present(tasks);
        } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
            ++failures;
        }
    };
    std::thread a([&] { present(*first, first_tasks); });
    std::thread b([&] { present(*second, second_tasks); });
    a.join();
    b.join();
    ASSERT_EQ(failures, 0);
    EXPECT_EQ(get(port_, url("first")).body, "first.thumbprint-abc");
    EXPECT_EQ(get(port_, url("second")).body, "second.thumbprint-abc");

    first->cleanup(first_tasks);  // the other order still needs the listener
    EXPECT_EQ(get(port_, url("first")).status, 404);
    EXPECT_EQ(get(port_, url("second")).status, 200);
    second->cleanup(second_tasks);
    EXPECT_TRUE(port_is_free(port_));
}

TEST_F(Http01Test, SlowAndOversizedClientsDoNotBlockValidation) {
    auto s = solver();
    s->present({task("tok")});
    // A client that connects and says nothing holds only its own connection.
    int silent = connect_to(port_);
    ASSERT_GE(silent, 0);
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(get(port_, url("tok")).status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);

    // A request that never ends is cut off instead of buffered.
    int flood = connect_to(port_);
    ASSERT_GE(flood, 0);
    std::string junk = "GET /" + std::string(9000, 'a');
    ASSERT_EQ(::send(flood, junk.data(), junk.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(junk.size()));
    EXPECT_TRUE(read_all(flood).starts_with("HTTP/1.1 431 ")) << "no 431 answer";
    ::close(flood);

    // Not HTTP at all.
    int garbage = connect_to(port_);
    std::string hello = "hello\r\n\r\n";
    ::send(garbage, hello.data(), hello.size(), MSG_NOSIGNAL);
    EXPECT_TRUE(read_all(garbage).starts_with("HTTP/1.1 400 "));
    ::close(garbage);

    // Stopping does not wait for the silent client.
    started = std::chrono::steady_clock::now();
    s->cleanup({task("tok")});
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
    EXPECT_EQ(read_all(silent), "");  // closed by the responder
    ::close(silent);
    EXPECT_TRUE(port_is_free(port_));
}

TEST_F(Http01Test, PortInUseIsAClearErrorAndLeavesNothingBehind) {
    int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(holder, 1), 0);
    auto s = solver();
    EXPECT_EQ(test::error_of([&] { s->present({task("tok")}); }, ErrorKind::Io),
              "http-01: cannot listen on " + config_.listen + ": Address already in use");
    s->cleanup({task("tok")});
    ::close(holder);

    // The failed attempt left no half-started listener: the next order starts one.
    s->present({task("tok")});
    EXPECT_EQ(get(port_, url("tok")).status, 200);
    s->cleanup({task("tok")});
}

TEST_F(Http01Test, ListensOnIpv6) {
    config_.listen = "[::1]:" + std::to_string(port_);
    auto s = solver();
    s->present({task("tok")});
    auto r = test::run(
        {"curl", "-s", "-m", "5", "-g", "http://[::1]:" + std::to_string(port_) + url("tok")});
    EXPECT_EQ(r.out, "tok.thumbprint-abc");
    s->cleanup({task("tok")});
}

}  // namespace
}  // namespace brokertls
