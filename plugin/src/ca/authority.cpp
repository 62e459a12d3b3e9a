#include "brokertls/ca/authority.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "brokertls/error.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

constexpr auto kBackdate = std::chrono::minutes(1);  // tolerate small clock skew on clients

struct CaFiles {
    explicit CaFiles(const fs::path& dir)
        : root_key(dir / "root.key"),
          root_cert(dir / "root.crt"),
          intermediate_key(dir / "intermediate.key"),
          intermediate_cert(dir / "intermediate.crt"),
          index(dir / "index.jsonl"),
          certs(dir / "certs"),
          crl(dir / "crl.pem"),
          crl_number(dir / "crlnumber"),
          lock(dir / ".lock") {}
    fs::path root_key, root_cert, intermediate_key, intermediate_cert, index, certs, crl,
        crl_number, lock;
};

void check_days(int days) {
    if (days < 1 || days > kMaxDays)
        fail(ErrorKind::Usage, "--days " + std::to_string(days),
             "must be between 1 and " + std::to_string(kMaxDays));
}

PrivateKey load_matching_key(const fs::path& key_path, const Certificate& cert,
                             const fs::path& cert_path, const Passphrase& passphrase) {
    if (!fs::exists(key_path))
        fail(ErrorKind::State, key_path.string(),
             "missing: this command needs the CA key (is it offline?)");
    PrivateKey key = PrivateKey::load(key_path, passphrase);
    if (!cert.matches_key(key))
        fail(ErrorKind::State, key_path.string(),
             "does not match " + cert_path.filename().string());
    return key;
}

// The number the next CRL gets: one more than crlnumber's, 1 when there is none yet.
long next_crl_number(const CaFiles& files) {
    if (!fs::exists(files.crl_number)) return 1;
    std::string text = read_file(files.crl_number);
    try {
        return std::stol(text) + 1;
    } catch (const std::exception&) {
        fail(ErrorKind::State, files.crl_number.string(), "is not a number");
    }
}

void check_name_is_file_stem(const std::string& name) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos)
        fail(ErrorKind::Usage, "'" + name + "'",
             "is not usable as a certificate name (it names the output files)");
}

}  // namespace

std::string_view profile_name(CertificateProfile profile) {
    switch (profile) {
        case CertificateProfile::Client:
            return "client";
        case CertificateProfile::Server:
            return "server";
        case CertificateProfile::IntermediateCa:
            return "intermediate";
        case CertificateProfile::RootCa:
            return "root";
    }
    return "unknown";
}

std::optional<CertificateProfile> parse_leaf_profile(std::string_view name) {
    if (name == "client") return CertificateProfile::Client;
    if (name == "server") return CertificateProfile::Server;
    return std::nullopt;
}

