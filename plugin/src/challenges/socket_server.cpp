#include "socket_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "brokertls/error.hpp"
#include "listen_address.hpp"

namespace brokertls {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Open {
    int fd;
    std::unique_ptr<ServedConnection> handler;
    short events;
    SteadyClock::time_point deadline;
};

void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// Runs one step of a handler; a handler that throws is finished like one that completed.
short advance_safely(ServedConnection& handler) {
    try {
        return handler.advance();
    } catch (...) {
        return 0;
    }
}

}  // namespace

SocketServer::SocketServer(const std::string& listen, const std::string& subject, Accept accept,
                           std::chrono::milliseconds connection_timeout,
                           std::size_t max_connections)
    : accept_(std::move(accept)),
      connection_timeout_(connection_timeout),
      max_connections_(max_connections) {
    listen_fd_ = listen_on(listen, subject);
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
        int err = errno;
        close_fd(listen_fd_);
        fail(ErrorKind::Io, subject, std::string("cannot create a pipe: ") + std::strerror(err));
    }
    thread_ = std::thread([this] { run(); });
}

SocketServer::~SocketServer() {
    char byte = 1;
    while (::write(wake_[1], &byte, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
    close_fd(wake_[0]);
    close_fd(wake_[1]);
    close_fd(listen_fd_);
}

void SocketServer::run() {
    std::vector<Open> open;
    auto finish = [](Open& connection) {
        connection.handler.reset();
        close_fd(connection.fd);
    };
    // After a failed accept (EMFILE, ENOBUFS) the listener is left alone for a moment instead
    // of spinning on a socket that stays readable.
    SteadyClock::time_point accept_paused_until{};
    while (true) {
        auto now = SteadyClock::now();
        bool accepting = open.size() < max_connections_ && now >= accept_paused_until;
        std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {accepting ? listen_fd_ : -1, POLLIN, 0}};
        auto next_deadline = now + std::chrono::seconds(1);
        for (const auto& c : open) {
            fds.push_back({c.fd, c.events, 0});
            next_deadline = std::min(next_deadline, c.deadline);
        }
        if (!accepting) next_deadline = std::min(next_deadline, accept_paused_until);
        auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_deadline - now);
        int ready =
            ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long>(0, wait.count())));
        if (ready < 0 && errno != EINTR) return;
        if (fds[0].revents) break;

        now = SteadyClock::now();
        for (std::size_t i = 0; i < open.size(); ++i) {
            short revents = ready > 0 ? fds[i + 2].revents : 0;
            if (revents) open[i].events = advance_safely(*open[i].handler);
            if (open[i].events == 0 || now >= open[i].deadline) finish(open[i]);
        }
        std::erase_if(open, [](const Open& c) { return c.fd < 0; });

        if (ready > 0 && (fds[1].revents & POLLIN)) {
            while (open.size() < max_connections_) {
                int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                        errno != ECONNABORTED) {
                        accept_paused_until = now + std::chrono::milliseconds(100);
                    }
                    if (errno == EINTR || errno == ECONNABORTED) continue;
                    break;
                }
                Open connection{fd, nullptr, 0, now + connection_timeout_};
                try {
                    connection.handler = accept_(fd);
                } catch (...) {
                }
                if (connection.handler) connection.events = advance_safely(*connection.handler);
                if (connection.events == 0) {
                    finish(connection);
                } else {
                    open.push_back(std::move(connection));
                }
            }
        }
    }
    for (auto& c : open) finish(c);
}

}  // namespace brokertls
