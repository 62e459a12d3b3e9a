#include "service/devices.hpp"

#include <arpa/inet.h>
#include <openssl/rand.h>

#include <nlohmann/json.hpp>

#include "brokertls/crypto/digest.hpp"
#include "brokertls/error.hpp"
#include "challenges/dns_client.hpp"
#include "challenges/dns_tsig_key.hpp"
#include "challenges/dns_update.hpp"

namespace brokertls {

using nlohmann::json;

namespace {

// Letters and digits, starting with a letter (a DNS label, a store key, a key id). Drawn by
// rejection sampling so every character is equally likely.
std::string random_label(int length) {
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string label;
    while (static_cast<int>(label.size()) < length) {
        unsigned char b = 0;
        if (RAND_bytes(&b, 1) != 1) fail(ErrorKind::Io, "random", "no randomness");
        if (b >= 252) continue;  // 252 = 7 * 36
        char c = kAlphabet[b % 36];
        if (label.empty() && c >= '0' && c <= '9') continue;
        label += c;
    }
    return label;
}

std::string device_key(const std::string& id) {
    return "devices/" + id + ".json";
}

bool is_address(const std::string& text) {
    unsigned char buf[16];
    return inet_pton(AF_INET, text.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

}  // namespace

DeviceRegistry::DeviceRegistry(const DevicesConfig& config, ServiceStore& store,
                               const SecretSealer& sealer)
    : config_(config), store_(store), sealer_(sealer) {}

void DeviceRegistry::store_device(const Device& d) {
    json j = {{"id", d.id},
              {"name", d.name},
              {"key_sealed", sealer_.seal(d.key, device_key(d.id))},
              {"addresses", d.addresses},
              {"created", to_iso8601(d.created)},
              {"registered_by", d.registered_by}};
    store_.put(device_key(d.id), j.dump(), Durability::Durable);
}

Device DeviceRegistry::register_device(const std::string& registered_by, TimePoint now,
                                       const std::vector<std::string>& reserved) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::string id = random_label(config_.label_length);
        if (std::find(reserved.begin(), reserved.end(), id) != reserved.end() || find(id)) continue;
        Device d{id, id + "." + config_.zone, random_hex(32), {}, now, registered_by};
        store_device(d);
        return d;
    }
    fail(ErrorKind::State, "devices", "no free label after 100 tries: raise devices.label_length");
}

std::optional<Device> DeviceRegistry::find(const std::string& id) const {
    if (id.empty() || id.size() > 64 ||
        id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos)
        return std::nullopt;
    auto text = store_.get(device_key(id));
    if (!text) return std::nullopt;
    json j;
    std::string sealed;
    try {
        j = json::parse(*text);
        sealed = j.at("key_sealed").get<std::string>();
    } catch (const std::exception& e) {
        fail(ErrorKind::State, "store " + device_key(id), std::string("damaged: ") + e.what());
    }
    auto key = sealer_.open(sealed, device_key(id));
    if (!key)
        fail(ErrorKind::State, "store " + device_key(id),
             "the device's key does not open with the secrets key (another secrets_key_file, or "
             "a record copied from another device)");
    try {
        return Device{j.at("id"),
                      j.at("name"),
                      *key,
                      j.at("addresses"),
                      from_iso8601(j.at("created")),
                      j.at("registered_by")};
    } catch (const std::exception& e) {
        fail(ErrorKind::State, "store " + device_key(id), std::string("damaged: ") + e.what());
    }
}

Device DeviceRegistry::set_addresses(const std::string& id,
                                     const std::vector<std::string>& addresses) {
    auto d = find(id);
    if (!d) fail(ErrorKind::State, "device " + id, "not registered");
    for (const auto& a : addresses)
        if (!is_address(a)) fail(ErrorKind::Input, "address '" + a + "'", "not an IP address");
    if (config_.dns_server.empty())
        fail(ErrorKind::State, "devices.dns",
             "not configured: the service cannot update addresses");
    DnsClient server(parse_dns_endpoint(config_.dns_server, "devices.dns.server"));
    TsigKey key = load_tsig_key(config_.tsig_key_file);
    replace_addresses(server, key, absolute_name(config_.dns_zone), absolute_name(d->name),
                      addresses, config_.ttl);
    d->addresses = addresses;
    store_device(*d);
    return *d;
}

std::vector<std::string> create_enrollment_tokens(ServiceStore& store, int count, TimePoint expires,
                                                  const std::string& by) {
    std::vector<std::string> tokens;
    for (int i = 0; i < count; ++i) {
        std::string token = random_hex(24);
        json j = {{"expires", to_iso8601(expires)}, {"created_by", by}};
        store.put("tokens/" + sha256_hex(token) + ".json", j.dump(), Durability::Durable);
        tokens.push_back(token);
    }
    return tokens;
}

bool redeem_enrollment_token(ServiceStore& store, const std::string& token, TimePoint now) {
    if (token.size() != 48 || token.find_first_not_of("0123456789abcdef") != std::string::npos)
        return false;
    std::string key = "tokens/" + sha256_hex(token) + ".json";
    auto text = store.get(key);
    if (!text) return false;
    // Of two requests racing with one token, only one removes it.
    if (!store.remove(key)) return false;
    auto j = json::parse(*text, nullptr, false);
    return j.is_object() && j.contains("expires") && j["expires"].is_string() &&
           from_iso8601(j["expires"].get<std::string>()) > now;
}

}  // namespace brokertls
