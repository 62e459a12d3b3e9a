#include "cli.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "args.hpp"
#include "brokertls/ca/authority.hpp"
#include "brokertls/crypto/pkcs12.hpp"
#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "help.hpp"

namespace brokertls::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::set<std::string> kCommonValues{"--dir", "--passphrase-file", "--passphrase-env",
                                          "--lock-timeout"};
const std::set<std::string> kCommonFlags{"--json", "--help"};

OptionSpec spec(std::set<std::string> values, std::set<std::string> flags = {}) {
    values.insert(kCommonValues.begin(), kCommonValues.end());
    flags.insert(kCommonFlags.begin(), kCommonFlags.end());
    return {std::move(values), std::move(flags)};
}

std::string first_line_of(const fs::path& file) {
    std::string text = read_file(file);
    std::string line = text.substr(0, text.find('\n'));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

// A secret from --X-file or --X-env (never from a plain argument), else from `default_env`.
std::optional<std::string> secret(const Args& args, const std::string& option,
                                  const char* default_env) {
    auto file = args.value("--" + option + "-file");
    auto env = args.value("--" + option + "-env");
    if (file && env)
        fail(ErrorKind::Usage, "--" + option + "-file", "and --" + option + "-env are exclusive");
    std::optional<std::string> value;
    if (file) {
        value = first_line_of(*file);
    } else if (env) {
        const char* v = std::getenv(env->c_str());
        if (!v)
            fail(ErrorKind::Usage, "--" + option + "-env " + *env,
                 "environment variable is not set");
        value = v;
    } else if (const char* v = default_env ? std::getenv(default_env) : nullptr) {
        value = v;
    }
    if (value && value->empty()) fail(ErrorKind::Usage, option, "is empty");
    return value;
}

struct Context {
    const Args& args;
    std::ostream& out;
    std::ostream& err;
    std::string_view command;
    fs::path dir;
    Passphrase passphrase;
    std::chrono::milliseconds lock_timeout;
    bool json;

    // The command line is where the time comes from the system clock.
    CertificateAuthority open(bool load_key, DirectoryLock::Mode mode) const {
        return CertificateAuthority(dir, passphrase, load_key, mode, SystemClock::now(),
                                    lock_timeout);
    }
    // The CA's warnings (a readable key, work finished for an interrupted command) on stderr.
    void warn(const CertificateAuthority& ca) const {
        for (const auto& w : ca.warnings())
            err << "brokertls-ca " << command << ": warning: " << w << "\n";
    }
};

// SIGINT/SIGTERM during a batch: the handler only records the signal; the batch polls it
// between certificates, removes what it staged and exits 128+signal. SA_RESETHAND makes a
// second signal act at once (the next command then removes the leftovers).
volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void record_stop_signal(int sig) {
    g_stop_signal = sig;
}

class StopSignals {
  public:
    StopSignals() {
        g_stop_signal = 0;
        struct sigaction sa {};
        sa.sa_handler = record_stop_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        ::sigaction(SIGINT, &sa, &old_int_);
        ::sigaction(SIGTERM, &sa, &old_term_);
    }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;
    ~StopSignals() {
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
    }

  private:
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
};

// Batches from this size on report progress on stderr (smaller ones too when stderr is a
// terminal), at most once a second and once at the end.
constexpr size_t kProgressBatch = 500;

KeyType key_type_option(const Args& args) {
    auto name = args.value("--key-type");
    if (!name) return KeyType::EcP256;
    auto type = parse_key_type(*name);
    if (!type)
        fail(ErrorKind::Usage, "--key-type " + *name,
             "unknown key type (one of " + std::string(key_type_names()) + ")");
    return *type;
}

json entry_json(const IndexEntry& e, TimePoint now) {
    json j{{"serial", e.serial},
           {"name", e.name},
           {"subject", e.subject},
           {"sans", e.subject_alt_names},
           {"profile", e.profile},
           {"key_type", e.key_type},
           {"not_before", to_iso8601(e.not_before)},
           {"not_after", to_iso8601(e.not_after)},
           {"fingerprint", e.fingerprint},
           {"status", status_name(e.status(now))}};
    if (e.revoked_at) {
        j["revoked_at"] = to_iso8601(*e.revoked_at);
        j["revocation_reason"] = revocation_reason_name(e.reason);
    }
    return j;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : sep) + item;
    return out;
}

