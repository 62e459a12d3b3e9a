#pragma once
// What validating a client certificate found: the verdict a broker adapter acts on and logs.
// The validation itself (TrustSnapshot) is internal to the plugin.

#include <cstddef>
#include <string>
#include <string_view>

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

}  // namespace brokertls
