#include "gateway/proxy_v2.hpp"

#include <netinet/in.h>

#include <cstring>

#include "brokertls/error.hpp"

namespace brokertls::proxy_v2 {

namespace {

constexpr char kSignature[] = "\r\n\r\n\0\r\nQUIT\n";  // 12 bytes, the NUL included
constexpr unsigned char kVersionProxy = 0x21;          // version 2, command PROXY
constexpr unsigned char kTcp4 = 0x11, kTcp6 = 0x21;
constexpr unsigned char kTypeSsl = 0x20, kSubtypeVersion = 0x21, kSubtypeCn = 0x22,
                        kSubtypeCipher = 0x23;
constexpr unsigned char kClientSsl = 0x01, kClientCertConn = 0x02, kClientCertSess = 0x04;

void append_u16(std::string& out, std::size_t value) {
    if (value > 0xffff) fail(ErrorKind::Usage, "PROXY v2 header", "a TLV is too long");
    out.push_back(static_cast<char>(value >> 8));
    out.push_back(static_cast<char>(value & 0xff));
}

void append_tlv(std::string& out, unsigned char type, const std::string& value) {
    out.push_back(static_cast<char>(type));
    append_u16(out, value.size());
    out += value;
}

template <typename T>
void append_raw(std::string& out, const T& value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

}  // namespace

std::string header(const sockaddr* source, const sockaddr* destination, const Tls& tls) {
    std::string addresses;
    unsigned char family;
    if (source->sa_family == AF_INET && destination->sa_family == AF_INET) {
        family = kTcp4;
        const auto* s = reinterpret_cast<const sockaddr_in*>(source);
        const auto* d = reinterpret_cast<const sockaddr_in*>(destination);
        // Already in network byte order, as the header wants them.
        append_raw(addresses, s->sin_addr.s_addr);
        append_raw(addresses, d->sin_addr.s_addr);
        append_raw(addresses, s->sin_port);
        append_raw(addresses, d->sin_port);
    } else if (source->sa_family == AF_INET6 && destination->sa_family == AF_INET6) {
        family = kTcp6;
        const auto* s = reinterpret_cast<const sockaddr_in6*>(source);
        const auto* d = reinterpret_cast<const sockaddr_in6*>(destination);
        append_raw(addresses, s->sin6_addr.s6_addr);
        append_raw(addresses, d->sin6_addr.s6_addr);
        append_raw(addresses, s->sin6_port);
        append_raw(addresses, d->sin6_port);
    } else {
        fail(ErrorKind::Usage, "PROXY v2 header",
             "source and destination must both be IPv4 or IPv6");
    }
    // PP2_TYPE_SSL: client flags, verify (0: the certificate, if any, was verified; the gateway
    // sends nothing for a connection whose certificate it refused), then sub-TLVs.
    std::string ssl;
    ssl.push_back(
        static_cast<char>(kClientSsl | (tls.identity ? kClientCertConn | kClientCertSess : 0)));
    ssl.append(4, '\0');
    if (!tls.version.empty()) append_tlv(ssl, kSubtypeVersion, tls.version);
    if (!tls.cipher.empty()) append_tlv(ssl, kSubtypeCipher, tls.cipher);
    if (tls.identity) append_tlv(ssl, kSubtypeCn, *tls.identity);
    std::string tlvs;
    append_tlv(tlvs, kTypeSsl, ssl);

    std::string out(kSignature, 12);
    out.push_back(static_cast<char>(kVersionProxy));
    out.push_back(static_cast<char>(family));
    append_u16(out, addresses.size() + tlvs.size());
    return out + addresses + tlvs;
}

}  // namespace brokertls::proxy_v2
