// AcmeClient: the directory, nonces, signed requests and the account.

#include "brokertls/acme/client.hpp"

#include <utility>

#include "brokertls/acme/jws.hpp"
#include "brokertls/error.hpp"
#include "wire.hpp"

namespace brokertls {

using acme_wire::json;

namespace {

std::string context(std::string_view what, const std::string& url) {
    return "acme " + std::string(what) + " " + url;
}

}  // namespace

AcmeClient::AcmeClient(HttpTransport& transport, std::string directory_url, Sleeper sleeper)
    : transport_(transport),
      directory_url_(std::move(directory_url)),
      sleeper_(std::move(sleeper)) {}

const AcmeDirectory& AcmeClient::directory() {
    if (directory_) return *directory_;
    HttpResponse response = get("directory", directory_url_);
    std::string what = context("directory", directory_url_);
    json object = acme_wire::parse_object(response, what);
    AcmeDirectory dir;
    dir.new_nonce = acme_wire::required_string(object, "newNonce", what);
    dir.new_account = acme_wire::required_string(object, "newAccount", what);
    dir.new_order = acme_wire::required_string(object, "newOrder", what);
    dir.revoke_cert = acme_wire::string_member(object, "revokeCert", what);
    dir.key_change = acme_wire::string_member(object, "keyChange", what);
    dir.renewal_info = acme_wire::string_member(object, "renewalInfo", what);
    if (auto meta = object.find("meta"); meta != object.end() && meta->is_object()) {
        dir.terms_of_service = acme_wire::string_member(*meta, "termsOfService", what);
        if (auto eab = meta->find("externalAccountRequired"); eab != meta->end())
            dir.external_account_required = eab->is_boolean() && eab->get<bool>();
        if (auto profiles = meta->find("profiles");
            profiles != meta->end() && profiles->is_object())
            for (const auto& item : profiles->items()) dir.profiles.push_back(item.key());
    }
    directory_ = std::move(dir);
    return *directory_;
}

void AcmeClient::remember_nonce(const HttpResponse& response) {
    if (auto fresh = response.header("replay-nonce"); fresh && !fresh->empty()) nonce_ = *fresh;
}

std::string AcmeClient::nonce() {
    if (!nonce_.empty()) return std::exchange(nonce_, "");
    const std::string& url = directory().new_nonce;
    HttpResponse response = transport_.send({"HEAD", url, {}, ""});
    remember_nonce(response);
    if (nonce_.empty()) {
        if (response.status >= 400)
            throw AcmeError(context("newNonce", url), parse_problem(response));
        fail(ErrorKind::Input, context("newNonce", url),
             "no Replay-Nonce header (HTTP " + std::to_string(response.status) + ")");
    }
    return std::exchange(nonce_, "");
}

const PrivateKey& AcmeClient::key(std::string_view what) const {
    if (!key_)
        fail(ErrorKind::State, "acme " + std::string(what),
             "no account: call account() or use_account() first");
    return *key_;
}

HttpResponse AcmeClient::get(std::string_view what, const std::string& url) {
    HttpResponse response = transport_.send({"GET", url, {}, ""});
    remember_nonce(response);
    if (response.status >= 400) throw AcmeError(context(what, url), parse_problem(response));
    return response;
}

HttpResponse AcmeClient::post(std::string_view what, const std::string& url,
                              const std::string& payload, bool use_jwk, const std::string& accept) {
    const PrivateKey& signer = key(what);
    if (!use_jwk && kid_.empty())
        fail(ErrorKind::State, context(what, url),
             "no account URL: call account() or use_account() first");
    for (int attempt = 0;; ++attempt) {
        HttpRequest request{"POST", url, {{"content-type", "application/jose+json"}}, ""};
        if (!accept.empty()) request.headers.emplace_back("accept", accept);
        request.body = jws_sign(signer, use_jwk ? "" : kid_, nonce(), url, payload);
        HttpResponse response = transport_.send(request);
        remember_nonce(response);
        if (response.status < 400) return response;
        AcmeProblem problem = parse_problem(response);
        // RFC 8555 §6.5: a badNonce answer carries a fresh nonce; sign again with it.
        if (problem.short_type() == "badNonce" && attempt < bad_nonce_retries) continue;
        throw AcmeError(context(what, url), std::move(problem));
    }
}

std::string AcmeClient::account(const PrivateKey& account_key, const AccountRequest& request) {
    const AcmeDirectory& dir = directory();
    jws_algorithm(account_key);  // an unusable key type fails before any request
    json payload = json::object();
    if (request.only_return_existing) {
        payload["onlyReturnExisting"] = true;
    } else {
        if (!request.contact.empty()) payload["contact"] = request.contact;
        if (request.agree_to_terms) payload["termsOfServiceAgreed"] = true;
        if (request.eab) {
            payload["externalAccountBinding"] = json::parse(eab_binding(
                request.eab->key_id, request.eab->hmac_key, account_key, dir.new_account));
        } else if (dir.external_account_required) {
            fail(ErrorKind::Usage, context("newAccount", dir.new_account),
                 "the CA requires External Account Binding (eab_key_id and eab_hmac_key)");
        }
    }
    key_.emplace(PrivateKey::parse(account_key.to_der(), "account key"));
    kid_.clear();
    HttpResponse response = post("newAccount", dir.new_account, payload.dump(), true);
    auto location = response.header("location");
    if (!location || location->empty())
        fail(ErrorKind::Input, context("newAccount", dir.new_account),
             "no Location header (the account URL) in the answer");
    kid_ = *location;
    return kid_;
}

void AcmeClient::use_account(const PrivateKey& account_key, std::string account_url) {
    jws_algorithm(account_key);
    key_.emplace(PrivateKey::parse(account_key.to_der(), "account key"));
    kid_ = std::move(account_url);
}

std::string AcmeClient::key_authorization(const std::string& token) const {
    return token + "." + jwk_thumbprint(key("key authorization"));
}

}  // namespace brokertls
