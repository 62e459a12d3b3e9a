#pragma once
// brokertls.json, loaded into a typed and validated model. Every error names the file, the
// JSON path and the reason: "brokertls.json: security_profiles.devices.crls[0]: file not found".
// Relative paths are resolved against the directory of the configuration file.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/names.hpp"
#include "trust/security_profile.hpp"

namespace brokertls {

enum class CertificateSource { Files, LocalCa, Acme, Service };

// Sources that get certificates over the network (an ACME CA, brokertls-service): their
// profiles start with a temporary stand-in and are renewed by the order workers.
inline bool remote_source(CertificateSource s) {
    return s == CertificateSource::Acme || s == CertificateSource::Service;
}

struct CertificateProfileConfig {
    std::string name;
    CertificateSource source = CertificateSource::Files;
    // source "files": where the operator (or certbot, ...) puts the material.
    std::filesystem::path key_file, cert_file, chain_file;
    // source "local-ca": a brokertls-ca directory that issues and renews the certificate.
    std::filesystem::path ca_dir;
    std::optional<std::filesystem::path> ca_passphrase_file;
    // The broker then holds this CA's key. When the same CA vouches for client identities (a
    // trust anchor or intermediate of a security profile), a broker compromise mints any
    // identity: refused unless the operator says so.
    bool allow_client_trust_anchor = false;
    std::chrono::seconds lifetime{397 * 86400};
    std::chrono::seconds renew_before{0};  // 0: a third of the lifetime
    std::vector<SubjectAltName> names;
    KeyType key_type = KeyType::EcP256;
    // source "acme": the issuer (a key of `issuers`), the chain to prefer among the CA's
    // alternates (the top issuer's CN), and a directory `profiles` name ("" = CA default).
    std::string issuer;
    std::string preferred_chain;
    std::string acme_profile;
    // source "service": brokertls-service's /v1 API at `service_url` (HTTPS, trusting
    // service_ca_bundle or the system store), requests signed with the key id and key of
    // `service_credentials`; `service_profile` "" = a device's fleet profile. Before each
    // request the device's A/AAAA records are set to `address_update` ("auto": this host's
    // address toward the service), when given.
    std::string service_url;
    std::optional<std::filesystem::path> service_ca_bundle;
    std::filesystem::path service_credentials;
    std::string service_key_id;  // for a credentials file holding a bare key
    std::string service_profile;
    std::vector<std::string> address_update;
    // The paths the broker listener reads (certfile, keyfile).
    std::filesystem::path deploy_cert, deploy_key;

    bool operator==(const CertificateProfileConfig&) const = default;
    // The files a `files` source reads (key, cert, chain if set); none for other sources.
    std::vector<std::filesystem::path> source_files() const {
        if (source != CertificateSource::Files) return {};
        std::vector<std::filesystem::path> files{key_file, cert_file};
        if (!chain_file.empty()) files.push_back(chain_file);
        return files;
    }
};

// How an ACME issuer proves control of the names (`issuers.NAME.challenge`).
struct ChallengeConfig {
    enum class Type { Http01, Dns01, TlsAlpn01 };
    enum class DnsProvider { Rfc2136, Exec, Manual };
    Type type = Type::Http01;
    // http-01 built-in responder / tls-alpn-01 responder: "ADDRESS:PORT".
    std::string listen;  // default "0.0.0.0:80" (http-01), "0.0.0.0:443" (tls-alpn-01)
    // http-01 webroot mode: token files go to WEBROOT/.well-known/acme-challenge/ instead.
    std::optional<std::filesystem::path> webroot;

