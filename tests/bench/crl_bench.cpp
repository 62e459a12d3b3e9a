// CRL scale benchmark (issue #9): a CRL of N (default 1,000,000) entries.
//
//   crl_bench generate DIR N   writes DIR/root.pem, DIR/client.pem, DIR/crl1.pem (N serials,
//                              CRL number 1) and DIR/crl2.pem (the same N plus the client's
//                              serial, CRL number 2), signed with brokertls's sign_crl
//   crl_bench measure DIR      in a fresh process: TrustSnapshot::build with crl1 (load time,
//                              resident memory of the index, peak), validate() of the client
//                              (first call, then the median of cached calls), the revocation
//                              lookup alone (median), then a change: build with crl2 while the
//                              first snapshot is in force and as its `previous` (time until the
//                              client is refused, peak, and the peak above both snapshots), once
//                              by TrustSnapshot::build alone and once with what the security
//                              module does around it (the CRLs kept in a state directory read
//                              and written), and prints each figure against its target
//   crl_bench baseline DIR     the same load and change the way the snapshot did it before
//                              (d2i_X509_CRL kept alive + a hash set of "issuer/serial" strings),
//                              for a before/after comparison in one run
//
// Resident memory is read from /proc/self/status (VmRSS, VmHWM); VmHWM is reset before each
// phase through /proc/self/clear_refs so each phase's peak is its own.

#include <openssl/x509.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "brokertls/crypto/signing.hpp"
#include "brokertls/store/files.hpp"
#include "trust/kept_crls.hpp"
#include "trust/validator.hpp"

namespace {

using namespace brokertls;
namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

double seconds_since(Steady::time_point t) {
    return std::chrono::duration<double>(Steady::now() - t).count();
}

// CPU seconds of this process (the machine may be shared: wall time alone would mislead).
double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// VmRSS or VmHWM in MB (10^6 bytes, as the DER and index sizes are printed; /proc gives kB).
double status_mb(const std::string& field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field + ":", 0) == 0)
            return std::stod(line.substr(field.size() + 1)) * 1024 / 1e6;
    return -1;
}
void reset_peak() {
    std::ofstream("/proc/self/clear_refs") << "5";
}

void row(const char* what, double value, const char* unit, double target) {
    std::printf("%-46s %10.2f %-3s target <= %-8g ratio %.2f  %s\n", what, value, unit, target,
                value / target, value <= target ? "ok" : "MISSED");
}

int generate(const fs::path& dir, std::size_t n) {
    fs::create_directories(dir);
    TimePoint now = SystemClock::now();
    PrivateKey root_key = PrivateKey::generate(KeyType::EcP256);
    Certificate root = sign_certificate(
        {CertificateProfile::RootCa, "Bench Root", "", {}, now - Days(1), now + Days(3650), ""},
        root_key.get(), root_key, nullptr);
    PrivateKey client_key = PrivateKey::generate(KeyType::EcP256);
    Certificate client = sign_certificate(
        {CertificateProfile::Client, "bench-client", "", {}, now - Days(1), now + Days(30), ""},
        client_key.get(), root_key, &root);
    write_file_atomic(dir / "root.pem", root.to_pem());
    write_file_atomic(dir / "client.pem", client.to_pem());
    std::vector<RevokedCertificate> revoked;
    revoked.reserve(n + 1);
    for (std::size_t i = 0; i < n; ++i)
        revoked.push_back({random_serial(), now - Days(1), RevocationReason::KeyCompromise});
    write_file_atomic(dir / "crl1.pem",
                      sign_crl(root, root_key, revoked, now - Days(1), now + Days(7), 1).to_pem());
    revoked.push_back({client.serial_hex(), now, RevocationReason::KeyCompromise});
    write_file_atomic(dir / "crl2.pem",
                      sign_crl(root, root_key, revoked, now, now + Days(7), 2).to_pem());
    std::printf("wrote %s: CRLs of %zu and %zu entries (%.1f MB PEM)\n", dir.c_str(), n, n + 1,
                static_cast<double>(fs::file_size(dir / "crl1.pem")) / 1e6);
    return 0;
}

