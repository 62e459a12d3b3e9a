#pragma once
// The HTTP seam of the ACME client: the real transport is libcurl; unit tests inject a scripted
// one so every error path (badNonce, 429, malformed answers) is testable without a server.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brokertls/crypto/time.hpp"

namespace brokertls {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;  // names lower-case

struct HttpRequest {
    std::string method;  // "GET", "HEAD", "POST", "PUT"
    std::string url;
    HttpHeaders headers;
    std::string body;
};

struct HttpResponse {
    long status = 0;
    HttpHeaders headers;  // names lower-case, in the order received (Link may repeat)
    std::string body;
    // The first value of a header, or nullopt.
    std::optional<std::string> header(std::string_view name) const;
    // Every value of a header (Link: several rel="up"/"alternate").
    std::vector<std::string> header_values(std::string_view name) const;
    // The targets of every Link header (RFC 8288) whose rel includes `rel`, in order; a Link
    // header may list several links separated by commas.
    std::vector<std::string> links(std::string_view rel) const;
};

class HttpTransport {
  public:
    virtual ~HttpTransport() = default;
    // Throws Error(Io) "URL: reason" when no HTTP answer came (refused, TLS failure, timeout).
    virtual HttpResponse send(const HttpRequest& request) = 0;
};

struct CurlOptions {
    // Extra trust for the ACME server's HTTPS (a private CA such as Pebble's); the system
    // store otherwise.
    std::optional<std::filesystem::path> ca_bundle;
    // A client certificate (PEM chain) and its key for mutual TLS (brokertls-service renewals).
    std::optional<std::filesystem::path> client_cert, client_key;
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds timeout{30'000};  // whole request
    std::string user_agent = "brokertls/0.1";
    // Polled while a request runs (about once a second, and on progress): true aborts it with
    // Error(State) "stopped", so a stopping broker does not wait for a slow CA.
    std::function<bool()> cancelled;
};

std::unique_ptr<HttpTransport> make_curl_transport(const CurlOptions& options);

// A Retry-After value (RFC 9110 §10.2.3): delay seconds or an HTTP date; nullopt when it is
// neither. A date in the past gives `now`.
std::optional<TimePoint> parse_retry_after(std::string_view value, TimePoint now);

}  // namespace brokertls
