#pragma once
// brokertls-gateway's server: TLS listeners (Boost.Asio, a pool of worker threads, no thread
// per connection) that validate clients through SecurityModule and relay them to the broker.

#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"

namespace brokertls {

class SecurityModule;

class Gateway {
  public:
    using Log = std::function<void(const std::string&)>;
    // Binds every listener of config.gateway (and the status endpoint) and builds their TLS
    // contexts from the deployed certificate files; throws Error when any of it fails.
    Gateway(const Config& config, SecurityModule& module, Log log);
    ~Gateway();
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;

    // The port a listener (in config order) or the status endpoint (-1 = none) is bound to.
    int port(std::size_t listener) const;
    int status_port() const;
    // Starts the worker threads and the module's watcher.
    void start();
    // Any thread: re-read the deployed certificates, and have the module reload (SIGHUP).
    void reload();
    // Stops accepting, waits up to drain_timeout for open connections to end, closes the rest.
    void stop();

    struct Impl;  // the server's state (gateway.cpp), public for its connections

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace brokertls
