#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brokertls/crypto/handles.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/names.hpp"
#include "brokertls/crypto/time.hpp"

namespace brokertls {

struct BasicConstraints {
    bool present = false;
    bool critical = false;
    bool ca = false;
    long path_length = -1;  // -1: no limit
};

// An X.509 certificate. Copies share the underlying X509 (reference counted, immutable).
class Certificate {
  public:
    explicit Certificate(X509Ptr cert);
    Certificate(const Certificate& other);
    Certificate& operator=(const Certificate& other);
    Certificate(Certificate&&) noexcept = default;
    Certificate& operator=(Certificate&&) noexcept = default;

    // The first certificate in PEM or DER data; `source` names the data in errors.
    static Certificate parse(std::string_view data, std::string_view source);
    static Certificate load(const std::filesystem::path& path);
    // Every certificate in a PEM bundle (or the one DER certificate); at least one.
    static std::vector<Certificate> parse_chain(std::string_view data, std::string_view source);
    static std::vector<Certificate> load_chain(const std::filesystem::path& path);

    std::string to_pem() const;
    std::string to_der() const;

    std::string subject() const;
    std::string issuer() const;
    // common_name() and subject_alt_names() throw Error(Input) for a name holding a NUL byte
    // (see names.hpp).
    std::string common_name() const;
    std::string serial_hex()
        const;  // uppercase hex in whole octets ("0A1B"), as `openssl x509 -serial`
    std::vector<SubjectAltName> subject_alt_names() const;
    TimePoint not_before() const;
    TimePoint not_after() const;
    bool valid_at(TimePoint t) const { return not_before() <= t && t <= not_after(); }
    // Short names: "serverAuth", "clientAuth", "codeSigning", ...; empty when absent.
    std::vector<std::string> extended_key_usage() const;
    bool has_extended_key_usage() const;
    // "digitalSignature", "keyEncipherment", "keyCertSign", "cRLSign", ...
    std::vector<std::string> key_usage() const;
    BasicConstraints basic_constraints() const;
    bool is_ca() const { return basic_constraints().ca; }
    bool is_self_signed() const;
    std::string fingerprint_sha256() const;  // 64 lowercase hex digits, no separators
    std::string key_algorithm() const;       // "ecdsa-p256", "rsa2048", ...
    bool matches_key(const PrivateKey& key) const;
    // True when `issuer`'s key signed this certificate.
    bool signed_by(const Certificate& issuer) const;

    X509* get() const { return cert_.get(); }

  private:
    X509Ptr cert_;
};

// "ecdsa-p256", "rsa2048", "ed25519", ...; "unknown" for null.
std::string key_algorithm_name(EVP_PKEY* key);
std::string chain_to_pem(const std::vector<Certificate>& chain);

// An extended key usage as Certificate::extended_key_usage() names it: a known purpose's short
// name ("clientAuth"; a dotted OID of one is mapped to it) or the dotted OID of another
// purpose; nullopt when `text` is neither.
std::optional<std::string> canonical_eku_name(std::string_view text);
std::string_view eku_names();  // the known purposes, for error messages

// Accepts "AB:CD:..", "abcd..", with or without "sha256:" prefix; returns 64 lowercase hex digits,
// or nullopt when the text is not a SHA-256 fingerprint.
std::optional<std::string> normalize_fingerprint(std::string_view text);

}  // namespace brokertls
