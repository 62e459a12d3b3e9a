// The ACME account of an issuer: one key and account URL per directory, stored under
// STATE_DIR/accounts/ISSUER/. Accounts of directories used before are kept under
// previous/HASH/ so switching back (production -> staging -> production) finds them again.

#include <nlohmann/json.hpp>

#include <mutex>
#include <optional>

#include "acme/jws.hpp"
#include "brokertls/crypto/digest.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "issuers/acme_issuer.hpp"

namespace brokertls {

namespace fs = std::filesystem;

namespace {

struct StoredAccount {
    std::string directory, url;
};

std::optional<StoredAccount> read_account(const fs::path& path) {
    if (!fs::exists(path)) return std::nullopt;
    auto object = nlohmann::json::parse(read_file(path), nullptr, false);
    if (!object.is_object() || !object.value("directory", nlohmann::json()).is_string() ||
        !object.value("url", nlohmann::json()).is_string())
        fail(ErrorKind::Input, path.string(), "not an account file ({directory, url})");
    return StoredAccount{object["directory"].get<std::string>(), object["url"].get<std::string>()};
}

void write_account(const fs::path& path, const StoredAccount& account) {
    nlohmann::json object{{"directory", account.directory}, {"url", account.url}};
    write_file_atomic(path, object.dump(2) + "\n");
}

// A stable folder name for a directory URL.
std::string directory_hash(const std::string& directory) {
    return sha256_hex(directory).substr(0, 16);
}

void move_account(const fs::path& from, const fs::path& to) {
    ensure_directory(to, 0700);
    for (const char* name : {"key.pem", "account.json"}) {
        if (!fs::exists(from / name)) continue;
        std::error_code ec;
        fs::rename(from / name, to / name, ec);
        if (ec) fail(ErrorKind::Io, (from / name).string(), "cannot move: " + ec.message());
    }
    sync_directory(from);
    sync_directory(to);
}

}  // namespace

void ensure_account(AcmeClient& client, const IssuerConfig& issuer, const fs::path& state_dir,
                    const std::function<void(const std::string&)>& log) {
    // Several profiles of one issuer order at once (max_concurrent_orders): unserialized, each
    // would find no account, create its own and overwrite the others' key and URL.
    static std::mutex account_mutex;
    std::lock_guard lock(account_mutex);
    std::string subject = "issuer " + issuer.name;
    if (issuer.account_key_type == KeyType::Ed25519)
        fail(ErrorKind::Usage, subject,
             "account_key_type ed25519 cannot sign ACME requests (use ecdsa-p256, ecdsa-p384 "
             "or an RSA type)");
    fs::path dir = state_dir / "accounts" / issuer.name;
    fs::path key_path = dir / "key.pem", account_path = dir / "account.json";
    ensure_private_directory(state_dir, dir);

    std::optional<StoredAccount> stored = read_account(account_path);
    if (stored && stored->directory != issuer.directory) {
        fs::path kept = dir / "previous" / directory_hash(issuer.directory);
        move_account(dir, dir / "previous" / directory_hash(stored->directory));
        std::string change =
            subject + ": directory changed from " + stored->directory + " to " + issuer.directory;
        if (fs::exists(kept / "key.pem") && fs::exists(kept / "account.json")) {
            move_account(kept, dir);
            log(change + ": using the account kept for it");
        } else {
            log(change + ": creating a new account");
        }
        stored = read_account(account_path);
    }

    std::optional<PrivateKey> key;
    if (fs::exists(key_path)) key.emplace(PrivateKey::load(key_path));
    if (key && stored) {
        AccountRequest find;
        find.only_return_existing = true;
        try {
            std::string url = client.account(*key, find);
            if (url != stored->url) {
                log(subject + ": account URL changed from " + stored->url + " to " + url);
                write_account(account_path, {issuer.directory, url});
            }
            return;
        } catch (const AcmeError& e) {
            if (e.problem().short_type() != "accountDoesNotExist") throw;
            log(subject + ": the CA no longer knows account " + stored->url +
                ": registering the key again");
        }
    }
    if (!key) {
        key.emplace(PrivateKey::generate(issuer.account_key_type));
        // The key is on disk before the CA knows it, so a crash cannot orphan an account.
        write_file_atomic(key_path, key->to_pem(), kPrivateMode);
    }
    AccountRequest request;
    if (!issuer.email.empty()) request.contact.push_back("mailto:" + issuer.email);
    if (issuer.eab_key_id && issuer.eab_hmac_key)
        request.eab = ExternalAccountBinding{*issuer.eab_key_id, *issuer.eab_hmac_key};
    std::string url = client.account(*key, request);
    write_account(account_path, {issuer.directory, url});
    log(subject + ": account " + url + " at " + issuer.directory);
}

}  // namespace brokertls
