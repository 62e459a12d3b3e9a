#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "brokertls/store/files.hpp"
#include "renewal/event_sinks.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

const RenewalEvent sample_event{"failed", "mqtt-public", "urn:ietf:params:acme:error:rateLimited",
                                from_iso8601("2026-11-24T17:05:00Z")};

// Collects the module's log lines.
struct Log {
    std::mutex mutex;
    std::vector<std::string> lines;
    std::function<void(const std::string&)> sink() {
        return [this](const std::string& line) {
            std::lock_guard lock(mutex);
            lines.push_back(line);
        };
    }
};

// A one-request HTTP/1.1 server on 127.0.0.1 in a thread: it records the request and answers
// with `status`, or (status 0) holds the connection open without answering until destroyed.
// Every wait is bounded so a broken test cannot hang.
class OneRequestServer {
  public:
    explicit OneRequestServer(int status) : status_(status) {
        listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            listen(listener_, 4) != 0 ||
            getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            throw std::runtime_error("cannot listen on 127.0.0.1");
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    OneRequestServer(const OneRequestServer&) = delete;
    OneRequestServer& operator=(const OneRequestServer&) = delete;
    ~OneRequestServer() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        close(listener_);
    }

    std::string url(const std::string& path = "/hook") const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    // Waits for the server to finish, then gives what it received.
    std::string request() {
        if (thread_.joinable()) thread_.join();
        return request_;
    }

  private:
    // Waits for `fd` to become readable, in slices so the destructor can stop it.
    bool readable(int fd, SteadyClock::time_point deadline) {
        while (!stop_ && SteadyClock::now() < deadline) {
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 50) > 0) return true;
        }
        return false;
    }

    void serve() {
        auto deadline = SteadyClock::now() + 10s;
        if (!readable(listener_, deadline)) return;
        int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) return;
        std::string data;
        char buffer[4096];
        while (!complete(data) && readable(client, deadline)) {
            ssize_t n = read(client, buffer, sizeof buffer);
            if (n <= 0) break;
            data.append(buffer, static_cast<std::size_t>(n));
        }
        request_ = data;
        if (status_ == 0) {
            readable(client, deadline);  // until the client gives up or the test ends
        } else {
            std::string answer = "HTTP/1.1 " + std::to_string(status_) +
                                 " Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            ssize_t sent = write(client, answer.data(), answer.size());
            (void)sent;
        }
        close(client);
    }

    static bool complete(const std::string& data) {
        auto end = data.find("\r\n\r\n");
        if (end == std::string::npos) return false;
        std::string head = data.substr(0, end);
        for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto at = head.find("content-length:");
        std::size_t length = at == std::string::npos ? 0 : std::stoul(head.substr(at + 15));
        return data.size() >= end + 4 + length;
    }

    int status_;
    int listener_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::string request_;
};

std::string body_of(const std::string& request) {
    auto end = request.find("\r\n\r\n");
    return end == std::string::npos ? "" : request.substr(end + 4);
}

// A /bin/sh hook in `dir`, executable, written atomically (so no writer still holds it open).
std::filesystem::path hook(const test::TempDir& dir, const std::string& body) {
    auto path = dir / "hook.sh";
    write_file_atomic(path, "#!/bin/sh\n" + body, 0755);
    return path;
}

EventsConfig config_with(std::filesystem::path exec, std::string webhook,
                         std::chrono::seconds timeout = 5s) {
    EventsConfig config;
    config.exec = std::move(exec);
    config.webhook = std::move(webhook);
    config.timeout = timeout;
    return config;
}

double seconds_since(SteadyClock::time_point start) {
    return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

TEST(EventSinks, ExecHookGetsTheEventJsonOnStdinAndTheEnvironment) {
    test::TempDir dir;
    auto script = hook(dir, "cat > '" + (dir / "stdin").string() + "'\nprintf '%s\\n%s\\n' " +
                                "\"$BROKERTLS_EVENT\" \"$BROKERTLS_PROFILE\" > '" +
                                (dir / "env").string() + "'\n");
    Log log;
    EventSinks(config_with(script, ""), log.sink()).dispatch(sample_event);
    EXPECT_TRUE(log.lines.empty()) << log.lines.front();
    EXPECT_EQ(json::parse(read_file(dir / "stdin")), json::parse(sample_event.to_json()));
    EXPECT_EQ(read_file(dir / "env"), "failed\nmqtt-public\n");
}

TEST(EventSinks, ExecHookDoesNotInheritTheBrokersEnvironment) {
    test::TempDir dir;
    auto script = hook(dir, "/usr/bin/env > '" + (dir / "env").string() + "'\n");
    ::setenv("BROKERTLS_TEST_SECRET", "hunter2", 1);
    Log log;
    EventSinks(config_with(script, ""), log.sink()).dispatch(sample_event);
    ::unsetenv("BROKERTLS_TEST_SECRET");
    EXPECT_TRUE(log.lines.empty()) << log.lines.front();
    std::string env = read_file(dir / "env");
    EXPECT_EQ(env.find("BROKERTLS_TEST_SECRET"), std::string::npos) << env;
    EXPECT_NE(env.find("PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"), std::string::npos) << env;
    EXPECT_NE(env.find("BROKERTLS_EVENT=failed\n"), std::string::npos) << env;
    EXPECT_NE(env.find("BROKERTLS_PROFILE=mqtt-public\n"), std::string::npos) << env;
}

TEST(EventSinks, ExecHookPrintingMegabytesIsCappedAndLogged) {
    test::TempDir dir;
    auto script = hook(dir, "head -c 5000000 /dev/zero\nhead -c 5000000 /dev/zero >&2\n");
    Log log;
    auto start = SteadyClock::now();
    EventSinks(config_with(script, "", 20s), log.sink()).dispatch(sample_event);
    EXPECT_LT(seconds_since(start), 15.0);
    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0], "events: exec hook " + script.string() +
                                ": output truncated: only the first 65536 bytes of each stream "
                                "were kept");
}

