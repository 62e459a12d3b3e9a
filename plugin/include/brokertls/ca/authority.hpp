#pragma once
// A CA kept in one directory, with the bookkeeping of `openssl ca`:
//   root.key root.crt                 the root (its key may be taken offline once an
//   intermediate.key intermediate.crt intermediate exists: then the intermediate issues)
//   index.jsonl                       every certificate issued and revoked (see index.hpp)
//   certs/SERIAL.pem                  a copy of every certificate issued
//   crl.pem crlnumber                 the newest CRL and its number
//   .lock                             serialises commands
//   .pending                          only while a command changes the CA: what to finish or
//                                     undo if it dies (see recover())
// Every command holds the lock for its whole run, and checks that the issuing key matches its
// certificate before it signs anything. A certificate is recorded in index.jsonl (durably)
// before any of its bytes reach a file, so the CA can always revoke what it signed.

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "brokertls/ca/index.hpp"
#include "brokertls/ca/lock.hpp"
#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {

inline constexpr int kDefaultLeafDays = 397;
inline constexpr int kDefaultRootDays = 3650;
inline constexpr int kDefaultIntermediateDays = 1825;
inline constexpr int kMaxDays = 36500;
inline constexpr int kDefaultCrlDays = 30;
inline constexpr std::chrono::seconds kDefaultLockTimeout{60};
// A certificate name becomes file names (NAME.chain.pem, and a temporary ".NAME.chain.pem.tmp-
// PID-RANDOM" beside it), which must fit the 255 bytes a file name may have.
inline constexpr size_t kMaxFileStem = 200;

struct CaInitOptions {
    std::string name = "brokertls CA";
    std::string organization;
    KeyType key_type = KeyType::EcP256;
    int days = kDefaultRootDays;
    Passphrase passphrase;  // protects the new key (and unlocks the root for an intermediate)
};

struct LeafRequest {
    CertificateProfile profile = CertificateProfile::Client;
    std::string name;       // the CN
    std::string file_stem;  // output files STEM.key/.crt/.chain.pem; empty: the name
    std::vector<SubjectAltName> subject_alt_names;
    int days = kDefaultLeafDays;
    KeyType key_type = KeyType::EcP256;
    // Overrides `days` to the second: short-lived certificates renewed by a local-ca profile.
    std::optional<std::chrono::seconds> lifetime = std::nullopt;
    // Client names must be usable as broker identities (identity_problem()); this opts in to '/'.
    IdentityRules identity_rules = {};
};

// Hooks for a long batch: progress after each certificate, and a stop request polled between
// certificates (a signal). A stopped batch issues nothing.
struct BatchHooks {
    std::function<void(size_t done, size_t total)> progress;
    std::function<bool()> stop_requested;
};

struct IssuedFiles {
    IndexEntry entry;
    std::filesystem::path key, cert, chain;
};

// verify()'s verdict: `problem` is why the chain is not a valid certificate of this CA (nullopt
// when it is); `entry` is its index entry when it is in the index.
struct VerifyResult {
    Problem problem = "not verified";  // fail closed: a result nobody filled in is not ok
    std::optional<IndexEntry> entry;
    bool ok() const { return !problem; }
};

// The time is the caller's (only the brokertls-ca command line reads the system clock), so a
// test can pin it: `now` is when a certificate's validity starts (backdated a minute), when a
// revocation happened, when a CRL was issued, and when verify() judges a chain.
class CertificateAuthority {
  public:
    // Creates root.key/root.crt in a new (or empty) directory.
    static void init_root(const std::filesystem::path& dir, const CaInitOptions& options,
                          TimePoint now);
    // Creates intermediate.key/intermediate.crt signed by the root; leaves are then issued by it.
    static void add_intermediate(const std::filesystem::path& dir, const CaInitOptions& options,
                                 TimePoint now);

    // Opens the CA under its lock for one command run at `now` (also the time of the recovery
    // of an interrupted command done here). With `load_key` false, nothing needs the passphrase
    // (list, show, verify).
    CertificateAuthority(std::filesystem::path dir, const Passphrase& passphrase, bool load_key,
                         DirectoryLock::Mode mode, TimePoint now,
                         std::chrono::milliseconds lock_timeout = kDefaultLockTimeout);

