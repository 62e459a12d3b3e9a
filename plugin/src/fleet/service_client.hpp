#pragma once
// A client of brokertls-service's /v1 API, for the broker's `service` certificate source and
// for brokertls-enroll: requests signed with the request HMAC of a key id (a configured client
// or a registered device), or sent over mutual TLS with the certificate being renewed.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "acme/http.hpp"
#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/time/clock.hpp"

namespace brokertls {

struct ServiceCredentials {
    std::string key_id;
    std::string key;
};

// The key id and key of a credentials file as brokertls-enroll writes it ({"key_id", "key",
// ...} JSON, or the key alone on its first line with `key_id` given). Refuses a file others may
// read. Throws Error(Input) naming the file.
ServiceCredentials load_service_credentials(const std::filesystem::path& file,
                                            const std::string& key_id = "");

struct ServiceCertificate {
    std::vector<Certificate> chain;  // leaf first
    TimePoint renew_at;              // the service's suggestion
    bool cached = false;
};

struct RegisteredDevice {
    std::string id, name, key;
    std::vector<std::string> addresses;
    std::string address_error;  // "" when the addresses were set (or none were given)
};

class ServiceClient {
  public:
    // `url` is the service's base ("https://issuer.example:8443"); `credentials` may be empty
    // when `transport` presents a client certificate (renewal) or for a token registration.
    ServiceClient(std::string url, std::optional<ServiceCredentials> credentials,
                  HttpTransport& transport, const Clock& clock);

    // POST /v1/certificates. `profile` "" lets a device use its fleet's profile. Throws Error:
    // Input for a refusal (4xx, with the service's reason), Io when the service or its CA is
    // unavailable (5xx, 429; `retry_after` then says when to come back).
    ServiceCertificate request_certificate(const CertificateRequest& csr,
                                           const std::string& profile);
    // POST /v1/devices with a one-time enrollment token (or the admin credentials).
    RegisteredDevice register_device(const std::string& token,
                                     const std::vector<std::string>& addresses);
    // PUT /v1/devices/ID/address with the device's own credentials.
    void set_addresses(const std::vector<std::string>& addresses);

    // Retry-After of the last refused request, when it said one.
    std::optional<std::chrono::seconds> retry_after() const { return retry_after_; }

  private:
    HttpResponse send(const std::string& method, const std::string& path, const std::string& body,
                      const std::string& bearer = "");
    std::string url_;
    std::optional<ServiceCredentials> credentials_;
    HttpTransport& transport_;
    const Clock& clock_;
    std::optional<std::chrono::seconds> retry_after_;
};

// This host's address on the route to the host of `url` (what the device's A or AAAA record
// should say when the service is on the same network). Throws Error(Io) when there is no
// route.
std::string local_address_toward(const std::string& url);

}  // namespace brokertls