// ---- commands ----

int cmd_init(const Context& ctx) {
    if (!ctx.args.positional().empty())
        fail(ErrorKind::Usage, ctx.args.positional().front(), "unexpected argument");
    bool intermediate = ctx.args.flag("--intermediate");
    CaInitOptions options;
    options.name = ctx.args.value("--name").value_or(intermediate ? "brokertls Intermediate CA"
                                                                  : "brokertls CA");
    options.organization = ctx.args.value("--org").value_or("");
    options.key_type = key_type_option(ctx.args);
    options.days = ctx.args.number("--days", 1, kMaxDays)
                       .value_or(intermediate ? kDefaultIntermediateDays : kDefaultRootDays);
    options.passphrase = ctx.passphrase;
    if (intermediate) {
        CertificateAuthority::add_intermediate(ctx.dir, options, SystemClock::now());
    } else {
        CertificateAuthority::init_root(ctx.dir, options, SystemClock::now());
    }
    fs::path cert = ctx.dir / (intermediate ? "intermediate.crt" : "root.crt");
    Certificate c = Certificate::load(cert);
    if (ctx.json) {
        ctx.out << json{{"certificate", cert.string()},
                        {"subject", c.subject()},
                        {"not_after", to_iso8601(c.not_after())},
                        {"fingerprint", c.fingerprint_sha256()},
                        {"encrypted_key", ctx.passphrase.has_value()}}
                       .dump(2)
                << "\n";
    } else {
        ctx.out << "created " << (intermediate ? "intermediate" : "root") << " CA " << c.subject()
                << " (" << c.key_algorithm() << ", until " << to_iso8601(c.not_after()) << ")\n"
                << "  certificate: " << cert.string() << "\n"
                << "  sha256:      " << c.fingerprint_sha256() << "\n";
        if (!ctx.passphrase)
            ctx.out << "  the key is not encrypted (use --passphrase-file to protect it)\n";
    }
    return kExitOk;
}

std::vector<std::string> client_names(const Args& args, std::vector<std::string> names) {
    if (auto count = args.number("--count", 1, 1000000)) {
        auto prefix = args.value("--prefix");
        if (!prefix) fail(ErrorKind::Usage, "--count", "needs --prefix");
        for (int i = 1; i <= *count; ++i) names.push_back(*prefix + std::to_string(i));
    } else if (args.value("--prefix")) {
        fail(ErrorKind::Usage, "--prefix", "needs --count");
    }
    if (auto file = args.value("--names-file")) {
        std::istringstream in(read_file(*file));
        for (std::string line; std::getline(in, line);) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.empty() && line.front() != '#') names.push_back(line);
        }
    }
    return names;
}

std::string server_file_stem(const std::string& first_name) {
    std::string stem = first_name;
    if (stem.rfind("*.", 0) == 0) stem = "_wildcard" + stem.substr(1);
    for (char& c : stem)
        if (c == ':' || c == '/') c = '_';
    return stem;
}

