#pragma once
// Client certificate validation against a security profile. A TrustSnapshot is built once from
// the profile's files (anchors parsed, CRLs checked and their serials indexed) and is immutable
// afterwards, so the broker thread can validate connections against one snapshot while a
// reload builds the next; the swap is a shared_ptr exchange.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/crl.hpp"
#include "brokertls/crypto/handles.hpp"
#include "brokertls/crypto/time.hpp"
#include "brokertls/trust/security_profile.hpp"

namespace brokertls {

enum class RejectReason {
    None,
    NoCertificate,
    Untrusted,
    Expired,
    NotYetValid,
    Revoked,
    MissingEku,
    CaAsLeaf,
    ChainTooDeep,
    DenyPinned,
    NotAllowPinned,
    NoIdentity,
    BadIdentity,       // a name with a NUL byte, or an identity that identity_problem() refuses
    NameConstraints,   // a cn/subject_dn identity under a CA with nameConstraints
    ClientIdMismatch,  // keep last: kRejectReasons counts up to it
};
inline constexpr std::size_t kRejectReasons =
    static_cast<std::size_t>(RejectReason::ClientIdMismatch) + 1;

std::string_view reject_reason_name(RejectReason reason);  // "expired", "revoked", ...

struct ValidationResult {
    RejectReason reason = RejectReason::None;
    std::string detail;  // words for the log: "certificate has expired (notAfter ...)"
    std::string identity;
    std::string subject;
    std::string fingerprint;
    std::string issuer;
    std::string serial;
    bool ok() const { return reason == RejectReason::None; }
};

// The CRL in force per issuer DN.
using CrlsInForce = std::map<std::string, std::shared_ptr<const Crl>>;

class TrustSnapshot {
  public:
    // Reads and checks every file the profile names; throws Error naming the file and reason.
    // Per CRL issuer the newest CRL wins (higher cRLNumber; with no or equal numbers, the later
    // thisUpdate), among the profile's files and the CRLs `in_force` until now (the previous
    // snapshot's, or those kept across a restart): a stale CRL written over the current one
    // never un-revokes anything (a warning says so). Only issuers the profile names a CRL of
    // are looked up in `in_force`, and each such CRL must still verify against its issuer.
    static std::shared_ptr<const TrustSnapshot> build(const SecurityProfile& profile,
                                                      const CrlsInForce& in_force = {});

    // Validates a leaf (the broker already ran the TLS handshake; `leaf` may be null when the
    // client sent no certificate).
    ValidationResult validate(X509* leaf, std::string_view client_id, TimePoint now) const;
    // The CRL check alone for one certificate (validate() checks every certificate of the
    // chain this way).
    bool is_revoked(const std::string& issuer, const std::string& serial) const;
    // The CRL in force per issuer DN.
    const CrlsInForce& crls() const { return crls_; }

    const SecurityProfile& profile() const { return profile_; }
    const std::vector<Certificate>& anchors() const { return anchors_; }
    const std::vector<Certificate>& intermediates() const { return intermediates_; }
    // Non-fatal findings at build time, e.g. a CRL past its nextUpdate.
    const std::vector<std::string>& warnings() const { return warnings_; }

  private:
    TrustSnapshot() = default;
    std::string map_identity(const Certificate& leaf) const;

    SecurityProfile profile_;
    std::vector<Certificate> anchors_;
    X509StorePtr store_;
    std::vector<Certificate> intermediates_;
    X509BorrowedStackPtr untrusted_;
    CrlsInForce crls_;                         // by issuer DN
    std::unordered_set<std::string> revoked_;  // issuer DN + '/' + serial hex
    std::unordered_set<std::string> allow_;
    std::unordered_set<std::string> deny_;
    std::vector<std::string> warnings_;
};

}  // namespace brokertls
