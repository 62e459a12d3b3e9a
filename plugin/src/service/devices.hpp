#pragma once
// Devices of a fleet (Heckel's steps 1-3, SharkTrustX): each registers once (with an admin's
// request or a one-time enrollment token), gets a random label under the configured zone
// ("x7k2p.devices.example.com") and an HMAC key of its own, keeps its A/AAAA records current
// through the service (RFC 2136 + TSIG: only the service holds the DNS key), and may ask for
// certificates for exactly its own name.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "brokertls/crypto/sealing.hpp"
#include "brokertls/crypto/time.hpp"
#include "fleet/request_hmac.hpp"
#include "service/service_config.hpp"
#include "service/store.hpp"

namespace brokertls {

struct Device {
    std::string id;    // the label, also its HMAC key id
    std::string name;  // id + "." + zone
    std::string key;   // its HMAC key (64 hex digits)
    std::vector<std::string> addresses;
    TimePoint created;
    std::string registered_by;
};

class DeviceRegistry {
  public:
    // Device keys are kept sealed by `sealer` (the store never holds them in the clear).
    DeviceRegistry(const DevicesConfig& config, ServiceStore& store, const SecretSealer& sealer);

    // A new device with a fresh label (never one of `reserved`, the configured clients'
    // names) and key, stored durably before it is returned.
    Device register_device(const std::string& registered_by, TimePoint now,
                           const std::vector<std::string>& reserved);
    std::optional<Device> find(const std::string& id) const;
    // Points the device's name at `addresses` in DNS, then stores them. Throws Error: Input
    // for an address that is not one, Io when the DNS server cannot be reached.
    Device set_addresses(const std::string& id, const std::vector<std::string>& addresses);

  private:
    void store_device(const Device& device);
    DevicesConfig config_;
    ServiceStore& store_;
    const SecretSealer& sealer_;
};

// One-time enrollment tokens (a device registration or an EST simpleenroll), stored as their
// SHA-256 only.
std::vector<std::string> create_enrollment_tokens(ServiceStore& store, int count, TimePoint expires,
                                                  const std::string& by);
// True (and the token is spent) when the token exists and has not expired.
bool redeem_enrollment_token(ServiceStore& store, const std::string& token, TimePoint now);

}  // namespace brokertls
