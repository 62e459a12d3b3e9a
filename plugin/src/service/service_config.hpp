#pragma once
// brokertls-service.json: the issuing service's configuration, in the style of brokertls.json
// (strict keys, errors "FILE: JSON.PATH: reason", paths relative to the file).

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "brokertls/crypto/signing.hpp"
#include "config/config.hpp"
#include "service/auth.hpp"
#include "service/http_server.hpp"
#include "service/rate_plan.hpp"

namespace brokertls {

// What a listener answers.
enum class Endpoint {
    Sign,           // ACMEMS POST /sign
    V1,             // JSON API /v1/...
    AcmeChallenge,  // GET /.well-known/acme-challenge/TOKEN (forwarded http-01)
    Est,            // /.well-known/est/ (RFC 7030): cacerts, simpleenroll, simplereenroll
};

struct ServiceListener {
    std::string name;
    std::string listen;
    std::optional<HttpTlsConfig> tls;
    std::set<Endpoint> serve;
};

// Who signs: an ACME CA (the issuer config of brokertls.json) or a brokertls-ca directory.
struct ServiceIssuer {
    enum class Type { Acme, LocalCa };
    std::string name;
    Type type = Type::LocalCa;
    IssuerConfig acme;  // type acme
    int max_concurrent_orders = 4;
    std::chrono::seconds order_timeout{600};
    RateLimits rate_limits;  // acme: the CA's limits the service plans within
    std::filesystem::path ca_dir;
    std::optional<std::filesystem::path> ca_passphrase_file;
};

// What a request may get: which issuer signs, server or client certificates, how long they
// last (local-ca), which names, and how long a cached certificate is handed out again.
struct ServiceProfile {
    std::string name;
    std::string issuer;
    CertificateProfile kind = CertificateProfile::Server;
    std::chrono::seconds lifetime{90 * 86400};  // local-ca only; an ACME CA decides its own
    std::vector<std::string> domains;           // globs every name must match ("*" = any)
    std::chrono::seconds renew_within{14 * 86400};
};

// An HMAC key from a file of its own (mode 0600; the first line is the key, as the ACMEMS
// `openssl dgst -hmac KEY` client uses it).
struct HmacKey {
    std::filesystem::path file;
    std::string key;
};

// An ACMEMS auth block: a /sign request must pass every method the block names and ask only
// for names its domain globs allow.
struct AuthBlock {
    std::string name;
    std::vector<AddressRange> ip;  // empty: any address
    std::optional<HmacKey> hmac;
    std::vector<std::string> domains;
    std::string profile;
};

// A /v1 client authenticated by the request HMAC under its key id (the client's name).
struct ServiceClient {
    std::string name;
    HmacKey key;
    std::vector<std::string> profiles;  // which profiles it may ask for
    std::vector<std::string> domains;   // globs; empty: each profile's own
    // May register devices, create enrollment tokens and read the issuance log.
    bool admin = false;
};

// `devices`: the zone device names live in and how the service updates it.
struct DevicesConfig {
    std::string zone;     // "devices.example.com": names are LABEL.zone
    std::string profile;  // the profile a device's certificate requests use
    int label_length = 5;
    // RFC 2136: where address updates go, with which TSIG key; empty server: no updates.
    std::string dns_server;
    std::filesystem::path tsig_key_file;
    std::string dns_zone;  // the zone the UPDATE names (default: zone)
    std::chrono::seconds ttl{60};
};

struct ServiceConfig {
    std::filesystem::path file;
    std::filesystem::path state_dir;
    int threads = 2;
    std::vector<ServiceListener> listeners;
    HttpLimits limits;
    std::chrono::seconds replay_window{300};
    // Requests per minute (0: no limit): per peer address before anything is parsed, per client
    // or device once authenticated; beyond them 429 with Retry-After.
    int requests_per_minute_per_address = 600;
    int requests_per_minute_per_client = 120;
    std::map<std::string, ServiceIssuer> issuers;
    std::map<std::string, ServiceProfile> profiles;
    std::vector<AuthBlock> auth;  // in the file's order (an array): the first one passed wins
    std::map<std::string, ServiceClient> clients;
    std::optional<DevicesConfig> devices;
    // EST: CA label ("" = none) -> the profile it enrolls with (a local-ca one).
    std::map<std::string, std::string> est_profiles;
    std::filesystem::path audit_file;  // default STATE_DIR/audit.jsonl
    // The key that seals devices' HMAC keys in the store (crypto/sealing.hpp); when not given,
    // STATE_DIR/secrets.key, made at the first start.
    std::optional<std::filesystem::path> secrets_key_file;
};

ServiceConfig load_service_config(const std::filesystem::path& file);
ServiceConfig parse_service_config(const std::string& text, const std::filesystem::path& file);

}  // namespace brokertls
