#include "deploy/deployer.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

// Staged files are written under these names first, then renamed key first.
fs::path pending(const fs::path& path) {
    return path.string() + ".brokertls-new";
}

void rename_into_place(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    fs::rename(from, to, ec);
    if (ec)
        fail(ErrorKind::Io, to.string(), "cannot rename " + from.string() + ": " + ec.message());
}

// A deploy killed between its renames, or before them: finish it when the pending files form a
// matching pair with what is in place, else drop them, so the deployed key matches the
// deployed certificate again.
void finish_pending(const fs::path& cert, const fs::path& key, bool new_cert, bool new_key) {
    if (!new_cert && !new_key) return;
    std::error_code ec;
    if (new_cert) {
        try {
            ServerMaterial m{PrivateKey::load(new_key ? pending(key) : key),
                             Certificate::load_chain(pending(cert))};
            if (!m.chain.empty() && m.leaf().matches_key(m.key)) {
                if (new_key) rename_into_place(pending(key), key);
                rename_into_place(pending(cert), cert);
                sync_directory(cert.parent_path());
                if (key.parent_path() != cert.parent_path()) sync_directory(key.parent_path());
                return;
            }
        } catch (const Error&) {
            // Not a usable pair: dropped below.
        }
    }
    fs::remove(pending(key), ec);
    fs::remove(pending(cert), ec);
}

// The key and certificate in full under their pending names, durable.
void stage(const ServerMaterial& material, const fs::path& cert, const fs::path& key) {
    ensure_directory(key.parent_path());
    ensure_directory(cert.parent_path());
    try {
        write_file_atomic(pending(key), material.key.to_pem(), kPrivateMode);
        write_file_atomic(pending(cert), material.cert_pem());
    } catch (...) {
        std::error_code ec;
        fs::remove(pending(key), ec);
        fs::remove(pending(cert), ec);
        throw;
    }
}

void promote(const fs::path& cert, const fs::path& key) {
    rename_into_place(pending(key), key);
    rename_into_place(pending(cert), cert);
    sync_directory(cert.parent_path());
    if (key.parent_path() != cert.parent_path()) sync_directory(key.parent_path());
}

}  // namespace

void Deployer::recover(const std::vector<const CertificateProfileConfig*>& profiles) {
    // Per directory, the file names our deploys write there.
    std::map<fs::path, std::set<std::string>> ours;
    for (const auto* p : profiles)
        for (const fs::path& target : {p->deploy_cert, p->deploy_key}) {
            auto& names = ours[target.parent_path()];
            names.insert(target.filename().string());
            names.insert(pending(target).filename().string());
        }
    std::set<fs::path> pending_seen;
    for (const auto& [dir, names] : ours) {
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            std::string name = it->path().filename().string();
            // write_file_atomic's temporary files (".NAME.tmp-PID-RANDOM") of a killed
            // process: only this profile's deploy writes these names.
            if (auto target = temp_file_target(name); target && names.count(*target)) {
                std::error_code rm;
                fs::remove(it->path(), rm);
            } else if (names.count(name) && name.size() > 14 && name.ends_with(".brokertls-new")) {
                pending_seen.insert(it->path());
            }
        }
    }
    if (pending_seen.empty()) return;
    for (const auto* p : profiles)
        finish_pending(p->deploy_cert, p->deploy_key, pending_seen.count(pending(p->deploy_cert)),
                       pending_seen.count(pending(p->deploy_key)));
}

void Deployer::recover(const fs::path& cert, const fs::path& key) {
    CertificateProfileConfig p;
    p.deploy_cert = cert;
    p.deploy_key = key;
    recover({&p});
}

std::optional<ServerMaterial> Deployer::read(const CertificateProfileConfig& profile) {
    return read(profile.deploy_cert, profile.deploy_key);
}