    // Issues keys and certificates for every request in one batch: one lock, one index append,
    // one filesystem sync. Either every file is written and indexed, or nothing changes.
    std::vector<IssuedFiles> issue(const std::vector<LeafRequest>& requests,
                                   const std::filesystem::path& out_dir, Overwrite overwrite,
                                   const BatchHooks& hooks = {});
    // Signs a CSR after checking its signature, its key (RSA >= 2048 bits, EC P-256/P-384 or
    // Ed25519), that every name matches an `allow` glob and, for clients, that the CN is a
    // usable identity. Only the names come from the CSR; the profile decides every extension.
    IndexEntry sign(const CertificateRequest& csr, std::string_view csr_source,
                    CertificateProfile profile, int days, const std::vector<std::string>& allow,
                    const std::filesystem::path& out, Overwrite overwrite,
                    IdentityRules identity_rules = {});
    // Signs CSRs the caller has checked (brokertls-service: signature, key, names against its
    // own rules): one lock, one index append and one sync for the whole batch, the signing
    // spread over the cores. The certificates are returned (and copied to certs/ as always),
    // not written anywhere else. The profile decides every extension.
    struct CheckedCsr {
        const CertificateRequest* csr;
        CertificateProfile profile = CertificateProfile::Client;
        std::string common_name;
        std::vector<SubjectAltName> subject_alt_names;
        std::chrono::seconds lifetime{0};
    };
    std::vector<Certificate> sign_checked(const std::vector<CheckedCsr>& requests);
    // Records the revocation and writes a fresh crl.pem valid for `crl_days`.
    IndexEntry revoke(const std::string& serial_or_file, RevocationReason reason,
                      int crl_days = kDefaultCrlDays);
    // Writes crl.pem (and a copy to `copy` when given) in one step: if any of them cannot be
    // written, neither crl.pem nor crlnumber changes.
    Crl write_crl(int days, const std::optional<std::filesystem::path>& copy = std::nullopt);

    // Things an operator should know that do not stop the command: a CA key others may read,
    // work finished for an interrupted command. One line each.
    const std::vector<std::string>& warnings() const { return warnings_; }

    std::vector<IndexEntry> list() const { return index_.read(); }
    std::optional<IndexEntry> find(const std::string& serial) const;
    VerifyResult verify(const std::vector<Certificate>& chain) const;

    const Certificate& root() const { return root_; }
    const Certificate& issuer() const { return intermediate_ ? *intermediate_ : root_; }
    // The certificates above a leaf, nearest first: [intermediate] (never the root).
    std::vector<Certificate> issuing_chain() const;
    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path cert_path(const std::string& serial) const;

  private:
    struct Signed;
    std::vector<IndexEntry> issue_batch(size_t count, const std::function<Signed(size_t)>& make,
                                        const std::vector<std::filesystem::path>& out_dirs,
                                        Overwrite overwrite, const BatchHooks& hooks);
    void recover();
    Crl write_crl_from(const std::vector<IndexEntry>& entries, int days,
                       const std::optional<std::filesystem::path>& copy = std::nullopt);
    TimePoint leaf_not_after(int days, TimePoint now,
                             std::optional<std::chrono::seconds> lifetime = std::nullopt) const;
    IndexEntry record(const Certificate& cert, const std::string& name,
                      std::string_view profile) const;

    std::filesystem::path dir_;
    TimePoint now_;
    DirectoryLock lock_;
    Certificate root_;
    std::optional<Certificate> intermediate_;
    std::optional<PrivateKey> issuer_key_;
    CertificateIndex index_;
    std::vector<std::string> warnings_;
};

// Throws Error(Usage) naming `name` when it cannot be the stem of output files: empty, ".",
// "..", a '/' or NUL in it, or longer than kMaxFileStem bytes.
void check_file_stem(const std::string& name);

std::string_view profile_name(CertificateProfile profile);
std::optional<CertificateProfile> parse_leaf_profile(std::string_view name);

// Normalises a serial typed by a person ("0a:1B..", "0x0A1B", "A1B") to the index's uppercase
// hex in whole octets, as Certificate::serial_hex() writes it ("0A1B"); nullopt when the text
// is not a serial (no hex digits, or another character than hex digits and ':').
std::optional<std::string> normalize_serial(std::string_view text);

}  // namespace brokertls
