#pragma once
// The lookups the rfc2136 dns-01 solver needs: CNAME delegation of _acme-challenge names, the
// zone a name lives in (SOA), the zone's authoritative servers (NS), and the TXT values a server
// holds. Names are absolute and lower case ("_acme-challenge.x.example."). Lookup failures
// throw Error(Io) naming the name and the server.

#include <string>
#include <vector>

#include "dns_client.hpp"

namespace brokertls {

// Where CNAMEs starting at `name` end: `name` itself when it has no CNAME. Throws Error(Input)
// on a loop or a chain longer than `max_hops`.
std::string follow_cnames(const DnsClient& resolver, const std::string& name, int max_hops = 8);

// The zone holding `name`: the owner of the SOA found walking up its labels (an SOA in the
// authority section of a negative answer counts).
std::string find_zone(const DnsClient& resolver, const std::string& name);

// The zone's NS host names, and each resolved to its addresses (A and AAAA).
std::vector<std::string> zone_nameservers(const DnsClient& resolver, const std::string& zone);
std::vector<std::string> host_addresses(const DnsClient& resolver, const std::string& host);

// The TXT values at `name` on `server`, asked without recursion (each record's strings joined).
std::vector<std::string> txt_values(const DnsClient& server, const std::string& name);

}  // namespace brokertls
