#include "brokertls/trust/capath.hpp"

#include <cstdio>
#include <map>
#include <regex>
#include <set>

#include "brokertls/store/files.hpp"

namespace brokertls {
namespace fs = std::filesystem;

std::vector<std::string> sync_capath(const fs::path& dir,
                                     const std::vector<Certificate>& certificates) {
    std::vector<std::string> log;
    ensure_directory(dir, 0755);
    // Name each distinct certificate HASH.N, N counting certificates whose subjects share a hash.
    std::map<std::string, std::string> wanted;  // file name -> PEM
    std::set<std::string> seen;
    std::map<unsigned long, int> next_index;
    for (const auto& cert : certificates) {
        if (!seen.insert(cert.fingerprint_sha256()).second) continue;
        unsigned long hash =
            X509_NAME_hash_ex(X509_get_subject_name(cert.get()), nullptr, nullptr, nullptr);
        char name[32];
        std::snprintf(name, sizeof name, "%08lx.%d", hash, next_index[hash]++);
        wanted.emplace(name, cert.to_pem());
    }
    static const std::regex kHashed("[0-9a-f]{8}\\.[0-9]+");
    for (const auto& entry : fs::directory_iterator(dir)) {
        std::string name = entry.path().filename().string();
        if (!std::regex_match(name, kHashed) || wanted.count(name)) continue;
        fs::remove(entry.path());
        log.push_back("capath " + dir.string() + ": removed " + name);
    }
    for (const auto& [name, pem] : wanted) {
        fs::path file = dir / name;
        std::error_code ec;
        if (fs::exists(file, ec) && read_file(file) == pem) continue;
        write_file_atomic(file, pem);
        log.push_back("capath " + dir.string() + ": wrote " + name);
    }
    return log;
}

}  // namespace brokertls
