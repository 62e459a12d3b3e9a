// HttpServer (plugin/src/service/http_server.hpp) against real clients: curl, openssl s_client
// and raw sockets, on 127.0.0.1 listeners with ephemeral ports.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "expect_error.hpp"
#include "pki.hpp"
#include "service/http_server.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The server's log lines (it logs from its own threads).
class LogLines {
  public:
    std::function<void(const std::string&)> sink() {
        return [this](const std::string& line) {
            std::lock_guard lock(mutex_);
            lines_.push_back(line);
        };
    }
    bool contains(const std::string& text) {
        std::lock_guard lock(mutex_);
        for (const auto& line : lines_)
            if (line.find(text) != std::string::npos) return true;
        return false;
    }

  private:
    std::mutex mutex_;
    std::vector<std::string> lines_;
};

// Handlers keep Respond here; the test answers from its own thread.
class HeldResponds {
  public:
    HttpHandler handler() {
        return [this](ServerRequest, Respond respond) {
            std::lock_guard lock(mutex_);
            held_.push_back(std::move(respond));
        };
    }
    // Waits for the n-th request's Respond.
    std::optional<Respond> wait(std::size_t n) {
        std::optional<Respond> out;
        test::eventually(
            [&] {
                std::lock_guard lock(mutex_);
                if (held_.size() >= n) out = held_[n - 1];
                return out.has_value();
            },
            10s);
        return out;
    }

  private:
    std::mutex mutex_;
    std::vector<Respond> held_;
};

ServerResponse echo(const ServerRequest& r) {
    ServerResponse out;
    out.status = r.method == "POST" ? 201 : 200;
    out.headers = {{"X-Method", r.method},
                   {"X-Target", r.target},
                   {"X-Path", std::string(r.path())},
                   {"X-Peer", r.peer_address},
                   {"X-Test", std::string(r.header("x-test").value_or("-"))},
                   {"X-Tls", r.tls ? "yes" : "no"}};
    out.body = r.body;
    return out;
}

void echo_handler(ServerRequest r, Respond respond) {
    respond(echo(r));
}

HttpListenerConfig listener(HttpHandler handler, HttpLimits limits = {}) {
    HttpListenerConfig config;
    config.listen = "127.0.0.1:0";
    config.handler = std::move(handler);
    config.limits = limits;
    config.name = "api";
    return config;
}

std::unique_ptr<HttpServer> serve(HttpListenerConfig config, LogLines* log = nullptr) {
    return std::make_unique<HttpServer>(std::vector{std::move(config)}, 2,
                                        log ? log->sink() : nullptr);
}

std::string url(const HttpServer& server, const std::string& path = "/",
                const std::string& scheme = "http") {
    return scheme + "://127.0.0.1:" + std::to_string(server.port(0)) + path;
}

test::RunResult curl(std::vector<std::string> args) {
    std::vector<std::string> argv{"curl", "-sS", "-m", "10"};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv, "", 20s);
}

