#pragma once
// "ADDRESS:PORT" as the responders' `listen` setting is written: "0.0.0.0:80", "[::]:443",
// "127.0.0.1:8080".

#include <sys/socket.h>

#include <string>

namespace brokertls {

struct ListenAddress {
    sockaddr_storage address{};
    socklen_t length = 0;
};

// Throws Error(Input) "SUBJECT: listen \"TEXT\": reason" when TEXT is not ADDRESS:PORT.
ListenAddress parse_listen_address(const std::string& text, const std::string& subject);

// A non-blocking, close-on-exec socket listening on TEXT. Throws Error(Io)
// "SUBJECT: cannot listen on TEXT: Permission denied" when the address cannot be bound.
int listen_on(const std::string& text, const std::string& subject);

}  // namespace brokertls
