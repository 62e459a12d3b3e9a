#include "brokertls/ca/authority.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "brokertls/error.hpp"
#include "threads.hpp"

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
          lock(dir / ".lock"),
          pending(dir / ".pending") {}
    fs::path root_key, root_cert, intermediate_key, intermediate_cert, index, certs, crl,
        crl_number, lock, pending;
};

// What a command that changes the CA is doing, kept in .pending while it runs so that the next
// command can finish or undo the work of one that died (SIGKILL, power loss):
//   issue, phase "staging": certificates may be in the index but none is placed: undo (cut the
//          index back to index_size, remove the temporary files in `dirs`);
//   issue, phase "committing": every file is durable in its temporary file: finish placing
//          the certs/ copies (the outputs are the user's to re-issue);
//   revoke: the revocation line may be in the index: write the CRL from the index.
struct Pending {
    std::string command;
    std::string phase;
    std::uintmax_t index_size = 0;
    std::vector<fs::path> dirs;
    int crl_days = kDefaultCrlDays;
    long pid = ::getpid();
};

void write_pending(const CaFiles& files, const Pending& p) {
    nlohmann::json dirs = nlohmann::json::array();
    for (const auto& d : p.dirs) dirs.push_back(d.string());
    nlohmann::json j{{"command", p.command}, {"phase", p.phase},       {"index_size", p.index_size},
                     {"dirs", dirs},         {"crl_days", p.crl_days}, {"pid", p.pid}};
    write_file_atomic(files.pending, j.dump() + "\n", kPrivateMode);
}

Pending read_pending(const CaFiles& files) {
    Pending p;
    try {
        auto j = nlohmann::json::parse(read_file(files.pending));
        p.command = j.at("command").get<std::string>();
        p.phase = j.at("phase").get<std::string>();
        p.index_size = j.at("index_size").get<std::uintmax_t>();
        for (const auto& d : j.at("dirs")) p.dirs.emplace_back(d.get<std::string>());
        p.crl_days = j.at("crl_days").get<int>();
        p.pid = j.at("pid").get<long>();
    } catch (const nlohmann::json::exception& e) {
        fail(ErrorKind::State, files.pending.string(),
             std::string("corrupt (") + e.what() +
                 "): check index.jsonl and certs/ agree, then remove it");
    }
    return p;
}

void clear_pending(const CaFiles& files) {
    if (::unlink(files.pending.c_str()) != 0 && errno != ENOENT)
        fail(ErrorKind::Io, files.pending.string(),
             std::string("cannot remove: ") + std::strerror(errno));
    sync_directory(files.pending.parent_path());
}

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

// A CA key others can read is the CA others can use; worth a warning on every command.
void warn_if_readable(const fs::path& key, std::vector<std::string>& warnings) {
    struct stat st {};
    if (::stat(key.c_str(), &st) != 0 || (st.st_mode & 077) == 0) return;
    warnings.push_back(key.string() + ": mode " + octal_mode(st.st_mode) +
                       " lets group or others read the CA key (chmod 600 " + key.string() + ")");
}

size_t count_certificate_copies(const fs::path& certs) {
    std::error_code ec;
    size_t n = 0;
    for (fs::directory_iterator it(certs, ec), end; !ec && it != end; it.increment(ec))
        if (it->path().extension() == ".pem" && it->path().filename().string()[0] != '.') ++n;
    return n;
}

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

constexpr size_t kMaxCommonName = 64;  // RFC 5280 ub-common-name, in characters

size_t utf8_length(std::string_view text) {
    return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

// Why `name` cannot be a client identity, in words for the error; nullopt when it can.
Problem client_name_problem(const std::string& name, IdentityRules rules) {
    auto problem = identity_problem(name, rules);
    if (!problem) return std::nullopt;
    std::string reason = "is not usable as a client identity: " + *problem;
    if (!rules.allow_slash && !identity_problem(name, IdentityRules{true}))
        reason += " (brokertls-ca --allow-slash permits '/')";
    return reason;
}

}  // namespace

