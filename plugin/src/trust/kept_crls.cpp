#include "brokertls/trust/kept_crls.hpp"

#include "brokertls/crypto/digest.hpp"
#include "brokertls/error.hpp"
#include "brokertls/issuers/acme_issuer.hpp"  // ensure_private_directory()
#include "brokertls/store/files.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

fs::path kept_path(const fs::path& state_dir, const std::string& issuer_dn) {
    return state_dir / "crls" / (sha256_hex(issuer_dn).substr(0, 32) + ".pem");
}

}  // namespace

CrlsInForce load_kept_crls(const fs::path& state_dir, std::vector<std::string>& warnings) {
    CrlsInForce kept;
    std::error_code ec;
    if (!fs::is_directory(state_dir / "crls", ec)) return kept;
    for (const auto& entry : fs::directory_iterator(state_dir / "crls", ec)) {
        if (entry.path().extension() != ".pem") continue;
        try {
            auto crl = std::make_shared<const CrlInForce>(CrlInForce::load(entry.path()));
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
            std::string pem = crl->to_pem();
            std::error_code ec;
            if (fs::exists(path, ec) && read_file(path) == pem) continue;
            write_file_atomic(path, pem);
        }
    } catch (const Error& e) {
        warnings.push_back(std::string("the CRLs in force are not kept for the next start: ") +
                           e.what());
    }
}

}  // namespace brokertls