int cmd_issue(const Context& ctx) {
    const auto& pos = ctx.args.positional();
    if (pos.empty())
        fail(ErrorKind::Usage, "issue",
             "needs a profile: issue client NAME... or issue server NAME...");
    auto profile = parse_leaf_profile(pos[0]);
    if (!profile) fail(ErrorKind::Usage, pos[0], "unknown profile (client or server)");
    std::vector<std::string> names(pos.begin() + 1, pos.end());
    int days = ctx.args.number("--days", 1, kMaxDays).value_or(kDefaultLeafDays);
    KeyType key_type = key_type_option(ctx.args);

    IdentityRules rules{ctx.args.flag("--allow-slash")};
    std::vector<LeafRequest> requests;
    if (*profile == CertificateProfile::Client) {
        names = client_names(ctx.args, std::move(names));
        if (names.empty())
            fail(ErrorKind::Usage, "issue client",
                 "needs at least one NAME (or --count/--names-file)");
        if (ctx.args.value("--file-name"))
            fail(ErrorKind::Usage, "--file-name", "is for server certificates");
        std::vector<SubjectAltName> sans;
        for (auto [option, type] : {std::pair{"--san-dns", SubjectAltName::Type::Dns},
                                    {"--san-ip", SubjectAltName::Type::Ip},
                                    {"--san-uri", SubjectAltName::Type::Uri},
                                    {"--san-email", SubjectAltName::Type::Email}})
            for (const auto& v : ctx.args.values(option)) sans.push_back(make_san(type, v));
        if (!sans.empty() && names.size() != 1)
            fail(ErrorKind::Usage, "--san-*", "can only be used with a single NAME");
        for (auto& name : names) {
            // With --allow-slash, "site/dev-1" is written to site_dev-1.key etc.
            std::string stem = name;
            if (rules.allow_slash) std::replace(stem.begin(), stem.end(), '/', '_');
            requests.push_back({CertificateProfile::Client, name, stem, sans, days, key_type,
                                std::nullopt, rules});
        }
    } else {
        if (names.empty())
            fail(ErrorKind::Usage, "issue server",
                 "needs at least one name (DNS name, IP, URI or email)");
        for (const char* o : {"--count", "--prefix", "--names-file", "--san-dns", "--san-ip",
                              "--san-uri", "--san-email"})
            if (!ctx.args.values(o).empty())
                fail(ErrorKind::Usage, o, "is for client certificates");
        if (rules.allow_slash)
            fail(ErrorKind::Usage, "--allow-slash", "is for client certificates");
        std::vector<SubjectAltName> sans;
        for (const auto& n : names) sans.push_back(classify_name(n));
        requests.push_back({CertificateProfile::Server, names[0],
                            ctx.args.value("--file-name").value_or(server_file_stem(names[0])),
                            sans, days, key_type});
    }

    fs::path out_dir = ctx.args.value("--out").value_or(".");
    CertificateAuthority ca = ctx.open(true, DirectoryLock::Mode::Exclusive);
    ctx.warn(ca);

    bool show_progress = requests.size() >= kProgressBatch ||
                         (requests.size() > 1 && &ctx.err == &std::cerr && ::isatty(2));
    auto last = std::chrono::steady_clock::now();
    BatchHooks hooks;
    hooks.progress = [&](size_t done, size_t total) {
        auto now = std::chrono::steady_clock::now();
        if (!show_progress || (done < total && now - last < std::chrono::seconds(1))) return;
        last = now;
        ctx.err << "brokertls-ca issue: signed " << done << "/" << total << " certificates"
                << (done == total ? ", writing the files" : "") << "\n";
    };
    hooks.stop_requested = [] { return g_stop_signal != 0; };
    StopSignals signals;
    std::vector<IssuedFiles> issued;
    try {
        issued = ca.issue(requests, out_dir,
                          ctx.args.flag("--force") ? Overwrite::Allow : Overwrite::Refuse, hooks);
    } catch (const Error& e) {
        if (int sig = g_stop_signal) {
            ctx.err << "brokertls-ca issue: interrupted by SIG" << sigabbrev_np(sig) << ": "
                    << e.what() << "\n";
            return 128 + sig;
        }
        throw;
    }

    TimePoint now = SystemClock::now();
    if (ctx.json) {
        json list = json::array();
        for (const auto& f : issued) {
            json j = entry_json(f.entry, now);
            j["key_file"] = f.key.string();
            j["cert_file"] = f.cert.string();
            j["chain_file"] = f.chain.string();
            list.push_back(std::move(j));
        }
        ctx.out << list.dump(2) << "\n";
        return kExitOk;
    }
    constexpr size_t kListed = 10;
    for (size_t i = 0; i < issued.size() && i < kListed; ++i) {
        const auto& f = issued[i];
        ctx.out << "issued " << f.entry.profile << " certificate " << f.entry.name << " (serial "
                << f.entry.serial << ", until " << to_iso8601(f.entry.not_after) << ")\n";
        if (!f.entry.subject_alt_names.empty())
            ctx.out << "  names: " << join(f.entry.subject_alt_names, ", ") << "\n";
        ctx.out << "  key:   " << f.key.string() << "\n  cert:  " << f.cert.string()
                << "\n  chain: " << f.chain.string() << "\n";
    }
    if (issued.size() > kListed)
        ctx.out << "... and " << issued.size() - kListed << " more: " << issued.size()
                << " certificates in " << out_dir.string() << "\n";
    ctx.out << "trust anchor: " << (ctx.dir / "root.crt").string() << "\n";
    return kExitOk;
}

