#pragma once
// Command-line options and the TLS / mTLS connection shared by the Paho examples.

#include <mqtt/async_client.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace example {

struct Options {
    std::string host = "127.0.0.1";
    int port = 8883;
    std::string ca;         // trust anchor for the broker's certificate
    std::string cert, key;  // client certificate + key: mutual TLS when given
    std::string client_id;
    std::string topic;
    std::string message;  // publisher
    int count = 1;        // subscriber: messages to wait for
    int timeout_seconds = 10;
};

// Parses argv; prints usage and exits on --help (0) or on a usage error (1).
Options parse(int argc, char** argv, const char* usage, bool publisher);

// Connects over TLS; on failure prints a clear reason (including TLS verify errors) and exits 2.
std::unique_ptr<mqtt::async_client> connect(const Options& options);

}  // namespace example
