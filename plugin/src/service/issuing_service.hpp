#pragma once
// brokertls-service's request handling: who is asking (auth blocks, client HMAC keys, client
// certificates), for which names (profiles' and clients' domain globs), from which issuer, and
// what was answered (cache, audit). The HTTP server hands it parsed, size-bounded requests.

#include <memory>

#include "brokertls/time/clock.hpp"
#include "service/http_server.hpp"
#include "service/service_config.hpp"
#include "service/signer.hpp"

namespace brokertls {

class IssuingService {
  public:
    // Opens the state directory, the audit log and every issuer; throws Error when one is
    // unusable (the service does not start half-configured).
    IssuingService(const ServiceConfig& config, Clock& clock, LogLine log);
    ~IssuingService();
    IssuingService(const IssuingService&) = delete;
    IssuingService& operator=(const IssuingService&) = delete;

    // Answers the endpoints `listener` serves (404 for anything else).
    HttpHandler handler(const ServiceListener& listener);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace brokertls
