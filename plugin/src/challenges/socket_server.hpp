#pragma once
// The loop under the http-01 and tls-alpn-01 responders: one background thread polls the
// listening socket and every open connection, so a slow or silent client only holds its own
// connection (until its deadline) and stopping is prompt (a wake-up pipe, not a poll interval).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace brokertls {

// One accepted connection, driven by the server's poll loop on a non-blocking socket.
class ServedConnection {
  public:
    virtual ~ServedConnection() = default;
    // Advances the exchange as far as the socket allows; returns the poll events to wait for
    // next (POLLIN / POLLOUT), or 0 when finished and the socket may be closed.
    virtual short advance() = 0;
};

class SocketServer {
  public:
    // Builds the handler of an accepted socket (which the server keeps owning and closes).
    using Accept = std::function<std::unique_ptr<ServedConnection>(int fd)>;

    // Listens on `listen` right away (throws Error naming `subject` when it cannot) and serves
    // until destroyed. A connection is closed `connection_timeout` after it was accepted.
    SocketServer(const std::string& listen, const std::string& subject, Accept accept,
                 std::chrono::milliseconds connection_timeout = std::chrono::seconds(10),
                 std::size_t max_connections = 64);
    SocketServer(const SocketServer&) = delete;
    SocketServer& operator=(const SocketServer&) = delete;
    // Stops the thread, closes every connection and the listening socket.
    ~SocketServer();

  private:
    void run();

    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    Accept accept_;
    std::chrono::milliseconds connection_timeout_;
    std::size_t max_connections_;
    std::thread thread_;
};

// What the responders served by SocketServer read from a client, as pure functions (the fuzz
// targets in tests/fuzz call them on arbitrary bytes).

// An http-01 request head (the request line and headers, up to the empty line).
struct Http01Request {
    enum class Kind {
        Malformed,  // no "METHOD TARGET HTTP/1.x" request line: 400
        Challenge,  // GET /.well-known/acme-challenge/TOKEN: the token's key authorization or 404
        Other,      // anything else: 404
    };
    Kind kind = Kind::Malformed;
    std::string token;  // Challenge only: not empty, no '/'
};
Http01Request parse_http01_request(std::string_view head);

// tls-alpn-01: whether a ClientHello's ALPN protocol list (RFC 7301 wire format, as the TLS
// library hands it over) offers "acme-tls/1".
bool offers_acme_tls_1(std::string_view protocol_list);
// tls-alpn-01: the key a challenge certificate is held under, from an SNI or an identifier
// name: lower case, without a trailing dot.
std::string tls_alpn_name_key(std::string_view name);
// tls-alpn-01: the SNI a validator sends for an ACME identifier (`type` "dns" or "ip"): the
// name itself, or for an IP address its reverse-mapping name; throws Error(Input) for an "ip"
// identifier that is not an address.
std::string tls_alpn_sni_for(std::string_view type, const std::string& value);

}  // namespace brokertls