int cmd_sign(const Context& ctx) {
    const auto& pos = ctx.args.positional();
    if (pos.size() != 1) fail(ErrorKind::Usage, "sign", "needs exactly one CSR file");
    auto profile_text = ctx.args.value("--profile");
    if (!profile_text) fail(ErrorKind::Usage, "sign", "needs --profile client|server");
    auto profile = parse_leaf_profile(*profile_text);
    if (!profile) fail(ErrorKind::Usage, "--profile " + *profile_text, "must be client or server");
    int days = ctx.args.number("--days", 1, kMaxDays).value_or(kDefaultLeafDays);
    fs::path csr_path = pos[0];
    fs::path out =
        ctx.args.value("--out").value_or(fs::path(csr_path).replace_extension(".crt").string());
    CertificateRequest csr = CertificateRequest::load(csr_path);
    IdentityRules rules{ctx.args.flag("--allow-slash")};
    if (rules.allow_slash && *profile != CertificateProfile::Client)
        fail(ErrorKind::Usage, "--allow-slash", "is for client certificates");
    CertificateAuthority ca = ctx.open(true, DirectoryLock::Mode::Exclusive);
    ctx.warn(ca);
    IndexEntry e = ca.sign(csr, csr_path.string(), *profile, days, ctx.args.values("--allow"), out,
                           ctx.args.flag("--force") ? Overwrite::Allow : Overwrite::Refuse, rules);
    if (ctx.json) {
        json j = entry_json(e, SystemClock::now());
        j["cert_file"] = out.string();
        ctx.out << j.dump(2) << "\n";
    } else {
        ctx.out << "signed " << e.profile << " certificate " << e.subject << " (serial " << e.serial
                << ", until " << to_iso8601(e.not_after) << ")\n  cert: " << out.string() << "\n";
    }
    return kExitOk;
}

int cmd_revoke(const Context& ctx) {
    const auto& pos = ctx.args.positional();
    if (pos.size() != 1) fail(ErrorKind::Usage, "revoke", "needs one SERIAL or certificate file");
    RevocationReason reason = RevocationReason::Unspecified;
    if (auto text = ctx.args.value("--reason")) {
        auto r = parse_revocation_reason(*text);
        if (!r)
            fail(ErrorKind::Usage, "--reason " + *text,
                 "unknown reason (one of " + std::string(revocation_reason_names()) + ")");
        reason = *r;
    }
    int crl_days = ctx.args.number("--crl-days", 1, kMaxDays).value_or(kDefaultCrlDays);
    CertificateAuthority ca = ctx.open(true, DirectoryLock::Mode::Exclusive);
    ctx.warn(ca);
    IndexEntry e = ca.revoke(pos[0], reason, crl_days);
    if (ctx.json) {
        ctx.out << entry_json(e, SystemClock::now()).dump(2) << "\n";
    } else {
        ctx.out << "revoked " << e.name << " (serial " << e.serial << ", "
                << revocation_reason_name(e.reason) << ")\n"
                << "  crl: " << (ctx.dir / "crl.pem").string() << "\n";
    }
    return kExitOk;
}

