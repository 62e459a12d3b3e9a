#pragma once
// The loop under the http-01 and tls-alpn-01 responders: one background thread polls the
// listening socket and every open connection, so a slow or silent client only holds its own
// connection (until its deadline) and stopping is prompt (a wake-up pipe, not a poll interval).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
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

}  // namespace brokertls
