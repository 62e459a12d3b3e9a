#pragma once
// The HTTP(S) front of brokertls-service: Boost.Beast over Boost.Asio, so thousands of slow or
// idle devices cost a socket and a buffer each, not a thread. This header keeps Beast out of
// every other translation unit (it is the only heavy include of the project).
//
// The server parses and bounds requests (sizes, timeouts, connection counts) and hands each
// complete one to its listener's Handler; what a request means is the handler's business.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brokertls/crypto/certificate.hpp"

namespace brokertls {

struct ServerRequest {
    std::string method;  // "GET", "POST", ... as sent
    std::string target;  // path and query as sent ("/v1/certificates?x=1")
    // Header names in lower case, values as sent (without surrounding blanks), in order.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string peer_address;  // "192.0.2.1" or "2001:db8::1" (IPv4-mapped shown as IPv4)
    // TLS listeners with a client_ca: the client's chain (leaf first) when it presented one
    // that verified against client_ca; empty otherwise (no certificate is not an error here:
    // the handler decides which endpoints need one).
    std::vector<Certificate> peer_chain;
    bool tls = false;

    // The first header of that (lower-case) name.
    std::optional<std::string_view> header(std::string_view name) const;
    std::string_view path() const;  // target without "?query"
};

struct ServerResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;  // Content-Length is added
    std::string body;
};

// Called exactly once per request, from any thread; the connection waits for it (a request is
// answered before the next one on the same connection is read).
using Respond = std::function<void(ServerResponse)>;
// Runs on a server thread: it must not block (hand slow work to another thread and call
// `respond` from there). An exception becomes a 500 without the exception's text.
using HttpHandler = std::function<void(ServerRequest, Respond)>;

struct HttpTlsConfig {
    std::filesystem::path cert;  // PEM chain, leaf first
    std::filesystem::path key;   // PEM private key
    // When set, clients may present a certificate, verified against these PEM CA certificates.
    std::optional<std::filesystem::path> client_ca;
};

struct HttpLimits {
    std::size_t max_header_bytes = 8 * 1024;  // larger: 431
    std::size_t max_body_bytes = 64 * 1024;   // larger (Content-Length or chunked): 413
    // From accept (or the end of the previous response) to the end of the request head,
    // including the TLS handshake: a slowloris client is dropped after this.
    std::chrono::milliseconds header_timeout{10'000};
    std::chrono::milliseconds body_timeout{30'000};       // for the body after the head
    std::chrono::milliseconds idle_timeout{120'000};      // keep-alive between requests
    std::chrono::milliseconds response_timeout{120'000};  // handler + write; then 503 / drop
    std::size_t max_connections = 20'000;                 // beyond: accepted and closed at once
    std::size_t max_connections_per_address = 1'000;      // likewise, per peer address
};

struct HttpListenerConfig {
    std::string listen;  // "ADDRESS:PORT" ("[::1]:8443"); port 0 picks a free one
    std::optional<HttpTlsConfig> tls;
    HttpLimits limits;
    HttpHandler handler;
    std::string name;  // for log lines ("api", "sign")
};

// Counters for status and benchmarks.
struct HttpServerStats {
    std::size_t open_connections = 0;
    std::size_t accepted = 0;
    std::size_t refused_over_limit = 0;  // closed at once: max_connections(_per_address)
    std::size_t handshake_failures = 0;
    std::size_t timeouts = 0;
    std::size_t requests = 0;
};

class HttpServer {
  public:
    // Binds every listener (throws Error naming the listener and address when one cannot be
    // bound or its TLS files are unusable) and serves on `threads` threads until destroyed.
    // `log` gets one line per event worth an operator's attention (never request bodies).
    HttpServer(std::vector<HttpListenerConfig> listeners, int threads,
               std::function<void(const std::string&)> log);
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;
    // Stops accepting, closes every connection, joins the threads. Respond objects still held
    // by handlers stay safe to call (they then do nothing).
    ~HttpServer();

    // The bound port of listener i (in the order given).
    unsigned short port(std::size_t i) const;
    // Re-reads every TLS listener's files into a new context used for new handshakes;
    // connections in flight keep theirs. Throws Error (and keeps the old context) when a file
    // is unusable.
    void reload_tls();
    HttpServerStats stats() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace brokertls
