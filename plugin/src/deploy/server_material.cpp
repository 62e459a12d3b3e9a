#include "brokertls/deploy/server_material.hpp"

#include <algorithm>
#include <cctype>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

bool san_covers(const SubjectAltName& san, const SubjectAltName& wanted) {
    if (san.type != wanted.type) return false;
    if (san.type != SubjectAltName::Type::Dns) return san.value == wanted.value;
    if (iequals(san.value, wanted.value)) return true;
    if (san.value.rfind("*.", 0) != 0) return false;
    size_t dot = wanted.value.find('.');
    return dot != std::string::npos && dot > 0 &&
           iequals(san.value.substr(1), wanted.value.substr(dot));
}

std::string check_server_material(const ServerMaterial& m, const std::vector<SubjectAltName>& names,
                                  TimePoint now) {
    if (m.chain.empty()) return "no certificate";
    const Certificate& leaf = m.leaf();
    if (!leaf.matches_key(m.key)) return "the private key does not match the certificate";
    if (now < leaf.not_before())
        return "the certificate is not valid before " + to_iso8601(leaf.not_before());
    if (now > leaf.not_after()) return "the certificate expired on " + to_iso8601(leaf.not_after());
    if (leaf.is_ca()) return "the certificate is a CA certificate";
    if (leaf.has_extended_key_usage()) {
        auto eku = leaf.extended_key_usage();
        if (std::find(eku.begin(), eku.end(), "serverAuth") == eku.end())
            return "the certificate's EKU does not allow serverAuth";
    }
    for (size_t i = 0; i + 1 < m.chain.size(); ++i)
        if (!m.chain[i].signed_by(m.chain[i + 1]))
            return "the chain is broken: '" + m.chain[i].subject() + "' is not signed by '" +
                   m.chain[i + 1].subject() + "'";
    auto sans = leaf.subject_alt_names();
    for (const auto& wanted : names)
        if (std::none_of(sans.begin(), sans.end(),
                         [&](const SubjectAltName& s) { return san_covers(s, wanted); }))
            return "the certificate does not cover " + wanted.to_string();
    return "";
}

namespace {

// A deploy writes the key and the certificate under these names first, then renames the key and
// then the certificate into place.
std::filesystem::path pending(const std::filesystem::path& path) {
    return path.string() + ".brokertls-new";
}

void rename_into_place(const std::filesystem::path& from, const std::filesystem::path& to) {
    std::error_code ec;
    std::filesystem::rename(from, to, ec);
    if (ec)
        fail(ErrorKind::Io, to.string(), "cannot rename " + from.string() + ": " + ec.message());
    sync_directory(to.parent_path());
}

// write_file_atomic's temporary files for `target` (".NAME.tmp-HEX") and for its pending name,
// left by a process killed while writing. Only this profile's deploy writes these names.
void remove_temp_files(const std::filesystem::path& target) {
    std::error_code ec;
    const std::string ours[] = {"." + target.filename().string() + ".tmp-",
                                "." + pending(target).filename().string() + ".tmp-"};
    for (const auto& entry : std::filesystem::directory_iterator(target.parent_path(), ec)) {
        std::string name = entry.path().filename().string();
        for (const auto& prefix : ours)
            if (name.rfind(prefix, 0) == 0) std::filesystem::remove(entry.path(), ec);
    }
}

}  // namespace

void finish_interrupted_deploy(const std::filesystem::path& cert,
                               const std::filesystem::path& key) {
    remove_temp_files(cert);
    remove_temp_files(key);
    std::error_code ec;
    bool new_cert = std::filesystem::exists(pending(cert), ec);
    bool new_key = std::filesystem::exists(pending(key), ec);
    if (!new_cert && !new_key) return;
    if (new_cert) {
        try {
            ServerMaterial m{PrivateKey::load(new_key ? pending(key) : key),
                             Certificate::load_chain(pending(cert))};
            if (!m.chain.empty() && m.leaf().matches_key(m.key)) {
                if (new_key) rename_into_place(pending(key), key);
                rename_into_place(pending(cert), cert);
                return;
            }
        } catch (const Error&) {
            // Not a usable pair: dropped below.
        }
    }
    std::filesystem::remove(pending(key), ec);
    std::filesystem::remove(pending(cert), ec);
}

std::optional<ServerMaterial> read_deployed(const std::filesystem::path& cert,
                                            const std::filesystem::path& key) {
    try {
        if (!std::filesystem::exists(cert) || !std::filesystem::exists(key)) return std::nullopt;
        return ServerMaterial{PrivateKey::load(key), Certificate::load_chain(cert)};
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

void deploy_material(const ServerMaterial& material, const std::filesystem::path& cert,
                     const std::filesystem::path& key) {
    // The deploy directories may be new on a first start.
    ensure_directory(key.parent_path());
    ensure_directory(cert.parent_path());
    finish_interrupted_deploy(cert, key);
    // Both or neither: a new key beside the old certificate is a pair the broker cannot load.
    // Nothing in place changes until both new files are durable; a failure before the renames
    // leaves the deployed pair as it was.
    try {
        write_file_atomic(pending(key), material.key.to_pem(), kPrivateMode);
        write_file_atomic(pending(cert), material.cert_pem());
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove(pending(key), ec);
        std::filesystem::remove(pending(cert), ec);
        throw;
    }
    rename_into_place(pending(key), key);
    rename_into_place(pending(cert), cert);
}

}  // namespace brokertls
