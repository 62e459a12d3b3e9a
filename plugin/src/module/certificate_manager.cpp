#include "brokertls/module/certificate_manager.hpp"
#include "brokertls/renewal/policy.hpp"

#include <algorithm>

#include "brokertls/ca/authority.hpp"
#include "brokertls/error.hpp"
#include "brokertls/issuers/acme_issuer.hpp"  // ensure_private_directory()
#include "brokertls/store/files.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

ServerMaterial read_files_source(const CertificateProfileConfig& p) {
    ServerMaterial m{PrivateKey::load(p.key_file), Certificate::load_chain(p.cert_file)};
    if (!p.chain_file.empty())
        for (auto& c : Certificate::load_chain(p.chain_file)) m.chain.push_back(std::move(c));
    return m;
}

// `log` gets the CA's own warnings (a CA key others may read, an interrupted command undone).
ServerMaterial issue_from_local_ca(const CertificateProfileConfig& p, const fs::path& state_dir,
                                   std::vector<std::string>& log) {
    Passphrase passphrase;
    if (p.ca_passphrase_file) {
        std::string text = read_file(*p.ca_passphrase_file);
        passphrase = text.substr(0, text.find('\n'));
    }
    // Issued into a private staging directory (0700, checked: whoever may write a directory
    // may swap the key in it, so never beside deployed files in a directory others write);
    // only checked material moves on.
    fs::path staging = state_dir / "local-ca" / p.name / "staging";
    ensure_private_directory(state_dir, staging.parent_path());
    // Left by a process killed while issuing: ours (only this profile writes it), and stale.
    std::error_code ec;
    fs::remove_all(staging, ec);
    CertificateAuthority ca(p.ca_dir, passphrase, true, DirectoryLock::Mode::Exclusive);
    for (const auto& warning : ca.warnings())
        log.push_back("certificate profile " + p.name + ": " + warning);
    LeafRequest request{
        CertificateProfile::Server, p.names.front().value, p.name, p.names, 0, p.key_type};
    request.lifetime = p.lifetime;
    auto issued = ca.issue({request}, staging, Overwrite::Allow);
    ServerMaterial m{PrivateKey::load(issued[0].key), Certificate::load_chain(issued[0].chain)};
    fs::remove_all(staging, ec);
    return m;
}

bool same_material(const ServerMaterial& a, const ServerMaterial& b) {
    return a.cert_pem() == b.cert_pem() && EVP_PKEY_eq(a.key.get(), b.key.get()) == 1;
}

}  // namespace

TimePoint CertificateManager::next_due() const {
    TimePoint due = TimePoint::max();
    for (const auto& [name, st] : status_) {
        due = std::min(due, st.retry_at);
        if (st.renew_at != TimePoint{}) due = std::min(due, st.renew_at);
    }
    return due;
}

void CertificateManager::mark_served(TimePoint now) {
    for (auto& [name, st] : status_) {
        if (!st.deployed || st.served_fingerprint == st.fingerprint) continue;
        st.served_fingerprint = st.fingerprint;
        st.served_not_after = st.not_after;
        st.served_since = now;
    }
}

bool CertificateManager::all_deployed() const {
    return std::all_of(status_.begin(), status_.end(),
                       [](const auto& kv) { return kv.second.deployed; });
}

std::vector<fs::path> CertificateManager::source_files(const Config& config) {
    std::vector<fs::path> files;
    for (const auto& [name, p] : config.certificate_profiles) {
        if (p.source != CertificateSource::Files) continue;
        files.push_back(p.key_file);
        files.push_back(p.cert_file);
        if (!p.chain_file.empty()) files.push_back(p.chain_file);
    }
    return files;
}

bool CertificateManager::needs_check(const CertificateProfileConfig& p, TimePoint now,
                                     const std::vector<fs::path>& changed) const {
    auto checked = checked_.find(p.name);
    if (checked == checked_.end() || !(checked->second == p)) return true;
    const Status& st = status_.at(p.name);
    if (now >= st.retry_at) return true;
    if (p.source == CertificateSource::LocalCa)
        return st.renew_at != TimePoint{} && now >= st.renew_at;
    return std::any_of(changed.begin(), changed.end(), [&](const fs::path& f) {
        return f == p.key_file || f == p.cert_file || (!p.chain_file.empty() && f == p.chain_file);
    });
}

