#include "dns_update.hpp"

#include "brokertls/error.hpp"

namespace brokertls {
namespace {

struct RrFree {
    void operator()(ldns_rr* rr) const { ldns_rr_free(rr); }
};
struct RrListFree {
    void operator()(ldns_rr_list* list) const { ldns_rr_list_deep_free(list); }
};

std::string subject(const std::string& name) {
    return "rfc2136: UPDATE of " + name;
}

// The TSIG error a server put in its answer (BADSIG, BADKEY, BADTIME); nullopt when none.
Problem tsig_problem(const ldns_pkt* answer) {
    const ldns_rr* tsig = ldns_pkt_tsig(answer);
    if (!tsig || ldns_rr_rd_count(tsig) < 6) return std::nullopt;
    switch (ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5))) {
        case 16:
            return "BADSIG";
        case 17:
            return "BADKEY";
        case 18:
            return "BADTIME";
        default:
            return std::nullopt;
    }
}

std::string explain(const ldns_pkt* answer, const std::string& zone, const std::string& name) {
    ldns_pkt_rcode rcode = ldns_pkt_get_rcode(answer);
    std::string text = rcode_text(rcode);
    Problem tsig = tsig_problem(answer);
    switch (rcode) {
        case LDNS_RCODE_NOTAUTH:
            if (tsig)
                return text + " (TSIG key rejected with " + *tsig +
                       (tsig == "BADTIME" ? ": check this host's clock)"
                                          : ": check tsig_key_file)");
            return text + " (the server is not authoritative for zone " + zone +
                   ": check zone and dns_server)";
        case LDNS_RCODE_REFUSED:
            return text + " (the key may not update zone " + zone +
                   ": check the server's allow-update or update-policy)";
        case LDNS_RCODE_NOTZONE:
            return text + " (" + name + " is not in zone " + zone + ": check zone)";
        default:
            return tsig ? text + " (TSIG " + *tsig + ")" : text;
    }
}

ldns_rr* txt_rr(const TxtRecord& record, TxtChange change, std::chrono::seconds ttl) {
    std::unique_ptr<ldns_rr, RrFree> rr(ldns_rr_new_frm_type(LDNS_RR_TYPE_TXT));
    ldns_rdf* value = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_STR, record.value.c_str());
    if (!rr || !value) {
        ldns_rdf_deep_free(value);
        fail(ErrorKind::Input, subject(record.name), "not a valid TXT value");
    }
    ldns_rr_set_owner(rr.get(), to_dname(record.name).release());
    // RFC 2136 2.5.1 adds with the zone class; 2.5.4 deletes one RR with class NONE, TTL 0.
    ldns_rr_set_class(rr.get(), change == TxtChange::Add ? LDNS_RR_CLASS_IN : LDNS_RR_CLASS_NONE);
    ldns_rr_set_ttl(rr.get(), change == TxtChange::Add ? static_cast<uint32_t>(ttl.count()) : 0);
    // ldns_rr_new_frm_type made the rdata slot; this fills it.
    ldns_rdf_deep_free(ldns_rr_set_rdf(rr.get(), value, 0));
    return rr.release();
}

// Signs and sends one UPDATE of `zone` holding `updates` (owned by the list), and checks the
// answer.
void send_update(const DnsClient& server, const TsigKey& key, const std::string& zone,
                 const std::string& name, ldns_rr_list* updates_raw) {
    std::unique_ptr<ldns_rr_list, RrListFree> updates(updates_raw);
    DnsPacket packet(ldns_update_pkt_new(to_dname(zone).release(), LDNS_RR_CLASS_IN, nullptr,
                                         updates.get(), nullptr));
    if (!packet) fail(ErrorKind::Io, subject(name), "cannot build the UPDATE");
    ldns_pkt_set_random_id(packet.get());
    ldns_pkt_set_rd(packet.get(), false);
    // RFC 8945 recommends 300 s of allowed clock skew.
    ldns_status status = ldns_pkt_tsig_sign(packet.get(), key.name.c_str(), key.secret.c_str(), 300,
                                            key.algorithm.c_str(), nullptr);
    if (status != LDNS_STATUS_OK)
        fail(ErrorKind::Input, subject(name),
             "cannot sign with key " + key.name + " (" + key.algorithm +
                 "): " + status_text(status));

    DnsPacket answer =
        server.send_signed(packet.get(), key.name, key.algorithm, key.secret, status);
    if (!answer)
        fail(ErrorKind::Io, subject(name),
             "no answer from " + server.describe() + ": " + status_text(status));
    if (ldns_pkt_get_rcode(answer.get()) != LDNS_RCODE_NOERROR) {
        ldns_pkt_rcode rcode = ldns_pkt_get_rcode(answer.get());
        ErrorKind kind = rcode == LDNS_RCODE_NOTAUTH || rcode == LDNS_RCODE_REFUSED ||
                                 rcode == LDNS_RCODE_NOTZONE
                             ? ErrorKind::Input
                             : ErrorKind::Io;
        fail(kind, subject(name) + " refused by " + server.describe(),
             explain(answer.get(), zone, name));
    }
    // The update was applied, but an answer that fails TSIG is not the server's word.
    if (status != LDNS_STATUS_OK)
        fail(ErrorKind::Io, subject(name),
             "answer from " + server.describe() + " not trusted: " + status_text(status));
}

}  // namespace

void update_txt(const DnsClient& server, const TsigKey& key, const TxtRecord& record,
                TxtChange change, std::chrono::seconds ttl) {
    ldns_rr_list* updates = ldns_rr_list_new();
    if (!updates) fail(ErrorKind::Io, subject(record.name), "out of memory");
    ldns_rr_list_push_rr(updates, txt_rr(record, change, ttl));
    send_update(server, key, record.zone, record.name, updates);
}

void replace_addresses(const DnsClient& server, const TsigKey& key, const std::string& zone,
                       const std::string& name, const std::vector<std::string>& addresses,
                       std::chrono::seconds ttl) {
    std::unique_ptr<ldns_rr_list, RrListFree> updates(ldns_rr_list_new());
    if (!updates) fail(ErrorKind::Io, subject(name), "out of memory");
    // RFC 2136 2.5.2: class ANY, TTL 0, no rdata deletes the whole RRset of that type.
    for (ldns_rr_type type : {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA}) {
        ldns_rr* rr = ldns_rr_new();
        ldns_rr_set_owner(rr, to_dname(name).release());
        ldns_rr_set_type(rr, type);
        ldns_rr_set_class(rr, LDNS_RR_CLASS_ANY);
        ldns_rr_set_ttl(rr, 0);
        ldns_rr_list_push_rr(updates.get(), rr);
    }
    for (const auto& address : addresses) {
        bool v6 = address.find(':') != std::string::npos;
        std::unique_ptr<ldns_rr, RrFree> rr(
            ldns_rr_new_frm_type(v6 ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A));
        ldns_rdf* value =
            ldns_rdf_new_frm_str(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, address.c_str());
        if (!rr || !value) {
            ldns_rdf_deep_free(value);
            fail(ErrorKind::Input, subject(name), "'" + address + "' is not an IP address");
        }
        ldns_rr_set_owner(rr.get(), to_dname(name).release());
        ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
        ldns_rr_set_ttl(rr.get(), static_cast<uint32_t>(ttl.count()));
        ldns_rdf_deep_free(ldns_rr_set_rdf(rr.get(), value, 0));
        ldns_rr_list_push_rr(updates.get(), rr.release());
    }
    send_update(server, key, zone, name, updates.release());
}

}  // namespace brokertls