int cmd_crl(const Context& ctx) {
    if (!ctx.args.positional().empty())
        fail(ErrorKind::Usage, ctx.args.positional().front(), "unexpected argument");
    int days = ctx.args.number("--days", 1, kMaxDays).value_or(kDefaultCrlDays);
    std::optional<fs::path> copy;
    if (auto out = ctx.args.value("--out"))
        copy = fs::is_directory(*out) ? fs::path(*out) / "crl.pem" : fs::path(*out);
    CertificateAuthority ca = ctx.open(true, DirectoryLock::Mode::Exclusive);
    ctx.warn(ca);
    Crl crl = ca.write_crl(days, copy);
    if (ctx.json) {
        ctx.out << json{{"file", (ctx.dir / "crl.pem").string()},
                        {"number", crl.number()},
                        {"revoked", crl.revoked().size()},
                        {"this_update", to_iso8601(crl.this_update())},
                        {"next_update", to_iso8601(crl.next_update())}}
                       .dump(2)
                << "\n";
    } else {
        ctx.out << "wrote CRL #" << crl.number() << " with " << crl.revoked().size()
                << " revoked certificate(s), next update " << to_iso8601(crl.next_update())
                << "\n  crl: " << (ctx.dir / "crl.pem").string() << "\n";
    }
    return kExitOk;
}

int cmd_list(const Context& ctx) {
    if (!ctx.args.positional().empty())
        fail(ErrorKind::Usage, ctx.args.positional().front(), "unexpected argument");
    std::optional<IndexEntry::Status> filter;
    if (auto s = ctx.args.value("--status")) {
        filter = parse_status(*s);
        if (!filter) fail(ErrorKind::Usage, "--status " + *s, "must be valid, revoked or expired");
    }
    CertificateAuthority ca = ctx.open(false, DirectoryLock::Mode::Shared);
    ctx.warn(ca);
    TimePoint now = SystemClock::now();
    json list = json::array();
    std::ostringstream table;
    for (const auto& e : ca.list()) {
        if (filter && e.status(now) != *filter) continue;
        if (ctx.json) {
            list.push_back(entry_json(e, now));
        } else {
            table << std::left << std::setw(34) << e.serial << std::setw(9)
                  << status_name(e.status(now)) << std::setw(8) << e.profile << std::setw(22)
                  << to_iso8601(e.not_after) << e.name << "\n";
        }
    }
    if (ctx.json) {
        ctx.out << list.dump(2) << "\n";
    } else {
        ctx.out << std::left << std::setw(34) << "SERIAL" << std::setw(9) << "STATUS"
                << std::setw(8) << "PROFILE" << std::setw(22) << "NOT AFTER"
                << "NAME\n"
                << table.str();
    }
    return kExitOk;
}