CertificateManager::Result CertificateManager::refresh(const Config& config, TimePoint now,
                                                       bool force,
                                                       const std::vector<fs::path>& changed) {
    Result result;
    for (auto it = status_.begin(); it != status_.end();) {
        auto p = config.certificate_profiles.find(it->first);
        if (p != config.certificate_profiles.end() && p->second.source != CertificateSource::Acme) {
            ++it;
            continue;
        }
        checked_.erase(it->first);
        refused_.erase(it->first);
        it = status_.erase(it);
    }
    for (const auto& [name, profile] : config.certificate_profiles) {
        if (profile.source == CertificateSource::Acme) continue;  // the AcmeRenewer's
        if (!force && !needs_check(profile, now, changed)) continue;
        checked_.insert_or_assign(name, profile);
        ++result.checked;
        Status& st = status_[name];
        std::optional<std::string> error;
        try {
            error = refresh_profile(profile, config.state_dir, now, force, result);
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (error) {
            result.ok = false;
            st.last_ok = false;
            st.last_result = *error;
            st.retry_at = now + retry_after;
            result.log.push_back("certificate profile " + name +
                                 ": new certificate refused, the deployed one stays: " + *error);
        }
    }
    return result;
}

std::optional<std::string> CertificateManager::refresh_profile(const CertificateProfileConfig& p,
                                                               const fs::path& state_dir,
                                                               TimePoint now, bool force,
                                                               Result& result) {
    Status& st = status_[p.name];
    finish_interrupted_deploy(p.deploy_cert, p.deploy_key);  // we are this profile's one writer
    std::optional<ServerMaterial> deployed = read_deployed(p.deploy_cert, p.deploy_key);
    bool deployed_ok = deployed && check_server_material(*deployed, p.names, now).empty();

    std::optional<ServerMaterial> next;
    if (p.source == CertificateSource::Files) {
        ServerMaterial source = read_files_source(p);
        if (deployed_ok && same_material(source, *deployed)) {
            next.reset();
        } else {
            if (std::string why = check_server_material(source, p.names, now); !why.empty()) {
                // Log a refused certificate once, not at every poll.
                std::string fp = source.chain.empty() ? "" : source.leaf().fingerprint_sha256();
                if (refused_[p.name] == fp) {
                    // Already refused and logged: look again later (a certificate not yet
                    // valid becomes valid), quietly, and sooner when the files change.
                    st.retry_at = now + retry_after;
                    return std::nullopt;
                }
                refused_[p.name] = fp;
                return p.cert_file.string() + ": " + why;
            }
            next = std::move(source);
        }
    } else {
        bool due = !deployed_ok || force ||
                   now >= renewal_time(deployed->leaf().not_before(), deployed->leaf().not_after(),
                                       p.renew_before);
        if (due) {
            ServerMaterial issued = issue_from_local_ca(p, state_dir, result.log);
            if (std::string why = check_server_material(issued, p.names, now); !why.empty())
                return "local CA issued: " + why;
            next = std::move(issued);
        }
    }

    if (next) {
        deploy_material(*next, p.deploy_cert, p.deploy_key);
        refused_.erase(p.name);
        result.deployed = true;
        result.log.push_back("certificate profile " + p.name + ": deployed " +
                             next->leaf().subject() + " (sha256 " +
                             next->leaf().fingerprint_sha256() + ", until " +
                             to_iso8601(next->leaf().not_after()) + ")");
        deployed = std::move(next);
        st.last_change = now;
        st.last_result = "deployed";
    } else if (st.last_result == "not yet checked") {
        st.last_result = "up to date";
    }
    st.last_ok = true;
    st.deployed = true;
    st.retry_at = TimePoint::max();
    st.subject = deployed->leaf().subject();
    st.fingerprint = deployed->leaf().fingerprint_sha256();
    st.not_after = deployed->leaf().not_after();
    st.renew_at = p.source == CertificateSource::LocalCa
                      ? renewal_time(deployed->leaf().not_before(), deployed->leaf().not_after(),
                                     p.renew_before)
                      : TimePoint{};
    return std::nullopt;
}

}  // namespace brokertls
