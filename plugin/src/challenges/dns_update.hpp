#pragma once
// RFC 2136 UPDATE of one TXT record (dns-01) or of a name's addresses (brokertls-service's
// devices), signed with TSIG (RFC 8945). No prerequisites: an add
// adds one RR beside any others at the name, a delete removes exactly that RR (class NONE), so
// orders sharing a record name never remove each other's values.

#include <chrono>
#include <string>
#include <vector>

#include "dns_client.hpp"
#include "dns_tsig_key.hpp"

namespace brokertls {

enum class TxtChange { Add, Delete };

struct TxtRecord {
    std::string zone;   // "example.com."
    std::string name;   // "_acme-challenge.x.example.com."
    std::string value;  // one character-string (a dns-01 value is 43 characters)
};

// Throws Error naming the record, the server and the reason:
// "rfc2136: UPDATE of NAME refused by SERVER: NOTAUTH (TSIG key rejected with BADSIG: check
// tsig_key_file)"; Error(Io) when the server does not answer.
void update_txt(const DnsClient& server, const TsigKey& key, const TxtRecord& record,
                TxtChange change, std::chrono::seconds ttl);

// Replaces the A and AAAA records at `name` (absolute, in `zone`) with `addresses` in one
// UPDATE (a device's address, Heckel's step 1-3). No addresses: both are removed.
void replace_addresses(const DnsClient& server, const TsigKey& key, const std::string& zone,
                       const std::string& name, const std::vector<std::string>& addresses,
                       std::chrono::seconds ttl);

}  // namespace brokertls