// A raw connection to 127.0.0.1:port whose reads give up after 10 s.
class RawSocket {
  public:
    explicit RawSocket(unsigned short port)
        : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        timeval bound{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;
    ~RawSocket() { close(); }

    bool connected() const { return connected_; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    void send(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    struct Received {
        std::string data;
        bool closed = false;  // the server closed (EOF or reset), not the 10 s bound
    };
    Received read_until_closed() {
        Received r;
        char buffer[4096];
        for (;;) {
            ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
            if (n > 0) {
                r.data.append(buffer, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            r.closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
            return r;
        }
    }

  private:
    int fd_;
    bool connected_ = false;
};

TEST(ServiceHttp, GetAndPostReachTheHandler) {
    LogLines log;
    auto server = serve(listener(echo_handler), &log);
    EXPECT_TRUE(log.contains("listener api: listening on 127.0.0.1 port " +
                             std::to_string(server->port(0))));

    auto get = curl({"-i", "-H", "X-Test: hello", url(*server, "/a/b?x=1")});
    ASSERT_EQ(get.exit_code, 0) << test::describe(get);
    EXPECT_EQ(get.out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << get.out;
    for (const char* header :
         {"X-Method: GET\r\n", "X-Target: /a/b?x=1\r\n", "X-Path: /a/b\r\n",
          "X-Peer: 127.0.0.1\r\n", "X-Test: hello\r\n", "X-Tls: no\r\n", "Content-Length: 0\r\n"})
        EXPECT_NE(get.out.find(header), std::string::npos) << header << " in " << get.out;

    auto post = curl({"-i", "--data-binary", "payload 123", url(*server, "/post")});
    ASSERT_EQ(post.exit_code, 0) << test::describe(post);
    EXPECT_EQ(post.out.rfind("HTTP/1.1 201 Created\r\n", 0), 0u) << post.out;
    EXPECT_NE(post.out.find("X-Method: POST\r\n"), std::string::npos) << post.out;
    EXPECT_NE(post.out.find("Content-Length: 11\r\n"), std::string::npos) << post.out;
    EXPECT_TRUE(post.out.ends_with("\r\n\r\npayload 123")) << post.out;
    EXPECT_EQ(server->stats().requests, 2u);
}

TEST(ServiceHttp, ChunkedBodyIsDecoded) {
    auto server = serve(listener(echo_handler));
    RawSocket client(server->port(0));
    ASSERT_TRUE(client.connected());
    client.send(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    auto r = client.read_until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.data.rfind("HTTP/1.1 201 Created\r\n", 0), 0u) << r.data;
    EXPECT_NE(r.data.find("Connection: close\r\n"), std::string::npos) << r.data;
    EXPECT_TRUE(r.data.ends_with("\r\n\r\nhello world")) << r.data;
}

TEST(ServiceHttp, PipelinedRequestsAreAnsweredInOrder) {
    auto server = serve(listener(echo_handler));
    RawSocket client(server->port(0));
    ASSERT_TRUE(client.connected());
    client.send(
        "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: "
        "close\r\n\r\n");
    auto r = client.read_until_closed();
    EXPECT_TRUE(r.closed);
    auto first = r.data.find("X-Target: /1\r\n"), second = r.data.find("X-Target: /2\r\n");
    ASSERT_NE(first, std::string::npos) << r.data;
    ASSERT_NE(second, std::string::npos) << r.data;
    EXPECT_LT(first, second);
    EXPECT_EQ(server->stats().accepted, 1u);
}

TEST(ServiceHttp, HeadGetsTheLengthWithoutTheBodyAndBadHeadersAre500) {
    auto server = serve(listener([](ServerRequest r, Respond respond) {
        if (r.path() == "/split")
            respond({200, {{"X-Split", "a\r\nSet-Cookie: evil=1"}}, "hello"});
        else
            respond({200, {}, "hello"});
    }));
    auto head = curl({"-I", url(*server, "/")});
    ASSERT_EQ(head.exit_code, 0) << test::describe(head);
    EXPECT_NE(head.out.find("Content-Length: 5\r\n"), std::string::npos) << head.out;
    EXPECT_TRUE(head.out.ends_with("\r\n\r\n")) << head.out;

    auto split = curl({"-i", url(*server, "/split")});
    ASSERT_EQ(split.exit_code, 0) << test::describe(split);
    EXPECT_EQ(split.out.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0), 0u) << split.out;
    EXPECT_EQ(split.out.find("evil"), std::string::npos) << split.out;
}

TEST(ServiceHttp, KeepAliveServesSeveralRequestsOnOneConnection) {
    auto server = serve(listener(echo_handler));
    auto r = curl(
        {"-o", "/dev/null", "-w", "%{num_connects}\n", url(*server, "/1"), url(*server, "/2")});
    ASSERT_EQ(r.exit_code, 0) << test::describe(r);
    EXPECT_EQ(r.out, "1\n0\n");
    EXPECT_EQ(server->stats().accepted, 1u);

    // HTTP/1.0 without keep-alive: one connection per request.
    auto old = curl({"-0", "-o", "/dev/null", "-w", "%{num_connects}\n", url(*server, "/1"),
                     url(*server, "/2")});
    ASSERT_EQ(old.exit_code, 0) << test::describe(old);
    EXPECT_EQ(old.out, "1\n1\n");
    EXPECT_EQ(server->stats().accepted, 3u);
}

TEST(ServiceHttp, TooLargeBodyIs413) {
    HttpLimits limits;
    limits.max_body_bytes = 1000;
    auto server = serve(listener(echo_handler, limits));
    auto fits = curl({"-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                      std::string(1000, 'x'), url(*server)});
    EXPECT_EQ(fits.out, "201") << test::describe(fits);
    auto big = curl({"-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                     std::string(5000, 'x'), url(*server)});
    EXPECT_EQ(big.out, "413") << test::describe(big);

    // Chunked: the limit is found in the middle of the body.
    RawSocket client(server->port(0));
    ASSERT_TRUE(client.connected());
    client.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; ++i) client.send("1f4\r\n" + std::string(500, 'y') + "\r\n");
    client.send("0\r\n\r\n");
    auto r = client.read_until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.data.rfind("HTTP/1.1 413 ", 0), 0u) << r.data;
    EXPECT_EQ(server->stats().requests, 1u);
}

TEST(ServiceHttp, HugeHeadersAre431) {
    auto server = serve(listener(echo_handler));
    auto r = curl({"-o", "/dev/null", "-w", "%{http_code}", "-H",
                   "X-Big: " + std::string(20'000, 'h'), url(*server)});
    EXPECT_EQ(r.out, "431") << test::describe(r);
    EXPECT_EQ(server->stats().requests, 0u);
}

TEST(ServiceHttp, GarbageIs400AndClosed) {
    auto server = serve(listener(echo_handler));
    RawSocket client(server->port(0));
    ASSERT_TRUE(client.connected());
    client.send("GARBAGE\r\n\r\n");
    auto r = client.read_until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.data.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << r.data;
    EXPECT_EQ(server->stats().requests, 0u);
}

TEST(ServiceHttp, HandlerMayRespondLaterFromAnotherThread) {
    HeldResponds held;
    auto server = serve(listener(held.handler()));
    auto reply = std::async(std::launch::async, [address = url(*server)] {
        return curl({"-w", " %{http_code}", address});
    });
    auto respond = held.wait(1);
    ASSERT_TRUE(respond);
    std::thread worker([respond = *respond] {
        respond({202, {{"X-From", "worker"}}, "later"});
        respond({200, {}, "a second answer is ignored"});
    });
    worker.join();
    auto r = reply.get();
    ASSERT_EQ(r.exit_code, 0) << test::describe(r);
    EXPECT_EQ(r.out, "later 202");
}

TEST(ServiceHttp, HandlerExceptionIs500WithoutItsText) {
    LogLines log;
    auto server = serve(listener([](ServerRequest, Respond) -> void {
                            throw std::runtime_error("secret detail 42");
                        }),
                        &log);
    auto r = curl({"-i", url(*server)});
    ASSERT_EQ(r.exit_code, 0) << test::describe(r);
    EXPECT_EQ(r.out.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0), 0u) << r.out;
    EXPECT_EQ(r.out.find("secret"), std::string::npos) << r.out;
}

TEST(ServiceHttp, LateHandlerGets503) {
    HttpLimits limits;
    limits.response_timeout = 300ms;
    HeldResponds held;
    auto server = serve(listener(held.handler(), limits));
    auto r = curl({"-o", "/dev/null", "-w", "%{http_code}", url(*server)});
    EXPECT_EQ(r.out, "503") << test::describe(r);
    auto respond = held.wait(1);
    ASSERT_TRUE(respond);
    (*respond)({200, {}, "too late"});  // a no-op now
    EXPECT_EQ(server->stats().timeouts, 1u);
}

TEST(ServiceHttp, HeaderTimeoutClosesSilentAndSlowConnections) {
    HttpLimits limits;
    limits.header_timeout = 300ms;
    auto server = serve(listener(echo_handler, limits));

    RawSocket silent(server->port(0));
    ASSERT_TRUE(silent.connected());
    auto start = std::chrono::steady_clock::now();
    auto r = silent.read_until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.data, "");
    EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);

    // Slowloris: a head that never ends.
    RawSocket slow(server->port(0));
    ASSERT_TRUE(slow.connected());
    slow.send("GET / HTTP/1.1\r\nHost: x\r\n");
    r = slow.read_until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.data, "");
    EXPECT_TRUE(test::eventually([&] { return server->stats().timeouts == 2; }, 10s));
    EXPECT_TRUE(test::eventually([&] { return server->stats().open_connections == 0; }, 10s));
}

TEST(ServiceHttp, IdleTimeoutClosesKeepAliveConnections) {
    HttpLimits limits;
    limits.idle_timeout = 300ms;
    auto server = serve(listener(echo_handler, limits));
    RawSocket client(server->port(0));
    ASSERT_TRUE(client.connected());
    client.send("GET /idle HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = client.read_until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.data.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.data;
    EXPECT_EQ(r.data.find("Connection: close"), std::string::npos) << r.data;
    EXPECT_EQ(server->stats().timeouts, 1u);
}

TEST(ServiceHttp, ConnectionLimitsRefuseTheExtraConnection) {
    HttpLimits per_address;
    per_address.max_connections_per_address = 2;
    HttpLimits total;
    total.max_connections = 1;
    LogLines log;
    HttpServer server({listener(echo_handler, per_address), listener(echo_handler, total)}, 2,
                      log.sink());

    RawSocket first(server.port(0)), second(server.port(0));
    ASSERT_TRUE(first.connected() && second.connected());
    ASSERT_TRUE(test::eventually([&] { return server.stats().open_connections == 2; }, 10s));
    RawSocket third(server.port(0));
    auto r = third.read_until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.data, "");
    EXPECT_EQ(server.stats().refused_over_limit, 1u);
    EXPECT_TRUE(test::eventually(
        [&] {
            return log.contains(
                "listener api: refused a connection from 127.0.0.1: "
                "max_connections_per_address reached");
        },
        10s));

    // A freed slot is usable again.
    first.close();
    ASSERT_TRUE(test::eventually([&] { return server.stats().open_connections == 1; }, 10s));
    RawSocket fourth(server.port(0));
    fourth.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    r = fourth.read_until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.data.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.data;
    fourth.close();
    ASSERT_TRUE(test::eventually([&] { return server.stats().open_connections == 1; }, 10s));

    RawSocket only(server.port(1));
    ASSERT_TRUE(test::eventually([&] { return server.stats().open_connections == 2; }, 10s));
    RawSocket extra(server.port(1));
    r = extra.read_until_closed();
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(server.stats().refused_over_limit, 2u);
}

TEST(ServiceHttp, Ipv6PeerAddress) {
    auto config = listener(echo_handler);
    config.listen = "[::1]:0";
    std::unique_ptr<HttpServer> server;
    try {
        server = serve(config);
    } catch (const Error& e) {
        GTEST_SKIP() << "no IPv6 loopback: " << e.what();
    }
    auto r = curl({"-i", "-g", "http://[::1]:" + std::to_string(server->port(0)) + "/"});
    ASSERT_EQ(r.exit_code, 0) << test::describe(r);
    EXPECT_NE(r.out.find("X-Peer: ::1\r\n"), std::string::npos) << r.out;
}

TEST(ServiceHttp, ConstructorNamesTheListenerAndTheProblem) {
    test::TempDir dir;
    auto tls = listener(echo_handler);
    tls.tls = HttpTlsConfig{dir / "missing.pem", dir / "missing.key", std::nullopt};
    auto message = test::error_of([&] { serve(tls); }, ErrorKind::Input);
    EXPECT_NE(message.find("listener api: " + (dir / "missing.pem").string() + ": "),
              std::string::npos)
        << message;

    auto bad = listener(echo_handler);
    bad.listen = "nonsense";
    message = test::error_of([&] { serve(bad); }, ErrorKind::Input);
    EXPECT_NE(message.find("listener api: cannot listen on nonsense: "), std::string::npos)
        << message;

    auto first = serve(listener(echo_handler));
    auto taken = listener(echo_handler);
    taken.listen = "127.0.0.1:" + std::to_string(first->port(0));
    message = test::error_of([&] { serve(taken); }, ErrorKind::Io);
    EXPECT_NE(message.find("listener api: cannot listen on " + taken.listen + ": "),
              std::string::npos)
        << message;
}

// TLS listeners use a PKI made by the project's CA.
class ServiceHttpTls : public ::testing::Test {
  protected:
    ServiceHttpTls() : pki_(dir_.path()) {
        fs::copy_file(pki_.server_cert(), cert_path());
        fs::copy_file(pki_.server_key(), key_path());
    }

    fs::path cert_path() const { return dir_ / "server.pem"; }
    fs::path key_path() const { return dir_ / "server.key"; }

    std::unique_ptr<HttpServer> serve_tls(HttpHandler handler, bool client_ca = false,
                                          LogLines* log = nullptr) {
        auto config = listener(std::move(handler));
        config.tls = HttpTlsConfig{cert_path(), key_path(),
                                   client_ca ? std::optional(pki_.root()) : std::nullopt};
        return serve(std::move(config), log);
    }

    // The serial of the certificate the server presents now, or "" when none.
    static std::string served_serial(const HttpServer& server) {
        auto r =
            test::run({"openssl", "s_client", "-connect",
                       "127.0.0.1:" + std::to_string(server.port(0)), "-servername", "localhost"},
                      "", 20s);
        auto begin = r.out.find("-----BEGIN CERTIFICATE-----");
        if (begin == std::string::npos) return "";
        return Certificate::parse(r.out.substr(begin), "s_client output").serial_hex();
    }

    test::TempDir dir_;
    test::TestPki pki_;
};

TEST_F(ServiceHttpTls, CurlTrustingTheCaIsServed) {
    auto server = serve_tls(echo_handler);
    auto r = curl({"-i", "--cacert", pki_.root().string(), url(*server, "/tls", "https")});
    ASSERT_EQ(r.exit_code, 0) << test::describe(r);
    EXPECT_EQ(r.out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("X-Tls: yes\r\n"), std::string::npos) << r.out;

    // Keep-alive over TLS too.
    auto two = curl({"--cacert", pki_.root().string(), "-o", "/dev/null", "-w", "%{num_connects}\n",
                     url(*server, "/1", "https"), url(*server, "/2", "https")});
    EXPECT_EQ(two.out, "1\n0\n") << test::describe(two);
}

TEST_F(ServiceHttpTls, Tls11IsRefused) {
    auto server = serve_tls(echo_handler);
    // SECLEVEL=0 lets this client offer TLS 1.1 at all; with TLS 1.2 allowed the same
    // options work, so the failure is the server's refusal.
    std::vector<std::string> options{"--cacert", pki_.root().string(), "--ciphers",
                                     "DEFAULT@SECLEVEL=0", "--tlsv1.1"};
    auto allowed = options, refused = options;
    allowed.insert(allowed.end(), {"--tls-max", "1.2", url(*server, "/", "https")});
    refused.insert(refused.end(), {"--tls-max", "1.1", url(*server, "/", "https")});
    auto ok = curl(allowed);
    EXPECT_EQ(ok.exit_code, 0) << test::describe(ok);
    auto r = curl(refused);
    EXPECT_NE(r.exit_code, 0) << test::describe(r);
    EXPECT_TRUE(test::eventually([&] { return server->stats().handshake_failures == 1; }, 10s));
}

TEST_F(ServiceHttpTls, ClientCertificateReachesTheHandler) {
    auto device = pki_.client("device-1");
    auto server = serve_tls(
        [](ServerRequest r, Respond respond) {
            respond({200,
                     {},
                     r.peer_chain.empty() ? "none"
                                          : r.peer_chain[0].common_name() + " " +
                                                std::to_string(r.peer_chain.size())});
        },
        true);
    auto with = curl({"--cacert", pki_.root().string(), "--cert", device.cert.string(), "--key",
                      device.key.string(), url(*server, "/", "https")});
    ASSERT_EQ(with.exit_code, 0) << test::describe(with);
    EXPECT_EQ(with.out, "device-1 2");  // the leaf and the root

    auto without = curl({"--cacert", pki_.root().string(), url(*server, "/", "https")});
    ASSERT_EQ(without.exit_code, 0) << test::describe(without);
    EXPECT_EQ(without.out, "none");

    // A certificate from another CA fails the handshake.
    test::TempDir other_dir;
    test::TestPki other(other_dir.path(), "another CA");
    auto stranger = other.client("stranger");
    auto r = curl({"--cacert", pki_.root().string(), "--cert", stranger.cert.string(), "--key",
                   stranger.key.string(), url(*server, "/", "https")});
    EXPECT_NE(r.exit_code, 0) << test::describe(r);
    EXPECT_TRUE(test::eventually([&] { return server->stats().handshake_failures == 1; }, 10s));
}

TEST_F(ServiceHttpTls, ReloadServesTheNewCertificateAndKeepsTheOldOnError) {
    LogLines log;
    auto server = serve_tls(echo_handler, false, &log);
    auto first = Certificate::load(pki_.server_cert()).serial_hex();
    EXPECT_EQ(served_serial(*server), first);

    auto issued = pki_.open().issue({{CertificateProfile::Server,
                                      "localhost",
                                      "",
                                      {classify_name("localhost"), classify_name("127.0.0.1")},
                                      30,
                                      KeyType::EcP256}},
                                    dir_ / "renewed", Overwrite::Refuse);
    fs::copy_file(issued[0].chain, cert_path(), fs::copy_options::overwrite_existing);
    fs::copy_file(issued[0].key, key_path(), fs::copy_options::overwrite_existing);
    server->reload_tls();
    auto second = Certificate::load(issued[0].cert).serial_hex();
    ASSERT_NE(second, first);
    EXPECT_EQ(served_serial(*server), second);
    EXPECT_TRUE(log.contains("listener api: TLS reloaded from " + cert_path().string()));

    std::ofstream(key_path()) << "not a key\n";
    auto message = test::error_of([&] { server->reload_tls(); }, ErrorKind::Input);
    EXPECT_NE(message.find("listener api: " + key_path().string() + ": "), std::string::npos)
        << message;
    EXPECT_EQ(served_serial(*server), second);
    auto r = curl({"--cacert", pki_.root().string(), url(*server, "/", "https")});
    EXPECT_EQ(r.exit_code, 0) << test::describe(r);
}

TEST(ServiceHttp, RespondAfterTheServerIsGoneIsHarmless) {
    HeldResponds held;
    auto server = serve(listener(held.handler()));
    auto reply =
        std::async(std::launch::async, [address = url(*server)] { return curl({address}); });
    auto respond = held.wait(1);
    ASSERT_TRUE(respond);
    server.reset();
    auto r = reply.get();
    EXPECT_NE(r.exit_code, 0) << test::describe(r);  // the connection closed unanswered
    (*respond)({200, {}, "nobody listens"});
    (*respond)({200, {}, "still nobody"});
}

}  // namespace
}  // namespace brokertls
