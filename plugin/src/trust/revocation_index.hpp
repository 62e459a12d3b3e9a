#pragma once
// CRLs at scale (issue #9: a 1,000,000-entry CRL). OpenSSL's parsed X509_CRL costs a few
// hundred bytes per revoked entry, and a hash set of "issuer/serial" strings as much again, so
// a trust snapshot keeps neither: a CrlInForce is the CRL's DER bytes plus the few fields the
// newest-wins rule needs, and a RevocationIndex holds per issuer the revoked serials as one
// sorted array of fixed-width binary records (about 20 bytes per entry, binary search).

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/time.hpp"

namespace brokertls {

struct CrlInForceBufferFree {
    void operator()(unsigned char* p) const noexcept;  // OPENSSL_free
};

// One CRL as a trust snapshot keeps it (and STATE_DIR/crls/ keeps it across restarts).
class CrlInForce {
  public:
    // A PEM or DER CRL; throws Error{Input} naming `source` when it is not one.
    static CrlInForce parse(std::string_view data, std::string_view source);
    static CrlInForce load(const std::filesystem::path& path);

    const std::string& issuer() const { return issuer_; }
    TimePoint this_update() const { return this_update_; }
    TimePoint next_update() const { return next_update_; }  // TimePoint::max() when absent
    long number() const { return number_; }  // the cRLNumber extension, -1 when absent
    std::size_t revoked_count() const { return revoked_count_; }
    // As Crl::newer_than and Crl::version_text.
    bool newer_than(const CrlInForce& other) const;
    std::string version_text() const;
    // The signature verifies against `issuer`'s key (as X509_CRL_verify).
    bool signed_by(const Certificate& issuer) const;
    std::string to_pem() const;
    std::string_view der() const { return {reinterpret_cast<const char*>(der_.get()), der_size_}; }

  private:
    friend class RevocationIndex;
    CrlInForce() = default;
    static CrlInForce from_buffer(std::unique_ptr<unsigned char, CrlInForceBufferFree> buffer,
                                  std::size_t size, std::string_view source);
    static CrlInForce parse_der(CrlInForce crl, std::string_view source);

    // The file's bytes, a PEM body decoded in place: no second copy of a large CRL.
    std::unique_ptr<unsigned char, CrlInForceBufferFree> der_;
    std::size_t der_size_ = 0;
    std::string issuer_;
    TimePoint this_update_{};
    TimePoint next_update_ = TimePoint::max();
    long number_ = -1;
    std::size_t revoked_count_ = 0;
    // Where the parts are in der_: tbsCertList (whole TLV), its signature AlgorithmIdentifier,
    // the revokedCertificates contents (empty when absent), the outer signatureAlgorithm and
    // signatureValue.
    struct Span {
        std::size_t offset = 0, length = 0;
    };
    Span tbs_, inner_alg_, revoked_, outer_alg_, signature_;
};

// The revoked serials of every issuer's CRL in force. Immutable once built.
class RevocationIndex {
  public:
    // Indexes the serials of `crl` (replacing any CRL of the same issuer added before).
    void add(const CrlInForce& crl);
    // True when `serial` is on the CRL of `issuer` (a DN as name_to_string() writes it).
    bool contains(std::string_view issuer, const ASN1_INTEGER* serial) const;
    // The same for a serial in hex as Certificate::serial_hex() writes it (leading zeros and
    // case do not matter; a leading '-' is a negative serial).
    bool contains(std::string_view issuer, std::string_view serial_hex) const;
    std::size_t size() const;          // revoked entries over all issuers
    std::size_t memory_bytes() const;  // the records' heap bytes

  private:
    struct Serials {
        std::size_t width = 1;               // bytes per record: sign, then the magnitude
        std::vector<unsigned char> records;  // sorted, width bytes each
    };
    static bool find(const Serials& s, const ASN1_INTEGER* serial);
    std::map<std::string, Serials, std::less<>> by_issuer_;
};

}  // namespace brokertls
