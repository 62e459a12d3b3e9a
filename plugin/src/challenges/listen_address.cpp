#include "listen_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "brokertls/error.hpp"

namespace brokertls {

ListenAddress parse_listen_address(const std::string& text, const std::string& subject) {
    auto bad = [&](const std::string& reason) {
        fail(ErrorKind::Input, subject, "listen \"" + text + "\": " + reason);
    };
    auto colon = text.rfind(':');
    if (colon == std::string::npos) bad("expected ADDRESS:PORT");
    std::string host = text.substr(0, colon);
    std::string port_text = text.substr(colon + 1);
    int port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port < 0 || port > 65535) {
        bad("port must be a number from 0 to 65535");
    }
    ListenAddress out;
    bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) {
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.address);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6->sin6_addr) != 1)
            bad("not an IPv6 address");
        out.length = sizeof(sockaddr_in6);
    } else {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&out.address);
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1)
            bad("not an IPv4 address (write IPv6 as [::]:PORT)");
        out.length = sizeof(sockaddr_in);
    }
    return out;
}

int listen_on(const std::string& text, const std::string& subject) {
    ListenAddress address = parse_listen_address(text, subject);
    int fd = ::socket(address.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(ErrorKind::Io, subject, "cannot listen on " + text + ": " + std::strerror(errno));
    }
    int one = 1;
    // A responder restarted for the next order must not wait out TIME_WAIT of the last one.
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.address), address.length) != 0 ||
        ::listen(fd, 64) != 0) {
        int err = errno;
        ::close(fd);
        fail(ErrorKind::Io, subject, "cannot listen on " + text + ": " + std::strerror(err));
    }
    return fd;
}

}  // namespace brokertls
