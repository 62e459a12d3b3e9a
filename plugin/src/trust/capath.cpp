#include "trust/capath.hpp"

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::regex kHashed("[0-9a-f]{8}\\.[0-9]+");

// The names brokertls wrote into the directory; empty before the first sync. Only names of
// the HASH.N form are accepted, so an edited manifest cannot make us remove anything else.
std::set<std::string> read_manifest(const fs::path& file) {
    std::error_code ec;
    if (!fs::exists(file, ec)) return {};
    std::set<std::string> names;
    try {
        json doc = json::parse(read_file(file));
        const json& files = doc.at("files");
        if (!files.is_array()) fail(ErrorKind::Input, file.string(), "\"files\" is not an array");
        for (const auto& item : files) {
            if (!item.is_string() || !std::regex_match(item.get<std::string>(), kHashed))
                fail(ErrorKind::Input, file.string(),
                     "\"files\" holds " + printable(item.dump()) + ", not a HASH.N file name");
            names.insert(item.get<std::string>());
        }
    } catch (const json::exception& e) {
        fail(ErrorKind::Input, file.string(),
             std::string("not a brokertls capath manifest: ") + e.what());
    }
    return names;
}

void write_manifest(const fs::path& file, const std::set<std::string>& names) {
    json doc{{"comment", "files brokertls wrote into this capath; it removes only these"},
             {"files", names}};
    write_file_atomic(file, doc.dump(2) + "\n");
}

}  // namespace

std::vector<std::string> sync_capath(const fs::path& dir,
                                     const std::vector<Certificate>& certificates) {
    std::vector<std::string> log;
    ensure_directory(dir, 0755);
    const fs::path manifest = dir / kCapathManifest;
    const std::set<std::string> ours = read_manifest(manifest);
    // Hashed files an operator (or c_rehash) put here: never overwritten, never removed.
    std::set<std::string> theirs;
    for (const auto& entry : fs::directory_iterator(dir)) {
        std::string name = entry.path().filename().string();
        if (std::regex_match(name, kHashed) && !ours.count(name)) theirs.insert(name);
    }

    // Name each distinct certificate HASH.N, N counting certificates whose subjects share a
    // hash and skipping the operator's names (OpenSSL tries HASH.0, HASH.1, ... in turn).
    std::map<std::string, std::string> wanted;  // file name -> PEM
    std::set<std::string> seen;
    std::map<unsigned long, int> next_index;
    for (const auto& cert : certificates) {
        if (!seen.insert(cert.fingerprint_sha256()).second) continue;
        unsigned long hash =
            X509_NAME_hash_ex(X509_get_subject_name(cert.get()), nullptr, nullptr, nullptr);
        char name[32];
        do {
            std::snprintf(name, sizeof name, "%08lx.%d", hash, next_index[hash]++);
        } while (theirs.count(name));
        wanted.emplace(name, cert.to_pem());
    }

    // Listed before they are written: a crash in between leaves no file of ours unlisted.
    std::set<std::string> listed = ours;
    for (const auto& [name, pem] : wanted) listed.insert(name);
    if (listed != ours) write_manifest(manifest, listed);
    for (const auto& [name, pem] : wanted) {
        fs::path file = dir / name;
        std::error_code ec;
        if (fs::exists(file, ec) && read_file(file) == pem) continue;
        write_file_atomic(file, pem);
        log.push_back("capath " + dir.string() + ": wrote " + name);
    }
    std::set<std::string> kept;
    for (const auto& [name, pem] : wanted) kept.insert(name);
    for (const auto& name : ours) {
        if (kept.count(name)) continue;
        std::error_code ec;
        if (fs::remove(dir / name, ec))
            log.push_back("capath " + dir.string() + ": removed " + name);
        else if (ec)
            fail(ErrorKind::Io, (dir / name).string(), "cannot remove: " + ec.message());
    }
    if (kept != listed) write_manifest(manifest, kept);
    return log;
}

}  // namespace brokertls