std::optional<ServerMaterial> Deployer::read(const fs::path& cert, const fs::path& key) {
    try {
        if (!fs::exists(cert) || !fs::exists(key)) return std::nullopt;
        return ServerMaterial{PrivateKey::load(key), Certificate::load_chain(cert)};
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

bool Deployer::same(const ServerMaterial& a, const ServerMaterial& b) {
    return a.cert_pem() == b.cert_pem() && EVP_PKEY_eq(a.key.get(), b.key.get()) == 1;
}

void Deployer::install(const ServerMaterial& material, const fs::path& cert, const fs::path& key) {
    stage(material, cert, key);
    promote(cert, key);
}

Deployer::Result Deployer::deploy(const CertificateProfileConfig& p, const ServerMaterial& material,
                                  const std::string& origin, const ServerMaterial* deployed,
                                  bool archive, TimePoint now) const {
    if (deployed && same(material, *deployed)) return Result::Unchanged;
    if (Problem why = server_material_problem(material, p.names, now))
        fail(ErrorKind::Input, origin, *why);
    stage(material, p.deploy_cert, p.deploy_key);
    // Read back what will be served, and check that.
    try {
        ServerMaterial staged{PrivateKey::load(pending(p.deploy_key)),
                              Certificate::load_chain(pending(p.deploy_cert))};
        if (Problem why = server_material_problem(staged, p.names, now))
            fail(ErrorKind::Input, origin,
                 *why + " (as written to " + pending(p.deploy_cert).string() + ")");
        if (archive && deployed) archive_set(p, *deployed, now);
    } catch (...) {
        std::error_code ec;
        fs::remove(pending(p.deploy_key), ec);
        fs::remove(pending(p.deploy_cert), ec);
        throw;
    }
    promote(p.deploy_cert, p.deploy_key);
    return Result::Deployed;
}

Deployer::NewSet Deployer::prepare(const CertificateProfileConfig& profile,
                                   const ServerMaterial& material, const std::string& origin,
                                   TimePoint now) {
    if (Problem why = server_material_problem(material, profile.names, now))
        fail(ErrorKind::Input, origin, *why);
    return NewSet{&profile, material.key.to_pem(), material.cert_pem()};
}

void Deployer::deploy_new(const std::vector<NewSet>& sets) {
    AtomicBatch files;
    std::set<fs::path> dirs;
    std::vector<const CertificateProfileConfig*> by_pending;
    for (const auto& set : sets) {
        const auto& p = *set.profile;
        for (const fs::path& target : {p.deploy_cert, p.deploy_key})
            if (dirs.insert(target.parent_path()).second) ensure_directory(target.parent_path());
        // Neither file there (a first start): straight to their names, key first; a start
        // interrupted between the two leaves a key alone, and the next start deploys the set
        // again. One of them there: by the pending names, which recover() completes.
        std::error_code ec;
        bool direct = !fs::exists(p.deploy_key, ec) && !fs::exists(p.deploy_cert, ec);
        files.stage(direct ? p.deploy_key : pending(p.deploy_key), set.key_pem, kPrivateMode);
        files.stage(direct ? p.deploy_cert : pending(p.deploy_cert), set.cert_pem);
        if (!direct) by_pending.push_back(&p);
    }
    // One sync for every file, then the names, then the pending ones into place key first.
    files.commit();
    for (const auto* p : by_pending) {
        rename_into_place(pending(p->deploy_key), p->deploy_key);
        rename_into_place(pending(p->deploy_cert), p->deploy_cert);
    }
    for (const auto& dir : dirs) sync_directory(dir);
}

void Deployer::archive_set(const CertificateProfileConfig& p, const ServerMaterial& set,
                           TimePoint now) const {
    fs::path archive = state_dir_ / "profiles" / p.name / "archive";
    std::string stamp = to_iso8601(now);
    std::replace(stamp.begin(), stamp.end(), ':', '-');
    fs::path dir = archive / stamp;
    // Old keys are secrets: a private directory, checked like the rest of the state directory.
    ensure_private_directory(state_dir_, dir);
    write_file_atomic(dir / "key.pem", set.key.to_pem(), kPrivateMode);
    write_file_atomic(dir / "cert.pem", set.cert_pem());
    // Keeps the newest kArchiveKeep sets (their names sort by time).
    std::vector<fs::path> sets;
    for (const auto& entry : fs::directory_iterator(archive)) sets.push_back(entry.path());
    std::sort(sets.begin(), sets.end());
    for (std::size_t i = 0; i + kArchiveKeep < sets.size(); ++i) fs::remove_all(sets[i]);
}

}  // namespace brokertls
