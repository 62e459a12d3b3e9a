#include "trust/kept_crls.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "brokertls/crypto/digest.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/fd.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

// The CRL's DER as it is: written and compared without an encoded copy (a PEM of a
// 1,000,000-entry CRL is 66 MB more, twice, on top of both snapshots while a change is
// applied). Before, the files were PEM (".pem"); those are still read, and replaced.
constexpr std::string_view kKeptExtension = ".crl", kOldExtension = ".pem";

fs::path kept_path(const fs::path& state_dir, const std::string& issuer_dn,
                   std::string_view extension = kKeptExtension) {
    return state_dir / "crls" / (sha256_hex(issuer_dn).substr(0, 32) + std::string(extension));
}

// True when the file at `path` holds exactly `bytes`; read in small pieces, never whole.
bool holds(const fs::path& path, std::string_view bytes) {
    std::error_code ec;
    if (fs::file_size(path, ec) != bytes.size() || ec) return false;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return false;
    char piece[1 << 16];
    for (std::size_t at = 0; at < bytes.size();) {
        ssize_t n = ::read(fd.get(), piece, std::min(sizeof piece, bytes.size() - at));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || std::memcmp(piece, bytes.data() + at, static_cast<std::size_t>(n)) != 0)
            return false;
        at += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

CrlsInForce load_kept_crls(const fs::path& state_dir, std::vector<std::string>& warnings,
                           const CrlsInForce& in_force) {
    CrlsInForce kept;
    std::error_code ec;
    if (!fs::is_directory(state_dir / "crls", ec)) return kept;
    // A kept file that holds a CRL in force is that CRL (shared), not a second copy of it.
    std::map<fs::path, std::shared_ptr<const CrlInForce>> by_path;
    for (const auto& [issuer_dn, crl] : in_force) by_path[kept_path(state_dir, issuer_dn)] = crl;
    for (const auto& entry : fs::directory_iterator(state_dir / "crls", ec)) {
        auto extension = entry.path().extension();
        if (extension != kKeptExtension && extension != kOldExtension) continue;
        try {
            std::shared_ptr<const CrlInForce> crl;
            if (auto it = by_path.find(entry.path());
                it != by_path.end() && holds(entry.path(), it->second->der()))
                crl = it->second;
            else
                crl = std::make_shared<const CrlInForce>(CrlInForce::load(entry.path()));
            // Both files of one issuer (a keep_crls interrupted between them): the newer.
            if (auto it = kept.find(crl->issuer());
                it == kept.end() || crl->newer_than(*it->second))
                kept[crl->issuer()] = std::move(crl);
        } catch (const Error& e) {
            warnings.push_back(std::string("kept CRL ignored: ") + e.what());
        }
    }
    return kept;
}

void merge_newest(CrlsInForce& into, const CrlsInForce& from) {
    for (const auto& [issuer, crl] : from)
        if (auto it = into.find(issuer); it == into.end() || crl->newer_than(*it->second))
            into[issuer] = crl;
}

void keep_crls(const fs::path& state_dir, const CrlsInForce& crls,
               std::vector<std::string>& warnings) {
    if (crls.empty()) return;
    try {
        ensure_private_directory(state_dir, state_dir / "crls");
        for (const auto& [issuer_dn, crl] : crls) {
            fs::path path = kept_path(state_dir, issuer_dn);
            if (!holds(path, crl->der())) write_file_atomic(path, crl->der());
            std::error_code ec;
            fs::remove(kept_path(state_dir, issuer_dn, kOldExtension), ec);  // superseded
        }
    } catch (const Error& e) {
        warnings.push_back(std::string("the CRLs in force are not kept for the next start: ") +
                           e.what());
    }
}

}  // namespace brokertls
