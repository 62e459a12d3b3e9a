#pragma once
// A small ldns stub resolver aimed at one DNS server ("host:port") or at the system resolver
// (/etc/resolv.conf), with bounded timeouts, for the rfc2136 dns-01 solver.

#include "dns_ldns.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace brokertls {

struct DnsEndpoint {
    std::string host;  // an address or a host name
    uint16_t port = 53;
    std::string text() const;  // "127.0.0.1:5300", "[::1]:53"
};

// "host", "host:port", "[v6]:port" or a bare IPv6 address (port 53). Throws Error(Input)
// "WHAT: 'TEXT': REASON".
DnsEndpoint parse_dns_endpoint(const std::string& text, std::string_view what);

struct PacketFree {
    void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using DnsPacket = std::unique_ptr<ldns_pkt, PacketFree>;

struct RdfFree {
    void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
using DnsName = std::unique_ptr<ldns_rdf, RdfFree>;

// Lower case with the trailing dot: "_acme-challenge.x.example.".
std::string absolute_name(std::string_view name);
// An ldns name for `name`; throws Error(Input) "dns: 'NAME': not a valid DNS name".
DnsName to_dname(const std::string& name);
// The name an ldns name spells, lower case with the trailing dot.
std::string name_text(const ldns_rdf* name);
// ldns's words for a status: "Could not send or receive, because of network error".
std::string status_text(ldns_status status);
// "NOERROR", "NOTAUTH", ...
std::string rcode_text(ldns_pkt_rcode rcode);

// Each try waits `timeout`; a server gets `tries` tries. Defaults keep one lookup under ~4 s.
struct DnsLimits {
    std::chrono::milliseconds timeout{2000};
    int tries = 2;
};

class DnsClient {
  public:
    using Limits = DnsLimits;

    // Aimed at `server` (a host name is resolved once, here, by the system).
    explicit DnsClient(const DnsEndpoint& server, Limits limits = {});
    // `resolver` "host:port", or "" for the system resolver.
    static DnsClient for_lookups(const std::string& resolver, Limits limits = {});

    // "127.0.0.1:5300" or "the system resolver".
    const std::string& describe() const { return description_; }

    // Asks for NAME TYPE (recursion desired when `recursive`); throws Error(Io)
    // "dns: NAME TYPE: no answer from SERVER: REASON". Any rcode is returned as is.
    DnsPacket query(const std::string& name, ldns_rr_type type, bool recursive) const;
    // Sends a packet signed with this TSIG key (ldns checks the answer's signature with it).
    // Returns the answer when there is one, also when ldns reports a problem with it (an
    // answer whose TSIG does not verify, as for BADSIG): `status` says.
    DnsPacket send_signed(const ldns_pkt* packet, const std::string& key_name,
                          const std::string& algorithm, const std::string& secret,
                          ldns_status& status) const;

  private:
    DnsClient(ldns_resolver* resolver, std::string description, Limits limits);

    struct ResolverFree {
        void operator()(ldns_resolver* r) const { ldns_resolver_deep_free(r); }
    };
    std::unique_ptr<ldns_resolver, ResolverFree> resolver_;
    std::string description_;
};

}  // namespace brokertls