TEST(EventSinks, FailingExecHookIsLoggedWithExitCodeAndLastStderrLine) {
    test::TempDir dir;
    auto script = hook(dir, "echo starting >&2\necho 'CA said no' >&2\nexit 3\n");
    Log log;
    EXPECT_NO_THROW(EventSinks(config_with(script, ""), log.sink()).dispatch(sample_event));
    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0], "events: exec hook " + script.string() + ": exit code 3: CA said no");
}

TEST(EventSinks, HangingExecHookIsKilledAfterTheTimeout) {
    test::TempDir dir;
    auto script = hook(dir, "sleep 30\n");
    Log log;
    auto start = SteadyClock::now();
    EventSinks(config_with(script, "", 1s), log.sink()).dispatch(sample_event);
    EXPECT_LT(seconds_since(start), 5.0);
    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0], "events: exec hook " + script.string() + ": timed out after 1s");
}

TEST(EventSinks, MissingExecHookIsLoggedNotThrown) {
    test::TempDir dir;
    auto missing = dir / "no-such-hook";
    Log log;
    EXPECT_NO_THROW(EventSinks(config_with(missing, ""), log.sink()).dispatch(sample_event));
    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0].rfind("events: exec hook " + missing.string() + ": cannot start", 0), 0u)
        << log.lines[0];
}

TEST(EventSinks, WebhookReceivesTheJsonBodyAndHeaders) {
    OneRequestServer server(204);
    Log log;
    EventSinks(config_with("", server.url()), log.sink()).dispatch(sample_event);
    std::string request = server.request();
    EXPECT_TRUE(log.lines.empty()) << log.lines.front();
    EXPECT_EQ(request.rfind("POST /hook HTTP/1.1\r\n", 0), 0u) << request;
    EXPECT_NE(request.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << request;
    EXPECT_EQ(request.find("Expect:"), std::string::npos) << request;
    EXPECT_EQ(json::parse(body_of(request)), json::parse(sample_event.to_json()));
}

TEST(EventSinks, WebhookErrorStatusIsLoggedWithoutCredentials) {
    OneRequestServer server(500);
    auto secret_url = "http://user:s3cret@127.0.0.1:" +
                      server.url().substr(std::string("http://127.0.0.1:").size()) +
                      "?token=s3cret";
    Log log;
    EXPECT_NO_THROW(EventSinks(config_with("", secret_url), log.sink()).dispatch(sample_event));
    server.request();
    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0], "events: webhook " + server.url() + ": HTTP 500");
}

TEST(EventSinks, UnreachableWebhookIsLoggedQuickly) {
    std::string url = "http://127.0.0.1:" + std::to_string(test::free_port()) + "/hook";
    Log log;
    auto start = SteadyClock::now();
    EXPECT_NO_THROW(EventSinks(config_with("", url, 2s), log.sink()).dispatch(sample_event));
    EXPECT_LT(seconds_since(start), 3.0);
    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0].rfind("events: webhook " + url + ": ", 0), 0u) << log.lines[0];
    EXPECT_NE(log.lines[0].find("onnect"), std::string::npos) << log.lines[0];
}

TEST(EventSinks, SilentWebhookIsAbandonedAfterTheTimeout) {
    OneRequestServer server(0);
    Log log;
    auto start = SteadyClock::now();
    EventSinks(config_with("", server.url(), 1s), log.sink()).dispatch(sample_event);
    double took = seconds_since(start);
    EXPECT_GE(took, 0.9);
    EXPECT_LT(took, 4.0);
    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_NE(log.lines[0].find("timed out"), std::string::npos) << log.lines[0];
    EXPECT_FALSE(body_of(server.request()).empty());
}

TEST(EventSinks, FailingExecHookDoesNotStopTheWebhook) {
    test::TempDir dir;
    auto script = hook(dir, "exit 1\n");
    OneRequestServer server(200);
    Log log;
    EventSinks(config_with(script, server.url()), log.sink()).dispatch(sample_event);
    EXPECT_EQ(json::parse(body_of(server.request())), json::parse(sample_event.to_json()));
    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0], "events: exec hook " + script.string() + ": exit code 1");
}

TEST(EventSinks, ThrowingLoggerDoesNotEscape) {
    EventSinks sinks(config_with("/nonexistent/hook", ""),
                     [](const std::string&) { throw std::runtime_error("log full"); });
    EXPECT_NO_THROW(sinks.dispatch(sample_event));
}

}  // namespace
}  // namespace brokertls