template <class F>
double median_ns(F&& f, int rounds, int per_round) {
    std::vector<double> t;
    for (int i = 0; i < rounds; ++i) {
        auto start = Steady::now();
        for (int j = 0; j < per_round; ++j) f();
        t.push_back(std::chrono::duration<double, std::nano>(Steady::now() - start).count() /
                    per_round);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

int measure(const fs::path& dir) {
    SecurityProfile profile;
    profile.name = "bench";
    profile.trust_anchors = {dir / "root.pem"};
    profile.crls = {dir / "crl1.pem"};
    Certificate client = Certificate::load_chain(dir / "client.pem").at(0);
    std::printf("== CRL scale, new snapshot (%.1f MB PEM)\n",
                static_cast<double>(fs::file_size(dir / "crl1.pem")) / 1e6);

    double rss0 = status_mb("VmRSS");
    reset_peak();
    auto t = Steady::now();
    double cpu = cpu_seconds();
    auto first = TrustSnapshot::build(profile, {}, SystemClock::now());
    double load_s = seconds_since(t), load_cpu = cpu_seconds() - cpu;
    double rss1 = status_mb("VmRSS"), peak1 = status_mb("VmHWM");
    const auto& crl = *first->crls().begin()->second;
    std::printf("entries %zu; kept CRL DER %.1f MB; serial index %.1f MB\n",
                first->revocation_index().size(), static_cast<double>(crl.der().size()) / 1e6,
                static_cast<double>(first->revocation_index().memory_bytes()) / 1e6);
    row("load (build snapshot), wall", load_s, "s", 2);
    row("load (build snapshot), CPU", load_cpu, "s", 2);
    row("resident for the CRL (RSS after - before)", rss1 - rss0, "MB", 100);
    std::printf("%-46s %10.2f MB (RSS before %.1f MB)\n", "peak RSS during load", peak1, rss0);

    auto t_first = Steady::now();
    auto r = first->validate(client.get(), "bench-client", SystemClock::now());
    double first_us = seconds_since(t_first) * 1e6;
    if (!r.ok()) {
        std::fprintf(stderr, "client refused on crl1: %s\n", r.detail.c_str());
        return 1;
    }
    TimePoint now = SystemClock::now();
    double validate_ns =
        median_ns([&] { (void)first->validate(client.get(), "bench-client", now); }, 101, 200);
    std::string issuer = client.issuer();
    const ASN1_INTEGER* serial = X509_get0_serialNumber(client.get());
    const auto& index = first->revocation_index();
    double lookup_ns = median_ns([&] { (void)index.contains(issuer, serial); }, 101, 10000);
    std::printf("%-46s %10.2f us (X509_verify_cert, not cached yet)\n", "validate(), first call",
                first_us);
    row("validate(), cached (median)", validate_ns / 1000, "us", 10);
    row("revocation lookup alone (median)", lookup_ns / 1000, "us", 10);
    std::printf("cache hits %zu\n", first->cache_hits());

    // A change, as TrustSnapshot::build alone (`kept` false) and as the security module
    // applies it (`kept` true): the CRLs kept in STATE_DIR/crls/ read back and merged with those
    // in force, the snapshot built, the newest CRLs kept again (SecurityModule::build_state).
    profile.crls = {dir / "crl2.pem"};
    fs::path state = dir / "state";
    fs::remove_all(state);
    std::vector<std::string> warnings;
    keep_crls(state, first->crls(), warnings);  // as the first load left it
    for (bool kept : {false, true}) {
        std::string how = kept ? " (as the module)" : "";
        double rss2 = status_mb("VmRSS");
        reset_peak();
        t = Steady::now();
        cpu = cpu_seconds();
        std::shared_ptr<const TrustSnapshot> next;
        if (kept) {
            // With the CRLs in force, as the report of issue #9 asks build_state to pass them.
            CrlsInForce in_force = load_kept_crls(state, warnings, first->crls());
            merge_newest(in_force, first->crls());
            next = TrustSnapshot::build(profile, in_force, SystemClock::now(), first.get());
            keep_crls(state, next->crls(), warnings);
        } else {
            next = TrustSnapshot::build(profile, first->crls(), SystemClock::now(), first.get());
        }
        auto refused = next->validate(client.get(), "bench-client", SystemClock::now());
        double change_s = seconds_since(t), change_cpu = cpu_seconds() - cpu;
        double peak2 = status_mb("VmHWM"), rss3 = status_mb("VmRSS");
        if (refused.reason != RejectReason::Revoked || !warnings.empty()) {
            std::fprintf(stderr, "client not refused on crl2: %s %s\n", refused.detail.c_str(),
                         warnings.empty() ? "" : warnings.front().c_str());
            return 1;
        }
        row(("change applied" + how + ", wall").c_str(), change_s, "s", 2);
        row(("change applied" + how + ", CPU").c_str(), change_cpu, "s", 2);
        row(("peak during the change" + how + " / before").c_str(), peak2 / rss2, "x", 2);
        // Both snapshots are resident at the swap whatever is done; what the change costs on
        // top of them is its transient buffers.
        std::printf(
            "%-46s %10.2f MB (RSS before %.1f MB, transient above both snapshots "
            "%.1f MB)\n",
            ("peak RSS during the change" + how).c_str(), peak2, rss2, peak2 - rss3);
    }
    {
        // The phases of a load, one by one (CPU seconds).
        double c = cpu_seconds();
        CrlInForce parsed = CrlInForce::load(dir / "crl2.pem");
        double parse_cpu = cpu_seconds() - c;
        c = cpu_seconds();
        bool ok = parsed.signed_by(Certificate::load_chain(dir / "root.pem").at(0));
        double verify_cpu = cpu_seconds() - c;
        c = cpu_seconds();
        RevocationIndex alone;
        alone.add(parsed);
        double index_cpu = cpu_seconds() - c;
        std::printf("phases (CPU s): read+parse %.2f, signature %.2f (%s), index %.2f\n", parse_cpu,
                    verify_cpu, ok ? "ok" : "BAD", index_cpu);
    }
    return 0;
}

// The way TrustSnapshot::build kept CRLs before issue #9, for the comparison.
int baseline(const fs::path& dir) {
    struct Old {
        std::shared_ptr<const Crl> crl;
        std::unordered_set<std::string> revoked;
    };
    Certificate root = Certificate::load_chain(dir / "root.pem").at(0);
    Certificate client = Certificate::load_chain(dir / "client.pem").at(0);
    auto build = [&](const fs::path& file) {
        auto old = std::make_unique<Old>();
        old->crl = std::make_shared<const Crl>(Crl::load(file));
        if (!old->crl->signed_by(root)) throw std::runtime_error("bad signature");
        for (const auto& r : old->crl->revoked())
            old->revoked.insert(old->crl->issuer() + '/' + r.serial_hex);
        return old;
    };
    std::printf("== CRL scale, before (parsed X509_CRL + set of strings)\n");
    double rss0 = status_mb("VmRSS");
    reset_peak();
    auto t = Steady::now();
    double cpu = cpu_seconds();
    auto first = build(dir / "crl1.pem");
    double load_s = seconds_since(t), load_cpu = cpu_seconds() - cpu;
    double rss1 = status_mb("VmRSS"), peak1 = status_mb("VmHWM");
    row("load (build snapshot), wall", load_s, "s", 2);
    row("load (build snapshot), CPU", load_cpu, "s", 2);
    row("resident for the CRL (RSS after - before)", rss1 - rss0, "MB", 100);
    std::printf("%-46s %10.2f MB\n", "peak RSS during load", peak1);
    std::string issuer = client.issuer();
    double lookup_ns = median_ns(
        [&] { (void)first->revoked.count(issuer + '/' + client.serial_hex()); }, 101, 10000);
    row("revocation lookup alone (median)", lookup_ns / 1000, "us", 10);
    double rss2 = status_mb("VmRSS");
    reset_peak();
    t = Steady::now();
    cpu = cpu_seconds();
    auto next = build(dir / "crl2.pem");
    bool refused = next->revoked.count(issuer + '/' + client.serial_hex()) > 0;
    double change_s = seconds_since(t), change_cpu = cpu_seconds() - cpu;
    double peak2 = status_mb("VmHWM");
    row("change applied (new CRL -> client refused), wall", change_s, "s", 2);
    row("change applied, CPU", change_cpu, "s", 2);
    row("peak during the change / resident before", peak2 / rss2, "x", 2);
    std::printf("%-46s %10.2f MB (refused: %s)\n", "peak RSS during the change", peak2,
                refused ? "yes" : "NO");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> a(argv, argv + argc);
    try {
        if (a.size() >= 3 && a[1] == "generate")
            return generate(a[2], a.size() > 3 ? std::stoul(a[3]) : 1000000);
        if (a.size() == 3 && a[1] == "measure") return measure(a[2]);
        if (a.size() == 3 && a[1] == "baseline") return baseline(a[2]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "crl_bench: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "usage: crl_bench generate DIR [N] | measure DIR | baseline DIR\n");
    return 2;
}
