#pragma once
// Client certificate validation against a security profile. A TrustSnapshot is built once from
// the profile's files (anchors parsed, CRLs checked and their serials indexed) and is immutable
// afterwards, so the broker thread can validate connections against one snapshot while a
// reload builds the next; the swap is a shared_ptr exchange.

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/crl.hpp"
#include "brokertls/crypto/handles.hpp"
#include "brokertls/crypto/time.hpp"
#include "brokertls/trust/validation.hpp"
#include "trust/revocation_index.hpp"
#include "trust/security_profile.hpp"

namespace brokertls {

// The CRL in force per issuer DN (its bytes and version, not the parsed entries: see
// revocation_index.hpp).
using CrlsInForce = std::map<std::string, std::shared_ptr<const CrlInForce>>;

class TrustSnapshot {
  public:
    // Reads and checks every file the profile names; throws Error naming the file and reason.
    // Per CRL issuer the newest CRL wins (higher cRLNumber; with no or equal numbers, the later
    // thisUpdate), among the profile's files and the CRLs `in_force` until now (the previous
    // snapshot's, or those kept across a restart): a stale CRL written over the current one
    // never un-revokes anything (a warning says so). Only issuers the profile names a CRL of
    // are looked up in `in_force`, and each such CRL must still verify against its issuer.
    // `now` decides which CRLs are past their nextUpdate (a warning).
    //
    // With `previous` (the snapshot this one replaces), the new snapshot starts with what
    // previous->validate() verified when both verify chains the same way (the same anchors and
    // intermediates, chain depth, required EKU and identity rules): a CRL or pin change then
    // re-checks connected clients (SecurityModule::revalidate_connected) and the next connects
    // with the revocation, pin, validity and client-id checks alone, not X509_verify_cert.
    static std::shared_ptr<const TrustSnapshot> build(const SecurityProfile& profile,
                                                      const CrlsInForce& in_force, TimePoint now,
                                                      const TrustSnapshot* previous = nullptr);

    // Validates a leaf (the broker already ran the TLS handshake; `leaf` may be null when the
    // client sent no certificate). What depends only on the certificate and this snapshot (the
    // X509_verify_cert chain, the mapped identity) is cached per leaf fingerprint while `now`
    // is inside the chain's validity; the pins, the revocation check of every certificate of
    // the chain and the client id check run on every call.
    ValidationResult validate(X509* leaf, std::string_view client_id, TimePoint now) const;
    // validate() calls answered from that cache (for tests and benchmarks).
    std::size_t cache_hits() const { return cache_hits_.load(); }
    // The most leaves the cache holds (the oldest entry goes first).
    static constexpr std::size_t kCacheSize = 16384;
    // The CRL check alone for one certificate (validate() checks every certificate of the
    // chain this way).
    bool is_revoked(const std::string& issuer, const std::string& serial) const;
    const RevocationIndex& revocation_index() const { return revoked_; }
    // The CRL in force per issuer DN.
    const CrlsInForce& crls() const { return crls_; }

    const SecurityProfile& profile() const { return profile_; }
    const std::vector<Certificate>& anchors() const { return anchors_; }
    const std::vector<Certificate>& intermediates() const { return intermediates_; }
    // Non-fatal findings at build time, e.g. a CRL past its nextUpdate.
    const std::vector<std::string>& warnings() const { return warnings_; }

  private:
    // What validate() found for one leaf before the per-connection checks.
    struct Verified {
        struct Link {  // what the revocation check and its log line need, not the X509
            std::string issuer, subject, serial_hex;
            Asn1IntegerPtr serial;
        };
        std::vector<Link> chain;  // leaf first, up to (not including) the trust anchor
        TimePoint valid_from{}, valid_until{};     // every certificate of the chain is valid
        RejectReason reason = RejectReason::None;  // the outcome after the revocation check
        std::string detail, identity;
    };

    TrustSnapshot() = default;
    bool verifies_like(const TrustSnapshot& other) const;
    std::string map_identity(const Certificate& leaf) const;
    std::shared_ptr<const Verified> verify(const Certificate& leaf, TimePoint now,
                                           ValidationResult& r) const;
    std::shared_ptr<const Verified> cached(const std::string& fingerprint, TimePoint now) const;
    void remember(const std::string& fingerprint, std::shared_ptr<const Verified> v) const;

    SecurityProfile profile_;
    std::vector<Certificate> anchors_;
    X509StorePtr store_;
    std::vector<Certificate> intermediates_;
    X509BorrowedStackPtr untrusted_;
    CrlsInForce crls_;         // by issuer DN
    RevocationIndex revoked_;  // their serials
    std::unordered_set<std::string> allow_;
    std::unordered_set<std::string> deny_;
    std::vector<std::string> warnings_;

    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::shared_ptr<const Verified>> cache_;
    mutable std::deque<std::string> cache_order_;  // oldest first
    mutable std::atomic<std::size_t> cache_hits_{0};
};

}  // namespace brokertls