std::string normalize_serial(std::string_view text) {
    if (text.substr(0, 2) == "0x" || text.substr(0, 2) == "0X") text.remove_prefix(2);
    std::string out;
    for (char c : text) {
        if (c == ':') continue;
        if (!std::isxdigit(static_cast<unsigned char>(c))) return "";
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    size_t first = out.find_first_not_of('0');
    if (first == std::string::npos) return out.empty() ? "" : "0";
    out.erase(0, first);
    // Whole octets, as Certificate::serial_hex() (BN_bn2hex) writes them: "0BE6..", not "BE6..".
    if (out.size() % 2 != 0) out.insert(out.begin(), '0');
    return out;
}

void CertificateAuthority::init_root(const fs::path& dir, const CaInitOptions& options) {
    check_days(options.days);
    ensure_directory(dir, 0700);
    CaFiles files(dir);
    DirectoryLock lock(files.lock, DirectoryLock::Mode::Exclusive, kDefaultLockTimeout);
    if (fs::exists(files.root_cert) || fs::exists(files.root_key))
        fail(ErrorKind::State, dir.string(), "already holds a CA (root.crt); choose another --dir");

    PrivateKey key = PrivateKey::generate(options.key_type);
    TimePoint now = Clock::now();
    CertificateSpec spec{CertificateProfile::RootCa,
                         options.name,
                         options.organization,
                         {},
                         now - kBackdate,
                         now + Days(options.days),
                         ""};
    Certificate cert = sign_certificate(spec, key.get(), key, nullptr);

    ensure_directory(files.certs, 0755);
    AtomicBatch batch;
    batch.stage(files.root_key, key.to_pem(options.passphrase), kPrivateMode);
    batch.stage(files.root_cert, cert.to_pem());
    batch.stage(files.index, "");
    batch.commit(Overwrite::Refuse);
}

void CertificateAuthority::add_intermediate(const fs::path& dir, const CaInitOptions& options) {
    check_days(options.days);
    CaFiles files(dir);
    if (!fs::exists(files.root_cert))
        fail(ErrorKind::State, dir.string(), "no CA here (root.crt missing): run init first");
    DirectoryLock lock(files.lock, DirectoryLock::Mode::Exclusive, kDefaultLockTimeout);
    if (fs::exists(files.intermediate_cert) || fs::exists(files.intermediate_key))
        fail(ErrorKind::State, dir.string(), "already has an intermediate (intermediate.crt)");
    Certificate root = Certificate::load(files.root_cert);
    PrivateKey root_key =
        load_matching_key(files.root_key, root, files.root_cert, options.passphrase);

    TimePoint now = Clock::now();
    TimePoint not_after = now + Days(options.days);
    if (not_after > root.not_after())
        fail(ErrorKind::Usage, "--days " + std::to_string(options.days),
             "the intermediate would outlive the root (valid until " +
                 to_iso8601(root.not_after()) + ")");
    PrivateKey key = PrivateKey::generate(options.key_type);
    CertificateSpec spec{CertificateProfile::IntermediateCa,
                         options.name,
                         options.organization,
                         {},
                         now - kBackdate,
                         not_after,
                         ""};
    Certificate cert = sign_certificate(spec, key.get(), root_key, &root);

    AtomicBatch batch;
    batch.stage(files.intermediate_key, key.to_pem(options.passphrase), kPrivateMode);
    batch.stage(files.intermediate_cert, cert.to_pem());
    batch.commit(Overwrite::Refuse);
}

CertificateAuthority::CertificateAuthority(fs::path dir, const Passphrase& passphrase,
                                           bool load_key, DirectoryLock::Mode mode,
                                           std::chrono::milliseconds lock_timeout)
    : dir_(std::move(dir)),
      lock_(
          [&] {
              CaFiles files(dir_);
              if (!fs::is_directory(dir_))
                  fail(ErrorKind::State, dir_.string(),
                       "no such CA directory (run brokertls-ca init)");
              if (!fs::exists(files.root_cert))
                  fail(ErrorKind::State, dir_.string(),
                       "not a brokertls-ca directory (root.crt missing)");
              return files.lock;
          }(),
          mode, lock_timeout),
      root_(Certificate::load(CaFiles(dir_).root_cert)),
      index_(CaFiles(dir_).index) {
    CaFiles files(dir_);
    if (!root_.is_ca() || !root_.is_self_signed())
        fail(ErrorKind::State, files.root_cert.string(), "is not a self-signed CA certificate");
    if (fs::exists(files.intermediate_cert)) {
        intermediate_ = Certificate::load(files.intermediate_cert);
        if (!intermediate_->signed_by(root_))
            fail(ErrorKind::State, files.intermediate_cert.string(), "is not signed by root.crt");
    }
    if (load_key) {
        issuer_key_ = intermediate_
                          ? load_matching_key(files.intermediate_key, *intermediate_,
                                              files.intermediate_cert, passphrase)
                          : load_matching_key(files.root_key, root_, files.root_cert, passphrase);
    }
}

std::vector<Certificate> CertificateAuthority::issuing_chain() const {
    if (intermediate_) return {*intermediate_};
    return {};
}

fs::path CertificateAuthority::cert_path(const std::string& serial) const {
    return CaFiles(dir_).certs / (serial + ".pem");
}

TimePoint CertificateAuthority::leaf_not_after(int days, TimePoint now,
                                               std::optional<std::chrono::seconds> lifetime) const {
    if (lifetime && lifetime->count() <= 0) fail(ErrorKind::Usage, "lifetime", "must be positive");
    if (!lifetime) check_days(days);
    TimePoint not_after = lifetime ? now + *lifetime : now + Days(days);
    if (not_after > issuer().not_after())
        fail(ErrorKind::Usage,
             lifetime ? "lifetime " + std::to_string(lifetime->count()) + " s"
                      : "--days " + std::to_string(days),
             "the certificate would outlive its issuing CA (valid until " +
                 to_iso8601(issuer().not_after()) + ")");
    return not_after;
}

IndexEntry CertificateAuthority::record(const Certificate& cert, const std::string& name,
                                        std::string_view profile) const {
    IndexEntry e;
    e.serial = cert.serial_hex();
    e.name = name;
    e.subject = cert.subject();
    for (const auto& san : cert.subject_alt_names()) e.subject_alt_names.push_back(san.to_string());
    e.profile = profile;
    e.key_type = cert.key_algorithm();
    e.not_before = cert.not_before();
    e.not_after = cert.not_after();
    e.fingerprint = cert.fingerprint_sha256();
    return e;
}

std::vector<IssuedFiles> CertificateAuthority::issue(const std::vector<LeafRequest>& requests,
                                                     const fs::path& out_dir, Overwrite overwrite) {
    if (!issuer_key_) throw Error(ErrorKind::State, "the CA was opened without its key");
    TimePoint now = Clock::now();
    // Check everything before changing anything: a bad request leaves the CA untouched.
    std::set<std::string> seen;
    auto stem_of = [](const LeafRequest& r) { return r.file_stem.empty() ? r.name : r.file_stem; };
    for (const auto& r : requests) {
        check_name_is_file_stem(stem_of(r));
        if (r.name.empty()) fail(ErrorKind::Usage, "issue", "a certificate needs a name");
        if (!seen.insert(stem_of(r)).second)
            fail(ErrorKind::Usage, r.name, "named twice in one command");
        leaf_not_after(r.days, now, r.lifetime);
        if (r.profile == CertificateProfile::Server && r.subject_alt_names.empty())
            fail(ErrorKind::Usage, r.name, "a server certificate needs at least one name");
        for (const char* ext : {".key", ".crt", ".chain.pem"})
            if (overwrite == Overwrite::Refuse && fs::exists(out_dir / (stem_of(r) + ext)))
                fail(ErrorKind::State, (out_dir / (stem_of(r) + ext)).string(),
                     "already exists (use --force to overwrite)");
    }
    ensure_directory(out_dir);

    std::string chain_tail = chain_to_pem(issuing_chain());
    std::vector<IssuedFiles> issued;
    issued.reserve(requests.size());
    AtomicBatch batch;
    for (const auto& r : requests) {
        PrivateKey key = PrivateKey::generate(r.key_type);
        CertificateSpec spec{r.profile,
                             r.name,
                             "",
                             r.subject_alt_names,
                             now - kBackdate,
                             leaf_not_after(r.days, now, r.lifetime),
                             ""};
        Certificate cert = sign_certificate(spec, key.get(), *issuer_key_, &issuer());
        std::string stem = stem_of(r);
        IssuedFiles files{record(cert, r.name, profile_name(r.profile)), out_dir / (stem + ".key"),
                          out_dir / (stem + ".crt"), out_dir / (stem + ".chain.pem")};
        std::string cert_pem = cert.to_pem();
        batch.stage(files.key, key.to_pem(), kPrivateMode);
        batch.stage(files.cert, cert_pem);
        batch.stage(files.chain, cert_pem + chain_tail);
        batch.stage(cert_path(files.entry.serial), cert_pem);
        issued.push_back(std::move(files));
    }
    batch.commit(overwrite);
    std::vector<IndexEntry> entries;
    for (const auto& f : issued) entries.push_back(f.entry);
    index_.append_issued(entries);
    return issued;
}

IndexEntry CertificateAuthority::sign(const CertificateRequest& csr, std::string_view csr_source,
                                      CertificateProfile profile, int days,
                                      const std::vector<std::string>& allow, const fs::path& out,
                                      Overwrite overwrite) {
    if (!issuer_key_) throw Error(ErrorKind::State, "the CA was opened without its key");
    csr.verify_signature(csr_source);
    if (allow.empty())
        fail(ErrorKind::Usage, "sign",
             "needs at least one --allow GLOB naming the names a CSR may carry");
    std::string cn = csr.common_name();
    std::vector<SubjectAltName> sans = csr.subject_alt_names();
    if (cn.empty() && sans.empty())
        fail(ErrorKind::Input, csr_source, "names nothing (no CN and no subjectAltName)");
    auto allowed = [&](const std::string& name) {
        return std::any_of(allow.begin(), allow.end(),
                           [&](const std::string& g) { return glob_match(g, name); });
    };
    if (!cn.empty() && !allowed(cn))
        fail(ErrorKind::Input, csr_source, "CN '" + cn + "' is not allowed by --allow");
    for (const auto& san : sans) {
        if (san.type == SubjectAltName::Type::Other || !allowed(san.value))
            fail(ErrorKind::Input, csr_source,
                 "name " + san.to_string() + " is not allowed by --allow");
    }
    if (profile == CertificateProfile::Server && sans.empty()) {
        // Clients match server names against SANs only (RFC 6125), so the CN becomes one.
        sans.push_back(classify_name(cn));
    }
    fs::path chain_path = fs::path(out).replace_extension(".chain.pem");
    if (overwrite == Overwrite::Refuse)
        for (const auto& p : {out, chain_path})
            if (fs::exists(p))
                fail(ErrorKind::State, p.string(), "already exists (use --force to overwrite)");

    TimePoint now = Clock::now();
    CertificateSpec spec{profile, cn, "", sans, now - kBackdate, leaf_not_after(days, now), ""};
    Certificate cert = sign_certificate(spec, csr.public_key(), *issuer_key_, &issuer());
    IndexEntry entry = record(cert, cn.empty() ? sans.front().value : cn, profile_name(profile));
    std::string cert_pem = cert.to_pem();
    AtomicBatch batch;
    batch.stage(out, cert_pem);
    batch.stage(chain_path, cert_pem + chain_to_pem(issuing_chain()));
    batch.stage(cert_path(entry.serial), cert_pem);
    batch.commit(overwrite);
    index_.append_issued({entry});
    return entry;
}

std::optional<IndexEntry> CertificateAuthority::find(const std::string& serial) const {
    std::string wanted = normalize_serial(serial);
    for (auto& e : index_.read())
        if (e.serial == wanted) return e;
    return std::nullopt;
}

IndexEntry CertificateAuthority::revoke(const std::string& serial_or_file, RevocationReason reason,
                                        int crl_days) {
    if (!issuer_key_) throw Error(ErrorKind::State, "the CA was opened without its key");
    check_days(crl_days);
    std::string serial = normalize_serial(serial_or_file);
    std::optional<Certificate> given;
    if (fs::is_regular_file(serial_or_file) || serial.empty()) {
        given = Certificate::load(serial_or_file);
        serial = given->serial_hex();
    }
    // One replay of the index serves both the lookup and the new CRL.
    std::vector<IndexEntry> entries = index_.read();
    auto entry = std::find_if(entries.begin(), entries.end(),
                              [&](const IndexEntry& e) { return e.serial == serial; });
    if (entry == entries.end() || (given && given->fingerprint_sha256() != entry->fingerprint))
        fail(ErrorKind::State, "serial " + serial, "was not issued by this CA");
    if (entry->revoked_at)
        fail(ErrorKind::State, "serial " + serial,
             "already revoked on " + to_iso8601(*entry->revoked_at) + " (" +
                 std::string(revocation_reason_name(entry->reason)) + ")");
    next_crl_number(CaFiles(dir_));  // fail on a corrupt crlnumber before changing the index
    TimePoint now = Clock::now();
    index_.append_revocation(serial, now, reason);
    entry->revoked_at = now;
    entry->reason = reason;
    write_crl_from(entries, crl_days);
    return *entry;
}

Crl CertificateAuthority::write_crl(int days) {
    return write_crl_from(index_.read(), days);
}

Crl CertificateAuthority::write_crl_from(const std::vector<IndexEntry>& entries, int days) {
    if (!issuer_key_) throw Error(ErrorKind::State, "the CA was opened without its key");
    check_days(days);
    CaFiles files(dir_);
    std::vector<RevokedCertificate> revoked;
    for (const auto& e : entries)
        if (e.revoked_at) revoked.push_back({e.serial, *e.revoked_at, e.reason});
    long number = next_crl_number(files);
    TimePoint now = Clock::now();
    Crl crl = sign_crl(issuer(), *issuer_key_, revoked, now - kBackdate, now + Days(days), number);
    write_file_atomic(files.crl, crl.to_pem());
    write_file_atomic(files.crl_number, std::to_string(number) + "\n");
    return crl;
}

VerifyResult CertificateAuthority::verify(const std::vector<Certificate>& chain) const {
    VerifyResult result;
    if (chain.empty()) {
        result.reason = "no certificate";
        return result;
    }
    const Certificate& leaf = chain.front();
    X509StorePtr store(X509_STORE_new());
    X509_STORE_add_cert(store.get(), root_.get());
    using StackPtr =
        std::unique_ptr<STACK_OF(X509), decltype([](STACK_OF(X509) * s) { sk_X509_free(s); })>;
    StackPtr untrusted(sk_X509_new_null());
    if (intermediate_) sk_X509_push(untrusted.get(), intermediate_->get());
    for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].get());
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), untrusted.get());
    std::vector<std::string> eku = leaf.extended_key_usage();
    if (std::find(eku.begin(), eku.end(), "clientAuth") != eku.end())
        X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
    else if (std::find(eku.begin(), eku.end(), "serverAuth") != eku.end())
        X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(ctx.get()) != 1) {
        result.reason = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
        ERR_clear_error();
        return result;
    }
    result.entry = find(leaf.serial_hex());
    if (!result.entry || result.entry->fingerprint != leaf.fingerprint_sha256()) {
        result.entry.reset();
        result.reason = "chains to this CA but is not in its index";
        return result;
    }
    if (result.entry->revoked_at) {
        result.reason = "revoked on " + to_iso8601(*result.entry->revoked_at) + " (" +
                        std::string(revocation_reason_name(result.entry->reason)) + ")";
        return result;
    }
    result.ok = true;
    return result;
}

}  // namespace brokertls
