#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/handles.hpp"
#include "brokertls/crypto/time.hpp"

namespace brokertls {

// RFC 5280 CRLReason codes we accept by name.
enum class RevocationReason {
    Unspecified = 0,
    KeyCompromise = 1,
    CaCompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    CertificateHold = 6,
    PrivilegeWithdrawn = 9,
};
std::optional<RevocationReason> parse_revocation_reason(std::string_view name);
std::string_view revocation_reason_name(RevocationReason reason);
std::string_view revocation_reason_names();

struct RevokedCertificate {
    std::string serial_hex;  // as Certificate::serial_hex()
    TimePoint revoked_at;
    RevocationReason reason = RevocationReason::Unspecified;
};

// Newest-wins between two CRLs of one issuer, shared by Crl and the trust snapshot's compact
// CRLs: true when (number, this_update) supersedes (other_number, other_this_update), i.e. a
// higher cRLNumber, or, when either has none (-1) or both are equal, a later thisUpdate
// (RFC 5280 5.2.3: numbers increase).
bool crl_supersedes(long number, TimePoint this_update, long other_number,
                    TimePoint other_this_update);
// "CRL number 7, thisUpdate 2026-01-01T00:00:00Z" (for log lines)
std::string crl_version_text(long number, TimePoint this_update);

class Crl {
  public:
    explicit Crl(X509CrlPtr crl) : crl_(std::move(crl)) {}
    static Crl parse(std::string_view data, std::string_view source);
    static Crl load(const std::filesystem::path& path);

    std::string to_pem() const;
    std::string to_der() const;

    std::string issuer() const;
    TimePoint this_update() const;
    TimePoint next_update() const;  // TimePoint::max() when absent
    long number() const;            // the cRLNumber extension, -1 when absent
    std::vector<RevokedCertificate> revoked() const;
    bool signed_by(const Certificate& issuer) const;
    // True when this CRL supersedes `other` of the same issuer: a higher cRLNumber, or, when
    // either has none or both are equal, a later thisUpdate (RFC 5280 5.2.3: numbers increase).
    bool newer_than(const Crl& other) const;
    // "CRL number 7, thisUpdate 2026-01-01T00:00:00Z" (for log lines)
    std::string version_text() const;

    X509_CRL* get() const { return crl_.get(); }

  private:
    X509CrlPtr crl_;
};

}  // namespace brokertls
