#include "dns_client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "brokertls/error.hpp"

namespace brokertls {
namespace {

// Takes an ldns-allocated C string.
std::string take(char* s) {
    std::string out = s ? s : "?";
    std::free(s);
    return out;
}

bool is_address(const std::string& host, int family) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(family, host.c_str(), buf) == 1;
}

ldns_rdf* address_rdf(const std::string& address) {
    if (is_address(address, AF_INET)) return ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, address.c_str());
    return ldns_rdf_new_frm_str(LDNS_RDF_TYPE_AAAA, address.c_str());
}

std::vector<std::string> resolve_host(const std::string& host) {
    if (is_address(host, AF_INET) || is_address(host, AF_INET6)) return {host};
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* found = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (rc != 0)
        fail(ErrorKind::Io, "dns: " + host, std::string("cannot resolve: ") + gai_strerror(rc));
    std::vector<std::string> out;
    for (addrinfo* a = found; a; a = a->ai_next) {
        char text[INET6_ADDRSTRLEN] = {};
        const void* addr =
            a->ai_family == AF_INET
                ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
        if (inet_ntop(a->ai_family, addr, text, sizeof text) &&
            std::find(out.begin(), out.end(), text) == out.end())
            out.push_back(text);
    }
    freeaddrinfo(found);
    if (out.empty()) fail(ErrorKind::Io, "dns: " + host, "cannot resolve: no address");
    return out;
}

// ldns stops using a server after one failed exchange; every exchange here starts afresh, so
// a server that was down during one propagation check is asked again at the next.
void forget_failures(ldns_resolver* r) {
    for (size_t i = 0; i < ldns_resolver_nameserver_count(r); ++i)
        ldns_resolver_set_nameserver_rtt(r, i, LDNS_RESOLV_RTT_MIN);
}

}  // namespace

std::string status_text(ldns_status status) {
    const char* text = ldns_get_errorstr_by_id(status);
    return text ? text : "error " + std::to_string(static_cast<int>(status));
}

std::string DnsEndpoint::text() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return h + ":" + std::to_string(port);
}

DnsEndpoint parse_dns_endpoint(const std::string& text, std::string_view what) {
    auto bad = [&](const std::string& reason) {
        fail(ErrorKind::Input, what, "'" + text + "': " + reason);
    };
    if (text.empty()) bad("empty");
    DnsEndpoint out;
    std::string port;
    if (text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string::npos) bad("missing ']'");
        out.host = text.substr(1, close - 1);
        std::string rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') bad("expected ':PORT' after ']'");
            port = rest.substr(1);
            if (port.empty()) bad("empty port");
        }
        if (!is_address(out.host, AF_INET6)) bad("not an IPv6 address in brackets");
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        size_t colon = text.find(':');
        out.host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (port.empty()) bad("empty port");
    } else {
        out.host = text;  // a host name, an IPv4 address or a bare IPv6 address
        if (text.find(':') != std::string::npos && !is_address(text, AF_INET6))
            bad("not a host, host:port or [IPv6]:port");
    }
    if (out.host.empty()) bad("empty host");
    if (!port.empty()) {
        if (port.size() > 5 ||
            !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }))
            bad("port is not a number");
        int n = std::stoi(port);
        if (n < 1 || n > 65535) bad("port out of range");
        out.port = static_cast<uint16_t>(n);
    }
    return out;
}

std::string absolute_name(std::string_view name) {
    std::string out(name);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (out.empty() || out.back() != '.') out += '.';
    return out;
}

DnsName to_dname(const std::string& name) {
    ldns_rdf* rdf = nullptr;
    if (ldns_str2rdf_dname(&rdf, absolute_name(name).c_str()) != LDNS_STATUS_OK || !rdf)
        fail(ErrorKind::Input, "dns", "'" + name + "': not a valid DNS name");
    return DnsName(rdf);
}

std::string name_text(const ldns_rdf* name) {
    return absolute_name(take(ldns_rdf2str(name)));
}

std::string rcode_text(ldns_pkt_rcode rcode) {
    return take(ldns_pkt_rcode2str(rcode));
}

DnsClient::DnsClient(ldns_resolver* resolver, std::string description, Limits limits)
    : resolver_(resolver), description_(std::move(description)) {
    if (!resolver) fail(ErrorKind::Io, "dns", "out of memory");
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(limits.timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((limits.timeout.count() % 1000) * 1000);
    ldns_resolver_set_timeout(resolver, tv);
    ldns_resolver_set_retry(resolver, static_cast<uint8_t>(std::clamp(limits.tries, 1, 10)));
    ldns_resolver_set_retrans(resolver, 0);
    ldns_resolver_set_dnssec(resolver, false);
}

DnsClient::DnsClient(const DnsEndpoint& server, Limits limits)
    : DnsClient(ldns_resolver_new(), server.text(), limits) {
    ldns_resolver_set_port(resolver_.get(), server.port);
    for (const auto& address : resolve_host(server.host)) {
        DnsName rdf(address_rdf(address));
        if (!rdf || ldns_resolver_push_nameserver(resolver_.get(), rdf.get()) != LDNS_STATUS_OK)
            fail(ErrorKind::Input, "dns", "'" + address + "': not a usable server address");
    }
}

DnsClient DnsClient::for_lookups(const std::string& resolver, Limits limits) {
    if (!resolver.empty()) return DnsClient(parse_dns_endpoint(resolver, "resolver"), limits);
    ldns_resolver* r = nullptr;
    ldns_status status = ldns_resolver_new_frm_file(&r, nullptr);
    if (status != LDNS_STATUS_OK || !r)
        fail(ErrorKind::Io, "dns: /etc/resolv.conf",
             std::string("no system resolver: ") + status_text(status));
    return DnsClient(r, "the system resolver", limits);
}

DnsPacket DnsClient::query(const std::string& name, ldns_rr_type type, bool recursive) const {
    DnsPacket packet(ldns_pkt_query_new(to_dname(name).release(), type, LDNS_RR_CLASS_IN,
                                        recursive ? LDNS_RD : 0));
    if (!packet) fail(ErrorKind::Io, "dns", "out of memory");
    ldns_pkt_set_random_id(packet.get());
    forget_failures(resolver_.get());
    ldns_pkt* answer = nullptr;
    ldns_status status = ldns_resolver_send_pkt(&answer, resolver_.get(), packet.get());
    DnsPacket out(answer);
    if (status != LDNS_STATUS_OK || !out)
        fail(ErrorKind::Io, "dns: " + absolute_name(name) + " " + take(ldns_rr_type2str(type)),
             "no answer from " + description_ + ": " + status_text(status));
    return out;
}

DnsPacket DnsClient::send_signed(const ldns_pkt* packet, const std::string& key_name,
                                 const std::string& algorithm, const std::string& secret,
                                 ldns_status& status) const {
    ldns_resolver* r = resolver_.get();
    forget_failures(r);
    ldns_resolver_set_tsig_keyname(r, key_name.c_str());
    ldns_resolver_set_tsig_algorithm(r, algorithm.c_str());
    ldns_resolver_set_tsig_keydata(r, secret.c_str());
    ldns_pkt* answer = nullptr;
    status = ldns_send(&answer, r, packet);
    // ldns keeps its own copy of the secret; wipe it rather than leave it to free().
    char* copy = const_cast<char*>(ldns_resolver_tsig_keydata(r));
    OPENSSL_cleanse(copy, std::strlen(copy));
    return DnsPacket(answer);
}

}  // namespace brokertls