void check_file_stem(const std::string& name) {
    if (name.size() > kMaxFileStem)
        fail(ErrorKind::Usage, "'" + printable(name.substr(0, 40)) + "...'",
             "too long for a certificate name (" + std::to_string(name.size()) +
                 " bytes, at most " + std::to_string(kMaxFileStem) +
                 ": it names the output files)");
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos)
        fail(ErrorKind::Usage, "'" + printable(name) + "'",
             "is not usable as a certificate name (it names the output files)");
}

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

std::optional<std::string> normalize_serial(std::string_view text) {
    if (text.substr(0, 2) == "0x" || text.substr(0, 2) == "0X") text.remove_prefix(2);
    std::string out;
    for (char c : text) {
        if (c == ':') continue;
        if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    size_t first = out.find_first_not_of('0');
    if (out.empty()) return std::nullopt;
    if (first == std::string::npos) return "0";
    out.erase(0, first);
    // Whole octets, as Certificate::serial_hex() (BN_bn2hex) writes them: "0BE6..", not "BE6..".
    if (out.size() % 2 != 0) out.insert(out.begin(), '0');
    return out;
}

void CertificateAuthority::init_root(const fs::path& dir, const CaInitOptions& options,
                                     TimePoint now) {
    check_days(options.days);
    ensure_directory(dir, 0700);
    CaFiles files(dir);
    DirectoryLock lock(files.lock, DirectoryLock::Mode::Exclusive, kDefaultLockTimeout);
    if (fs::exists(files.root_cert) || fs::exists(files.root_key))
        fail(ErrorKind::State, dir.string(), "already holds a CA (root.crt); choose another --dir");

    PrivateKey key = PrivateKey::generate(options.key_type);
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

void CertificateAuthority::add_intermediate(const fs::path& dir, const CaInitOptions& options,
                                            TimePoint now) {
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
                                           bool load_key, DirectoryLock::Mode mode, TimePoint now,
                                           std::chrono::milliseconds lock_timeout)
    : dir_(std::move(dir)),
      now_(now),
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
    warn_if_readable(files.root_key, warnings_);
    warn_if_readable(files.intermediate_key, warnings_);
    // Without the index every certificate looks unrevoked: an empty CRL would un-revoke them
    // all, and a new index would start from nothing. init creates it, so its absence is damage.
    std::error_code ec;
    if (!fs::exists(files.index, ec) && !fs::is_symlink(files.index, ec)) {
        if (size_t n = count_certificate_copies(files.certs))
            fail(ErrorKind::State, files.index.string(),
                 "missing, but certs/ holds " + std::to_string(n) +
                     (n == 1 ? " certificate" : " certificates") +
                     ": restore it from a backup (crl.pem lists what was revoked); an empty "
                     "index would un-revoke every certificate in the next CRL");
    }
    if (load_key) {
        issuer_key_ = intermediate_
                          ? load_matching_key(files.intermediate_key, *intermediate_,
                                              files.intermediate_cert, passphrase)
                          : load_matching_key(files.root_key, root_, files.root_cert, passphrase);
    }
    if (mode == DirectoryLock::Mode::Exclusive && issuer_key_) {
        recover();
    } else if (fs::exists(files.pending, ec)) {
        warnings_.push_back(files.pending.string() +
                            ": a command that changed the CA was interrupted; the next command "
                            "that changes it (e.g. brokertls-ca crl) finishes or undoes its work");
    }
}

// Runs with the exclusive lock held, so whoever wrote .pending or a temporary file here is gone.
void CertificateAuthority::recover() {
    CaFiles files(dir_);
    size_t removed = remove_stale_temp_files(dir_);
    std::error_code ec;
    if (!fs::exists(files.pending, ec)) {
        if (removed)
            warnings_.push_back("removed " + std::to_string(removed) +
                                " temporary file(s) an interrupted command left in " +
                                dir_.string());
        return;
    }
    Pending p = read_pending(files);
    std::string done;
    if (p.command == "issue" && p.phase == "staging") {
        // Nothing was placed: cut off what it recorded, as if it had never run.
        if (fs::file_size(files.index, ec) > p.index_size && !ec) index_.truncate(p.index_size);
        done = "undone, nothing was issued";
    } else if (p.command == "issue") {
        // Every temporary file is complete and durable: place the certs/ copies still missing.
        std::set<std::string> missing;
        for (const auto& e : index_.read())
            if (!fs::exists(cert_path(e.serial), ec)) missing.insert(e.serial);
        size_t placed = 0;
        for (fs::directory_iterator it(files.certs, ec), end; !ec && it != end; it.increment(ec)) {
            auto target = temp_file_target(it->path().filename().string());
            if (!target || fs::path(*target).extension() != ".pem") continue;
            std::string serial = fs::path(*target).stem().string();
            if (!missing.count(serial)) continue;
            Certificate c = Certificate::parse(read_file(it->path()), it->path().string());
            if (c.serial_hex() != serial) continue;
            if (::link(it->path().c_str(), cert_path(serial).c_str()) == 0) {
                missing.erase(serial);
                ++placed;
            }
        }
        sync_directory(files.certs);
        done = "finished, " + std::to_string(placed) + " certificate copies placed in certs/";
        if (!missing.empty())
            warnings_.push_back(
                files.index.string() + ": " + std::to_string(missing.size()) +
                " certificate(s) have no copy in certs/ (first: " + *missing.begin() + ")");
    } else if (p.command == "revoke") {
        write_crl_from(index_.read(), p.crl_days);
        done = "finished, crl.pem rewritten from the index";
    }
    for (const auto& d : p.dirs) removed += remove_stale_temp_files(d);
    removed += remove_stale_temp_files(files.certs);
    clear_pending(files);
    warnings_.push_back("an interrupted `" + p.command + "` (pid " + std::to_string(p.pid) +
                        ") was " + done + "; " + std::to_string(removed) +
                        " temporary file(s) removed");
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

// One certificate of a batch: its index entry and every file it goes to.
struct CertificateAuthority::Signed {
    IndexEntry entry;
    std::string cert_pem;
    struct Output {
        fs::path path;
        std::string data;
        mode_t mode;
    };
    std::vector<Output> outputs;
};

// The protocol every issuing command follows (see the README, "The CA directory"):
//   1. .pending {issue, staging}: if we die from here on, the next command undoes everything;
//   2. per chunk: sign, append the entries to the index (fsync), then stage temporary files;
//      nothing of a certificate reaches a file before its index entry is durable;
//   3. sync every temporary file, .pending {issue, committing}: from here on, finish instead;
//   4. place the certs/ copies, then the outputs; remove .pending.
// A failure (not a crash) undoes all of it: the index is cut back, the temporary files go.
std::vector<IndexEntry> CertificateAuthority::issue_batch(size_t count,
                                                          const std::function<Signed(size_t)>& make,
                                                          const std::vector<fs::path>& out_dirs,
                                                          Overwrite overwrite,
                                                          const BatchHooks& hooks) {
    constexpr size_t kChunk = 256;  // bounds memory; one index fsync per chunk
    CaFiles files(dir_);
    std::uintmax_t index_size = index_.prepare_append();  // fails early on an unwritable index
    std::vector<IndexEntry> entries;
    entries.reserve(count);
    std::vector<fs::path> created_dirs, placed_copies;
    bool undoable = true;
    try {
        for (const auto& d : out_dirs) {
            if (fs::is_directory(d)) continue;
            ensure_directory(d);
            created_dirs.push_back(d);
        }
        Pending pending{"issue", "staging", index_size, out_dirs};
        pending.dirs.push_back(files.certs);
        write_pending(files, pending);
        AtomicBatch copies, outputs;
        for (size_t first = 0; first < count; first += kChunk) {
            std::vector<Signed> chunk;
            for (size_t i = first; i < std::min(count, first + kChunk); ++i) {
                if (hooks.stop_requested && hooks.stop_requested())
                    fail(ErrorKind::State, "issue",
                         "stopped after signing " + std::to_string(i) + " of " +
                             std::to_string(count) + " certificates: nothing was issued");
                chunk.push_back(make(i));
            }
            std::vector<IndexEntry> chunk_entries;
            for (const auto& c : chunk) chunk_entries.push_back(c.entry);
            index_.append_issued(chunk_entries);
            for (auto& c : chunk) {
                copies.stage(cert_path(c.entry.serial), c.cert_pem);
                for (const auto& o : c.outputs) outputs.stage(o.path, o.data, o.mode);
                entries.push_back(std::move(c.entry));
                if (hooks.progress) hooks.progress(entries.size(), count);
            }
        }
        if (hooks.stop_requested && hooks.stop_requested())
            fail(ErrorKind::State, "issue",
                 "stopped before committing " + std::to_string(count) +
                     " certificates: nothing was issued");
        copies.sync();
        outputs.sync();
        pending.phase = "committing";
        write_pending(files, pending);
        copies.commit(Overwrite::Refuse);
        for (const auto& e : entries) placed_copies.push_back(cert_path(e.serial));
        // Replaced outputs cannot be put back: once they may be delivered, keep their record.
        undoable = overwrite == Overwrite::Refuse;
        outputs.commit(overwrite);
    } catch (...) {
        // The batches are gone by now (their temporary files with them).
        if (undoable) {
            for (const auto& p : placed_copies) ::unlink(p.c_str());
            index_.truncate(index_size);  // throws, keeping .pending, if it cannot
            std::error_code ec;
            for (const auto& d : created_dirs) fs::remove(d, ec);  // only while empty
        }
        clear_pending(files);
        throw;
    }
    clear_pending(files);
    return entries;
}

std::vector<IssuedFiles> CertificateAuthority::issue(const std::vector<LeafRequest>& requests,
                                                     const fs::path& out_dir, Overwrite overwrite,
                                                     const BatchHooks& hooks) {
    if (!issuer_key_) throw Error(ErrorKind::State, "the CA was opened without its key");
    // Check everything before changing anything: a bad request leaves the CA untouched.
    std::set<std::string> seen;
    auto stem_of = [](const LeafRequest& r) { return r.file_stem.empty() ? r.name : r.file_stem; };
    for (const auto& r : requests) {
        if (r.name.empty()) fail(ErrorKind::Usage, "issue", "a certificate needs a name");
        if (r.profile == CertificateProfile::Client)
            if (auto problem = client_name_problem(r.name, r.identity_rules))
                fail(ErrorKind::Usage, "'" + printable(r.name) + "'", *problem);
        check_file_stem(stem_of(r));
        if (size_t n = utf8_length(r.name); n > kMaxCommonName)
            fail(ErrorKind::Usage, "'" + printable(r.name.substr(0, 40)) + "...'",
                 "too long for a certificate's CN (" + std::to_string(n) + " characters, at most " +
                     std::to_string(kMaxCommonName) + ")");
        if (!seen.insert(stem_of(r)).second)
            fail(ErrorKind::Usage, r.name, "named twice in one command");
        leaf_not_after(r.days, now_, r.lifetime);
        if (r.profile == CertificateProfile::Server && r.subject_alt_names.empty())
            fail(ErrorKind::Usage, r.name, "a server certificate needs at least one name");
        for (const char* ext : {".key", ".crt", ".chain.pem"})
            if (overwrite == Overwrite::Refuse && fs::exists(out_dir / (stem_of(r) + ext)))
                fail(ErrorKind::State, (out_dir / (stem_of(r) + ext)).string(),
                     "already exists (use --force to overwrite)");
    }

    std::string chain_tail = chain_to_pem(issuing_chain());
    std::vector<IssuedFiles> issued;
    issued.reserve(requests.size());
    auto make = [&](size_t i) {
        const LeafRequest& r = requests[i];
        PrivateKey key = PrivateKey::generate(r.key_type);
        CertificateSpec spec{r.profile,
                             r.name,
                             "",
                             r.subject_alt_names,
                             now_ - kBackdate,
                             leaf_not_after(r.days, now_, r.lifetime),
                             ""};
        Certificate cert = sign_certificate(spec, key.get(), *issuer_key_, &issuer());
        std::string stem = stem_of(r);
        IssuedFiles files{record(cert, r.name, profile_name(r.profile)), out_dir / (stem + ".key"),
                          out_dir / (stem + ".crt"), out_dir / (stem + ".chain.pem")};
        std::string cert_pem = cert.to_pem();
        Signed s{files.entry,
                 cert_pem,
                 {{files.key, key.to_pem(), kPrivateMode},
                  {files.cert, cert_pem, kPublicMode},
                  {files.chain, cert_pem + chain_tail, kPublicMode}}};
        issued.push_back(std::move(files));
        return s;
    };
    issue_batch(requests.size(), make, {out_dir}, overwrite, hooks);
    return issued;
}

IndexEntry CertificateAuthority::sign(const CertificateRequest& csr, std::string_view csr_source,
                                      CertificateProfile profile, int days,
                                      const std::vector<std::string>& allow, const fs::path& out,
                                      Overwrite overwrite, IdentityRules identity_rules) {
    if (!issuer_key_) throw Error(ErrorKind::State, "the CA was opened without its key");
    csr.verify_signature(csr_source);
    if (auto problem = public_key_problem(csr.public_key()))
        fail(ErrorKind::Input, csr_source, *problem);
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
        fail(ErrorKind::Input, csr_source, "CN '" + printable(cn) + "' is not allowed by --allow");
    for (const auto& san : sans) {
        if (san.type == SubjectAltName::Type::Other || !allowed(san.value))
            fail(ErrorKind::Input, csr_source,
                 "name " + printable(san.to_string()) + " is not allowed by --allow");
    }
    if (profile == CertificateProfile::Client && !cn.empty())
        if (auto problem = client_name_problem(cn, identity_rules))
            fail(ErrorKind::Input, csr_source, "CN '" + printable(cn) + "' " + *problem);
    if (profile == CertificateProfile::Server && sans.empty()) {
        // Clients match server names against SANs only (RFC 6125), so the CN becomes one.
        sans.push_back(classify_name(cn));
    }
    fs::path chain_path = fs::path(out).replace_extension(".chain.pem");
    if (overwrite == Overwrite::Refuse)
        for (const auto& p : {out, chain_path})
            if (fs::exists(p))
                fail(ErrorKind::State, p.string(), "already exists (use --force to overwrite)");

    CertificateSpec spec{profile, cn, "", sans, now_ - kBackdate, leaf_not_after(days, now_), ""};
    auto make = [&](size_t) {
        Certificate cert = sign_certificate(spec, csr.public_key(), *issuer_key_, &issuer());
        std::string cert_pem = cert.to_pem();
        return Signed{record(cert, cn.empty() ? sans.front().value : cn, profile_name(profile)),
                      cert_pem,
                      {{out, cert_pem, kPublicMode},
                       {chain_path, cert_pem + chain_to_pem(issuing_chain()), kPublicMode}}};
    };
    fs::path out_dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    return issue_batch(1, make, {out_dir}, overwrite, {}).front();
}

std::vector<Certificate> CertificateAuthority::sign_checked(
    const std::vector<CheckedCsr>& requests) {
    if (!issuer_key_) throw Error(ErrorKind::State, "the CA was opened without its key");
    std::vector<CertificateSpec> specs;
    for (const auto& r : requests)
        specs.push_back(CertificateSpec{r.profile, r.common_name, "", r.subject_alt_names,
                                        now_ - kBackdate, leaf_not_after(0, now_, r.lifetime), ""});
    // Signing is most of the work and needs nothing but the key (which OpenSSL 3 lets threads
    // share for signing): spread over the cores, before anything is recorded.
    std::vector<std::optional<Certificate>> certificates(requests.size());
    std::vector<std::string> errors(requests.size());
    for_each_parallel(requests.size(), [&](std::size_t i) {
        try {
            certificates[i] = sign_certificate(specs[i], *requests[i].csr, *issuer_key_, issuer());
        } catch (const std::exception& e) {
            errors[i] = e.what();
        }
    });
    for (const auto& e : errors)
        if (!e.empty()) throw Error(ErrorKind::Input, e);
    auto make = [&](size_t i) {
        const Certificate& cert = *certificates[i];
        std::string name = specs[i].common_name.empty() ? specs[i].subject_alt_names.front().value
                                                        : specs[i].common_name;
        IndexEntry entry = record(cert, name, profile_name(requests[i].profile));
        entry.key_type = key_algorithm_name(requests[i].csr->public_key());  // see sign_certificate
        return Signed{std::move(entry), cert.to_pem(), {}};
    };
    issue_batch(requests.size(), make, {}, Overwrite::Refuse, {});
    std::vector<Certificate> out;
    for (auto& c : certificates) out.push_back(std::move(*c));
    return out;
}

std::optional<IndexEntry> CertificateAuthority::find(const std::string& serial) const {
    std::optional<std::string> wanted = normalize_serial(serial);
    if (!wanted) return std::nullopt;
    for (auto& e : index_.read())
        if (e.serial == *wanted) return e;
    return std::nullopt;
}

IndexEntry CertificateAuthority::revoke(const std::string& serial_or_file, RevocationReason reason,
                                        int crl_days) {
    if (!issuer_key_) throw Error(ErrorKind::State, "the CA was opened without its key");
    check_days(crl_days);
    std::optional<std::string> typed = normalize_serial(serial_or_file);
    std::optional<Certificate> given;
    if (fs::is_regular_file(serial_or_file) || !typed) {
        if (serial_or_file.find_first_of("/.") == std::string::npos)
            fail(ErrorKind::Input, "'" + printable(serial_or_file) + "'",
                 "is neither a serial (hex digits, e.g. 0A1B or 0a:1b) nor a certificate file");
        given = Certificate::load(serial_or_file);
    }
    std::string serial = given ? given->serial_hex() : *typed;
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
    CaFiles files(dir_);
    next_crl_number(files);  // fail on a corrupt crlnumber before changing the index
    std::uintmax_t index_size = index_.prepare_append();
    Pending pending{"revoke", "committing", index_size, {}, crl_days};
    write_pending(files, pending);
    try {
        index_.append_revocation(serial, now_, reason);
        entry->revoked_at = now_;
        entry->reason = reason;
        write_crl_from(entries, crl_days);
    } catch (...) {
        index_.truncate(index_size);  // the CRL did not change: neither does the index
        clear_pending(files);
        throw;
    }
    clear_pending(files);
    return *entry;
}

Crl CertificateAuthority::write_crl(int days, const std::optional<fs::path>& copy) {
    return write_crl_from(index_.read(), days, copy);
}

Crl CertificateAuthority::write_crl_from(const std::vector<IndexEntry>& entries, int days,
                                         const std::optional<fs::path>& copy) {
    if (!issuer_key_) throw Error(ErrorKind::State, "the CA was opened without its key");
    check_days(days);
    CaFiles files(dir_);
    std::vector<RevokedCertificate> revoked;
    for (const auto& e : entries)
        if (e.revoked_at) revoked.push_back({e.serial, *e.revoked_at, e.reason});
    long number = next_crl_number(files);
    Crl crl =
        sign_crl(issuer(), *issuer_key_, revoked, now_ - kBackdate, now_ + Days(days), number);
    // Staged together, so an unwritable copy leaves crl.pem and crlnumber as they were. The
    // number is placed first: a crash between the renames skips a number, never reuses one.
    std::string pem = crl.to_pem();
    AtomicBatch batch;
    batch.stage(files.crl_number, std::to_string(number) + "\n");
    batch.stage(files.crl, pem);
    if (copy) batch.stage(*copy, pem);
    batch.commit(Overwrite::Allow);
    return crl;
}

VerifyResult CertificateAuthority::verify(const std::vector<Certificate>& chain) const {
    VerifyResult result;
    if (chain.empty()) {
        result.problem = "no certificate";
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
    X509_STORE_CTX_set_time(ctx.get(), 0, SystemClock::to_time_t(now_));
    std::vector<std::string> eku = leaf.extended_key_usage();
    if (std::find(eku.begin(), eku.end(), "clientAuth") != eku.end())
        X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
    else if (std::find(eku.begin(), eku.end(), "serverAuth") != eku.end())
        X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(ctx.get()) != 1) {
        result.problem = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
        ERR_clear_error();
        return result;
    }
    result.entry = find(leaf.serial_hex());
    if (!result.entry || result.entry->fingerprint != leaf.fingerprint_sha256()) {
        result.entry.reset();
        result.problem = "chains to this CA but is not in its index";
        return result;
    }
    if (result.entry->revoked_at) {
        result.problem = "revoked on " + to_iso8601(*result.entry->revoked_at) + " (" +
                         std::string(revocation_reason_name(result.entry->reason)) + ")";
        return result;
    }
    result.problem.reset();
    return result;
}

}  // namespace brokertls
