#include "brokertls/crypto/crl.hpp"

#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {

namespace {

struct ReasonName {
    RevocationReason reason;
    std::string_view name;
};

constexpr std::array<ReasonName, 8> kReasons{{
    {RevocationReason::Unspecified, "unspecified"},
    {RevocationReason::KeyCompromise, "keyCompromise"},
    {RevocationReason::CaCompromise, "CACompromise"},
    {RevocationReason::AffiliationChanged, "affiliationChanged"},
    {RevocationReason::Superseded, "superseded"},
    {RevocationReason::CessationOfOperation, "cessationOfOperation"},
    {RevocationReason::CertificateHold, "certificateHold"},
    {RevocationReason::PrivilegeWithdrawn, "privilegeWithdrawn"},
}};

std::string serial_to_hex(const ASN1_INTEGER* serial) {
    BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
    char* hex = BN_bn2hex(bn.get());
    std::string out = hex ? hex : "";
    OPENSSL_free(hex);
    return out;
}

}  // namespace

std::optional<RevocationReason> parse_revocation_reason(std::string_view name) {
    // unsigned char: std::tolower of a negative char (a non-ASCII byte) is undefined.
    auto same = [](unsigned char a, unsigned char b) { return std::tolower(a) == std::tolower(b); };
    for (const auto& r : kReasons)
        if (r.name.size() == name.size() &&
            std::equal(name.begin(), name.end(), r.name.begin(), same))
            return r.reason;
    return std::nullopt;
}

std::string_view revocation_reason_name(RevocationReason reason) {
    for (const auto& r : kReasons)
        if (r.reason == reason) return r.name;
    return "unspecified";
}

std::string_view revocation_reason_names() {
    return "unspecified, keyCompromise, CACompromise, affiliationChanged, superseded, "
           "cessationOfOperation, "
           "certificateHold, privilegeWithdrawn";
}

Crl Crl::parse(std::string_view data, std::string_view source) {
    ERR_clear_error();
    BioPtr bio = memory_bio(data);
    X509CrlPtr crl(looks_like_pem(data)
                       ? PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)
                       : d2i_X509_CRL_bio(bio.get(), nullptr));
    ERR_clear_error();
    if (!crl) fail(ErrorKind::Input, source, "not a PEM or DER CRL");
    return Crl(std::move(crl));
}

Crl Crl::load(const std::filesystem::path& path) {
    return parse(read_file(path), path.string());
}

std::string Crl::to_pem() const {
    BioPtr bio = memory_bio();
    if (!PEM_write_bio_X509_CRL(bio.get(), crl_.get()))
        throw Error(ErrorKind::Io, "cannot encode CRL");
    return bio_contents(bio.get());
}

std::string Crl::to_der() const {
    BioPtr bio = memory_bio();
    if (!i2d_X509_CRL_bio(bio.get(), crl_.get())) throw Error(ErrorKind::Io, "cannot encode CRL");
    return bio_contents(bio.get());
}

std::string Crl::issuer() const {
    return name_to_string(X509_CRL_get_issuer(crl_.get()));
}
TimePoint Crl::this_update() const {
    return from_asn1_time(X509_CRL_get0_lastUpdate(crl_.get()));
}

TimePoint Crl::next_update() const {
    const ASN1_TIME* t = X509_CRL_get0_nextUpdate(crl_.get());
    return t ? from_asn1_time(t) : TimePoint::max();
}

long Crl::number() const {
    Asn1IntegerPtr n(static_cast<ASN1_INTEGER*>(
        X509_CRL_get_ext_d2i(crl_.get(), NID_crl_number, nullptr, nullptr)));
    return n ? ASN1_INTEGER_get(n.get()) : -1;
}

std::vector<RevokedCertificate> Crl::revoked() const {
    std::vector<RevokedCertificate> out;
    STACK_OF(X509_REVOKED)* list = X509_CRL_get_REVOKED(crl_.get());
    for (int i = 0; list && i < sk_X509_REVOKED_num(list); ++i) {
        const X509_REVOKED* rev = sk_X509_REVOKED_value(list, i);
        RevokedCertificate entry;
        entry.serial_hex = serial_to_hex(X509_REVOKED_get0_serialNumber(rev));
        entry.revoked_at = from_asn1_time(X509_REVOKED_get0_revocationDate(rev));
        using EnumPtr = std::unique_ptr<ASN1_ENUMERATED, OpenSslDeleter<ASN1_ENUMERATED_free>>;
        EnumPtr reason(static_cast<ASN1_ENUMERATED*>(
            X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, nullptr, nullptr)));
        if (reason) entry.reason = static_cast<RevocationReason>(ASN1_ENUMERATED_get(reason.get()));
        out.push_back(std::move(entry));
    }
    return out;
}

bool crl_supersedes(long number, TimePoint this_update, long other_number,
                    TimePoint other_this_update) {
    if (number >= 0 && other_number >= 0 && number != other_number) return number > other_number;
    return this_update > other_this_update;
}

std::string crl_version_text(long number, TimePoint this_update) {
    return (number >= 0 ? "CRL number " + std::to_string(number) : std::string("no CRL number")) +
           ", thisUpdate " + to_iso8601(this_update);
}

bool Crl::newer_than(const Crl& other) const {
    return crl_supersedes(number(), this_update(), other.number(), other.this_update());
}

std::string Crl::version_text() const {
    return crl_version_text(number(), this_update());
}

bool Crl::signed_by(const Certificate& issuer) const {
    EVP_PKEY* pub = X509_get0_pubkey(issuer.get());
    bool ok = pub && X509_CRL_verify(crl_.get(), pub) == 1;
    ERR_clear_error();
    return ok;
}

}  // namespace brokertls