    DnsProvider provider = DnsProvider::Rfc2136;
    // rfc2136: the primary taking the UPDATE ("host:port", port 53 by default), the BIND
    // tsig-keygen key file, the zone (found by SOA lookup when empty).
    std::string dns_server;
    std::filesystem::path tsig_key_file;
    std::string zone;
    // Where CNAME and SOA lookups go ("host:port"); "" = the system resolver (/etc/resolv.conf).
    std::string resolver;
    // Servers that must show the record before the challenge is answered ("host:port"); empty =
    // the zone's NS hosts on port 53.
    std::vector<std::string> propagation_servers;
    // name -> the record name to set instead of _acme-challenge.NAME (explicit delegation).
    std::map<std::string, std::string> challenge_domains;
    std::chrono::seconds propagation_timeout{120};
    std::chrono::milliseconds propagation_interval{2000};
    std::chrono::seconds ttl{60};
    // exec: COMMAND present|cleanup RECORD_NAME VALUE NAME, killed after `timeout`.
    std::filesystem::path command;
    std::chrono::seconds timeout{60};  // exec hook; manual: how long an order waits
    bool operator==(const ChallengeConfig&) const = default;
};

struct IssuerConfig {
    std::string name;
    std::string directory;  // ACME directory URL
    std::string email;      // account contact ("" = none)
    std::optional<std::string> eab_key_id;
    std::optional<std::string> eab_hmac_key;         // base64url
    std::optional<std::filesystem::path> ca_bundle;  // trust for the directory's HTTPS
    KeyType account_key_type = KeyType::EcP256;
    ChallengeConfig challenge;
    bool operator==(const IssuerConfig&) const = default;
};

// Renewal of acme profiles (`renewal`), and where their state lives.
struct RenewalConfig {
    std::chrono::seconds check_interval{12 * 3600};  // ±50% jitter
    int max_concurrent_orders = 4;
    std::chrono::seconds expiring_threshold{7 * 86400};  // `expiring` event below this
    std::chrono::seconds order_timeout{600};             // one order, start to certificate
    // At most one forced renewal (control "renew") of a profile per this interval.
    std::chrono::seconds forced_interval{300};
};

// Where renewal events go besides the broker log (`events`).
struct EventsConfig {
    std::string mqtt_topic = "$SYS/broker/brokertls/events";  // "" = not published
    std::filesystem::path exec;  // run with the event JSON on stdin; "" = none
    std::string webhook;         // POST the event JSON; "" = none
    std::chrono::seconds timeout{10};
};

// An identity brokertls mapped from a validated client certificate, optionally only when
// that security profile validated it (`control.allow` entries).
struct ControlAllow {
    std::string identity;
    std::string security_profile;  // "" = any security profile
};

// brokertls-gateway (`gateway`): TLS terminated in front of a broker that cannot load the
// plugin. Read once when the gateway starts; the module ignores it.
struct GatewayListenerConfig {
    // How the broker learns the identity mapped from the client's certificate.
    enum class Identity { ConnectRewrite, ProxyV2, None };
    std::string name;
    std::string listen;  // "host:port" (port 0: any free port)
    // Certificate profile names: the first is served when SNI names none of the others.
    std::vector<std::string> certificates;
    std::string security_profile;  // "" = no client certificate asked for
    std::string upstream;          // the broker, "host:port"
    Identity identity = Identity::ConnectRewrite;
    bool pass_password = false;  // connect_rewrite: the client's password goes on to the broker
    // connect_rewrite: the client id must equal the identity; unset = the security profile's
    // client_id_must_match_identity.
    std::optional<bool> client_id_must_match;
    std::vector<std::string> alpn{"mqtt"};
};

struct GatewayLimits {
    std::chrono::milliseconds handshake_timeout{10000};
    std::chrono::milliseconds first_packet_timeout{10000};
    std::size_t max_connect_size = 16 * 1024;  // bytes of the client's CONNECT
    int max_connections = 10000;               // open at once, all listeners
    int per_address = 100;                     // open at once from one client address
};

struct GatewayConfig {
    std::vector<GatewayListenerConfig> listeners;
    int workers = 2;            // threads running the connections
    std::string status_listen;  // HTTP GET /status, "host:port"; "" = none
    std::chrono::milliseconds drain_timeout{10000};
    GatewayLimits limits;
};

struct Config {
    std::filesystem::path file;
    std::map<std::string, SecurityProfile> security_profiles;
    std::map<std::string, CertificateProfileConfig> certificate_profiles;
    std::map<std::string, IssuerConfig> issuers;
    RenewalConfig renewal;
    EventsConfig events;
    // Accounts, job state, staging and archives of acme profiles (default: DIR/state beside
    // the configuration file).
    std::filesystem::path state_dir;
    // A directory the plugin keeps filled with hashed links to every trust anchor (a listener's
    // capath), so a CA added to a profile is trusted by the broker's handshake without a restart.
    std::optional<std::filesystem::path> capath;
    // Who may use $CONTROL/brokertls/v1; nobody by default.
    std::vector<ControlAllow> control_allow;
    // Listener port -> security profile, for a plugin loaded once for every listener (Mosquitto
    // 2.1's global_plugin, which asks the broker which port a client came in on). Clients of a
    // port not listed are left to the broker's other authentication.
    std::map<int, std::string> listeners;
    std::optional<GatewayConfig> gateway;
};

// Throws Error(Input) naming the file, JSON path and reason. Checks that every file a profile
// reads exists; the trust material itself is parsed when a TrustSnapshot is built.
Config load_config(const std::filesystem::path& file);
Config parse_config(const std::string& text, const std::filesystem::path& file);

// "90d", "12h", "30m", "45s" or a number of seconds.
std::optional<std::chrono::seconds> parse_duration(const std::string& text);

}  // namespace brokertls
