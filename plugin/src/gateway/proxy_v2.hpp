#pragma once
// The PROXY protocol v2 header (haproxy's proxy-protocol.txt, section 2.2) brokertls-gateway
// sends a broker before the client's bytes: the client's address, and a PP2_TYPE_SSL TLV whose
// PP2_SUBTYPE_SSL_CN carries the identity mapped from the validated client certificate
// (Mosquitto 2.1's `enable_proxy_protocol 2` with `use_identity_as_username` takes it as the
// username).

#include <sys/socket.h>

#include <optional>
#include <string>

namespace brokertls::proxy_v2 {

struct Tls {
    std::string version;                  // "TLSv1.3"
    std::string cipher;                   // "TLS_AES_128_GCM_SHA256"
    std::optional<std::string> identity;  // set when a client certificate was validated
};

// The header for a TCP connection from `source` to `destination` (both AF_INET or both
// AF_INET6). Throws Error(Usage) for other address families or fields longer than a TLV holds.
std::string header(const sockaddr* source, const sockaddr* destination, const Tls& tls);

}  // namespace brokertls::proxy_v2
