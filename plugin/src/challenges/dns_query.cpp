#include "dns_query.hpp"

#include <algorithm>
#include <set>

#include "brokertls/error.hpp"

namespace brokertls {
namespace {

// The records of `type` owned by `name` in one section.
std::vector<const ldns_rr*> records(const ldns_rr_list* section, const std::string& name,
                                    ldns_rr_type type) {
    std::vector<const ldns_rr*> out;
    for (size_t i = 0; section && i < ldns_rr_list_rr_count(section); ++i) {
        const ldns_rr* rr = ldns_rr_list_rr(section, i);
        if (ldns_rr_get_type(rr) == type && name_text(ldns_rr_owner(rr)) == name) out.push_back(rr);
    }
    return out;
}

// NOERROR and NXDOMAIN are answers; anything else means this server cannot tell.
void check_answer(const ldns_pkt* answer, const std::string& name, const std::string& type,
                  const DnsClient& server) {
    ldns_pkt_rcode rcode = ldns_pkt_get_rcode(answer);
    if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN)
        fail(ErrorKind::Io, "dns: " + name + " " + type,
             rcode_text(rcode) + " from " + server.describe());
}

std::string parent_of(const std::string& name) {
    size_t dot = name.find('.');
    return dot + 1 >= name.size() ? "." : name.substr(dot + 1);
}

bool is_within(const std::string& name, const std::string& zone) {
    if (zone == ".") return true;
    return name == zone || (name.size() > zone.size() &&
                            name.compare(name.size() - zone.size(), zone.size(), zone) == 0 &&
                            name[name.size() - zone.size() - 1] == '.');
}

}  // namespace

std::string follow_cnames(const DnsClient& resolver, const std::string& start, int max_hops) {
    std::string name = absolute_name(start);
    std::set<std::string> seen{name};
    for (int hop = 0; hop <= max_hops; ++hop) {
        DnsPacket answer = resolver.query(name, LDNS_RR_TYPE_CNAME, true);
        check_answer(answer.get(), name, "CNAME", resolver);
        auto cnames = records(ldns_pkt_answer(answer.get()), name, LDNS_RR_TYPE_CNAME);
        if (cnames.empty() || ldns_rr_rd_count(cnames.front()) < 1) return name;
        std::string target = name_text(ldns_rr_rdf(cnames.front(), 0));
        if (!seen.insert(target).second)
            fail(ErrorKind::Input, "dns-01: " + absolute_name(start),
                 "CNAME loop at " + name + " -> " + target);
        name = target;
    }
    fail(ErrorKind::Input, "dns-01: " + absolute_name(start),
         "CNAME chain longer than " + std::to_string(max_hops) + " links");
}

std::string find_zone(const DnsClient& resolver, const std::string& start) {
    for (std::string name = absolute_name(start);; name = parent_of(name)) {
        DnsPacket answer = resolver.query(name, LDNS_RR_TYPE_SOA, true);
        check_answer(answer.get(), name, "SOA", resolver);
        if (!records(ldns_pkt_answer(answer.get()), name, LDNS_RR_TYPE_SOA).empty()) return name;
        const ldns_rr_list* authority = ldns_pkt_authority(answer.get());
        for (size_t i = 0; authority && i < ldns_rr_list_rr_count(authority); ++i) {
            const ldns_rr* rr = ldns_rr_list_rr(authority, i);
            std::string owner = name_text(ldns_rr_owner(rr));
            if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && is_within(name, owner)) return owner;
        }
        if (name == ".")
            fail(ErrorKind::Io, "dns-01: " + absolute_name(start),
                 "no SOA found for any of its parents via " + resolver.describe());
    }
}

std::vector<std::string> zone_nameservers(const DnsClient& resolver, const std::string& zone) {
    std::string name = absolute_name(zone);
    DnsPacket answer = resolver.query(name, LDNS_RR_TYPE_NS, true);
    check_answer(answer.get(), name, "NS", resolver);
    std::vector<std::string> out;
    for (const ldns_rr* rr : records(ldns_pkt_answer(answer.get()), name, LDNS_RR_TYPE_NS))
        if (ldns_rr_rd_count(rr) >= 1) out.push_back(name_text(ldns_rr_rdf(rr, 0)));
    if (out.empty())
        fail(ErrorKind::Io, "dns: " + name + " NS", "no NS records via " + resolver.describe());
    return out;
}

std::vector<std::string> host_addresses(const DnsClient& resolver, const std::string& host) {
    std::string name = absolute_name(host);
    std::vector<std::string> out;
    for (ldns_rr_type type : {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA}) {
        DnsPacket answer = resolver.query(name, type, true);
        check_answer(answer.get(), name, type == LDNS_RR_TYPE_A ? "A" : "AAAA", resolver);
        // A CNAME'd host: the addresses are owned by the target, so take every A/AAAA answered.
        const ldns_rr_list* section = ldns_pkt_answer(answer.get());
        for (size_t i = 0; section && i < ldns_rr_list_rr_count(section); ++i) {
            const ldns_rr* rr = ldns_rr_list_rr(section, i);
            if (ldns_rr_get_type(rr) != type || ldns_rr_rd_count(rr) < 1) continue;
            char* text = ldns_rdf2str(ldns_rr_rdf(rr, 0));
            if (text) out.push_back(text);
            free(text);
        }
    }
    if (out.empty()) fail(ErrorKind::Io, "dns: " + name, "no address via " + resolver.describe());
    return out;
}

std::vector<std::string> txt_values(const DnsClient& server, const std::string& start) {
    std::string name = absolute_name(start);
    DnsPacket answer = server.query(name, LDNS_RR_TYPE_TXT, false);
    check_answer(answer.get(), name, "TXT", server);
    std::vector<std::string> out;
    for (const ldns_rr* rr : records(ldns_pkt_answer(answer.get()), name, LDNS_RR_TYPE_TXT)) {
        std::string value;
        for (size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
            // A character-string: one length byte, then the bytes.
            const ldns_rdf* part = ldns_rr_rdf(rr, i);
            const uint8_t* data = ldns_rdf_data(part);
            size_t size = ldns_rdf_size(part);
            if (size >= 1)
                value.append(reinterpret_cast<const char*>(data + 1),
                             std::min<size_t>(data[0], size - 1));
        }
        out.push_back(std::move(value));
    }
    return out;
}

}  // namespace brokertls