int cmd_show(const Context& ctx) {
    const auto& pos = ctx.args.positional();
    if (pos.size() != 1) fail(ErrorKind::Usage, "show", "needs one SERIAL or certificate file");
    CertificateAuthority ca = ctx.open(false, DirectoryLock::Mode::Shared);
    ctx.warn(ca);
    std::optional<Certificate> cert;
    std::optional<std::string> serial = normalize_serial(pos[0]);
    if (fs::is_regular_file(pos[0]) || !serial) {
        if (!fs::exists(pos[0]) && pos[0].find_first_of("/.") == std::string::npos)
            fail(ErrorKind::Input, "'" + printable(pos[0]) + "'",
                 "is neither a serial (hex digits, e.g. 0A1B or 0a:1b) nor a certificate file");
        cert = Certificate::load(pos[0]);
    } else {
        fs::path path = ca.cert_path(*serial);
        if (!fs::exists(path))
            fail(ErrorKind::State, "serial " + *serial, "was not issued by this CA");
        cert = Certificate::load(path);
    }
    std::optional<IndexEntry> entry = ca.find(cert->serial_hex());
    if (entry && entry->fingerprint != cert->fingerprint_sha256()) entry.reset();

    std::vector<std::string> sans;
    for (const auto& s : cert->subject_alt_names()) sans.push_back(s.to_string());
    BasicConstraints bc = cert->basic_constraints();
    std::string constraints =
        !bc.present
            ? "absent"
            : std::string(bc.critical ? "critical, " : "") + (bc.ca ? "CA:TRUE" : "CA:FALSE") +
                  (bc.path_length >= 0 ? ", pathlen:" + std::to_string(bc.path_length) : "");
    TimePoint now = SystemClock::now();
    json j{
        {"subject", cert->subject()},
        {"issuer", cert->issuer()},
        {"serial", cert->serial_hex()},
        {"sans", sans},
        {"not_before", to_iso8601(cert->not_before())},
        {"not_after", to_iso8601(cert->not_after())},
        {"key", cert->key_algorithm()},
        {"key_usage", cert->key_usage()},
        {"extended_key_usage", cert->extended_key_usage()},
        {"basic_constraints", constraints},
        {"fingerprint", cert->fingerprint_sha256()},
        {"status", entry ? std::string(status_name(entry->status(now))) : "not issued by this CA"}};
    if (entry && entry->revoked_at) {
        j["revoked_at"] = to_iso8601(*entry->revoked_at);
        j["revocation_reason"] = revocation_reason_name(entry->reason);
    }
    if (ctx.json) {
        ctx.out << j.dump(2) << "\n";
        return kExitOk;
    }
    for (auto& [key, value] : j.items()) {
        std::string text = value.is_array() ? join(value.get<std::vector<std::string>>(), ", ")
                                            : value.get<std::string>();
        ctx.out << std::left << std::setw(20) << (key + ":") << text << "\n";
    }
    return kExitOk;
}

int cmd_verify(const Context& ctx) {
    const auto& pos = ctx.args.positional();
    if (pos.size() != 1) fail(ErrorKind::Usage, "verify", "needs one certificate file");
    std::vector<Certificate> chain = Certificate::load_chain(pos[0]);
    CertificateAuthority ca = ctx.open(false, DirectoryLock::Mode::Shared);
    ctx.warn(ca);
    VerifyResult r = ca.verify(chain);
    if (ctx.json) {
        json j{{"file", pos[0]},
               {"ok", r.ok()},
               {"subject", chain.front().subject()},
               {"serial", chain.front().serial_hex()}};
        if (r.problem) j["reason"] = *r.problem;
        ctx.out << j.dump(2) << "\n";
    } else if (r.ok()) {
        ctx.out << pos[0] << ": OK (" << r.entry->profile << " " << chain.front().subject()
                << ", serial " << r.entry->serial << ", until " << to_iso8601(r.entry->not_after)
                << ")\n";
    }
    if (r.problem) fail(ErrorKind::Input, pos[0], *r.problem);
    return kExitOk;
}

int cmd_export_p12(const Context& ctx) {
    const auto& pos = ctx.args.positional();
    if (pos.size() != 1) fail(ErrorKind::Usage, "export-p12", "needs one NAME");
    check_file_stem(pos[0]);  // NAME picks files in --in: no "../", no paths
    std::optional<std::string> password = secret(ctx.args, "password", nullptr);
    if (!password)
        fail(ErrorKind::Usage, "export-p12", "needs --password-file F or --password-env VAR");
    fs::path in = ctx.args.value("--in").value_or(".");
    fs::path out = ctx.args.value("--out").value_or((in / (pos[0] + ".p12")).string());
    CertificateAuthority ca = ctx.open(false, DirectoryLock::Mode::Shared);
    ctx.warn(ca);
    PrivateKey key = PrivateKey::load(in / (pos[0] + ".key"));
    Certificate cert = Certificate::load(in / (pos[0] + ".crt"));
    if (!cert.matches_key(key))
        fail(ErrorKind::Input, (in / (pos[0] + ".key")).string(),
             "does not match " + pos[0] + ".crt");
    std::vector<Certificate> chain = ca.issuing_chain();
    chain.push_back(ca.root());
    write_file_atomic(out, make_pkcs12(pos[0], key, cert, chain, *password), kPrivateMode,
                      ctx.args.flag("--force") ? Overwrite::Allow : Overwrite::Refuse);
    if (ctx.json) {
        ctx.out << json{{"file", out.string()}}.dump(2) << "\n";
    } else {
        ctx.out << "wrote " << out.string() << " (key, certificate and " << chain.size()
                << " CA certificate(s))\n";
    }
    return kExitOk;
}

struct Command {
    std::string_view name;
    int (*run)(const Context&);
    OptionSpec options;
};

const std::vector<Command>& commands() {
    static const std::vector<Command> kCommands{
        {"init", cmd_init, spec({"--name", "--org", "--key-type", "--days"}, {"--intermediate"})},
        {"issue", cmd_issue,
         spec({"--out", "--days", "--key-type", "--count", "--prefix", "--names-file", "--san-dns",
               "--san-ip", "--san-uri", "--san-email", "--file-name"},
              {"--force", "--allow-slash"})},
        {"sign", cmd_sign,
         spec({"--profile", "--allow", "--days", "--out"}, {"--force", "--allow-slash"})},
        {"revoke", cmd_revoke, spec({"--reason", "--crl-days"})},
        {"crl", cmd_crl, spec({"--days", "--out"})},
        {"list", cmd_list, spec({"--status"})},
        {"show", cmd_show, spec({})},
        {"verify", cmd_verify, spec({})},
        {"export-p12", cmd_export_p12,
         spec({"--in", "--out", "--password-file", "--password-env"}, {"--force"})},
    };
    return kCommands;
}

fs::path default_dir() {
    const char* env = std::getenv("BROKERTLS_CA_DIR");
    return env && *env ? fs::path(env) : fs::path("brokertls-ca");
}

}  // namespace

int run(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
    if (argv.empty() || argv[0] == "--help" || argv[0] == "-h" || argv[0] == "help") {
        out << help_for("");
        return argv.empty() ? kExitUsage : kExitOk;
    }
    const std::string& name = argv[0];
    auto it = std::find_if(commands().begin(), commands().end(),
                           [&](const Command& c) { return c.name == name; });
    if (it == commands().end()) {
        err << "brokertls-ca: unknown command '" << name << "' (see brokertls-ca --help)\n";
        return kExitUsage;
    }
    try {
        Args args(std::vector<std::string>(argv.begin() + 1, argv.end()), it->options);
        if (args.flag("--help")) {
            out << help_for(name);
            return kExitOk;
        }
        int timeout_s = args.number("--lock-timeout", 0, 3600)
                            .value_or(static_cast<int>(kDefaultLockTimeout.count()));
        Context ctx{args,
                    out,
                    err,
                    name,
                    args.value("--dir").value_or(default_dir().string()),
                    secret(args, "passphrase", "BROKERTLS_CA_PASSPHRASE"),
                    std::chrono::seconds(timeout_s),
                    args.flag("--json")};
        return it->run(ctx);
    } catch (const Error& e) {
        err << "brokertls-ca " << name << ": " << e.what() << "\n";
        return e.kind() == ErrorKind::Usage ? kExitUsage : kExitError;
    } catch (const std::exception& e) {
        err << "brokertls-ca " << name << ": " << e.what() << "\n";
        return kExitError;
    }
}

}  // namespace brokertls::cli
