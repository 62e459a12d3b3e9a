// AcmeClient: the directory, nonces, signed requests and the account.

#include "acme/client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <utility>

#include "acme/jws.hpp"
#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "wire.hpp"

namespace brokertls {

using acme_wire::json;

namespace {

std::string context(std::string_view what, const std::string& url) {
    return "acme " + std::string(what) + " " + url;
}

struct UrlParts {
    std::string scheme, host;  // lower-case; host with brackets for IPv6 ("[::1]")
};

// Parsed by libcurl, the parser the transport uses, so a trick URL ("http://127.0.0.1@host/")
// is read here as it will be requested. nullopt when it does not parse.
std::optional<UrlParts> parse_url(const std::string& url) {
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), curl_url_cleanup);
    if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
        return std::nullopt;
    UrlParts parts;
    for (auto [part, out] :
         {std::pair{CURLUPART_SCHEME, &parts.scheme}, std::pair{CURLUPART_HOST, &parts.host}}) {
        char* text = nullptr;
        if (curl_url_get(parsed.get(), part, &text, 0) != CURLUE_OK) return std::nullopt;
        *out = text;
        curl_free(text);
        std::transform(out->begin(), out->end(), out->begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
    return parts;
}

// The hosts a plain-http test CA may use (the configuration allows the same three).
bool loopback_http(const std::optional<UrlParts>& url) {
    return url && url->scheme == "http" &&
           (url->host == "127.0.0.1" || url->host == "localhost" || url->host == "[::1]");
}

}  // namespace

AcmeClient::AcmeClient(HttpTransport& transport, std::string directory_url, const Clock& clock,
                       Sleeper sleeper)
    : transport_(transport),
      directory_url_(std::move(directory_url)),
      clock_(clock),
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

void AcmeClient::require_https(std::string_view what, const std::string& url) const {
    auto parts = parse_url(url);
    if (parts && parts->scheme == "https") return;
    if (loopback_http(parts) && loopback_http(parse_url(directory_url_))) return;
    fail(ErrorKind::Input, context(what, printable(url)),
         !parts ? "not a URL"
                : "not an https URL (ACME needs https; http only to 127.0.0.1, localhost or [::1] "
                  "when the directory is there too)");
}

void AcmeClient::remember_nonce(const HttpResponse& response) {
    if (auto fresh = response.header("replay-nonce"); fresh && !fresh->empty()) nonce_ = *fresh;
}

std::string AcmeClient::nonce() {
    if (!nonce_.empty()) return std::exchange(nonce_, "");
    const std::string& url = directory().new_nonce;
    require_https("newNonce", url);
    HttpResponse response = transport_.send({"HEAD", url, {}, ""});
    remember_nonce(response);
    if (nonce_.empty()) {
        if (response.status >= 400)
            throw AcmeError(context("newNonce", url), parse_problem(response, clock_.now()));
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
    require_https(what, url);
    HttpResponse response = transport_.send({"GET", url, {}, ""});
    remember_nonce(response);
    if (response.status >= 400)
        throw AcmeError(context(what, url), parse_problem(response, clock_.now()));
    return response;
}

HttpResponse AcmeClient::post(std::string_view what, const std::string& url,
                              const std::string& payload, bool use_jwk, const std::string& accept) {
    const PrivateKey& signer = key(what);
    if (!use_jwk && kid_.empty())
        fail(ErrorKind::State, context(what, url),
             "no account URL: call account() or use_account() first");
    require_https(what, url);
    for (int attempt = 0;; ++attempt) {
        HttpRequest request{"POST", url, {{"content-type", "application/jose+json"}}, ""};
        if (!accept.empty()) request.headers.emplace_back("accept", accept);
        request.body = jws_sign(signer, use_jwk ? "" : kid_, nonce(), url, payload);
        HttpResponse response = transport_.send(request);
        remember_nonce(response);
        if (response.status < 400) return response;
        AcmeProblem problem = parse_problem(response, clock_.now());
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
    // The account URL is the "kid" of every later request, and requested by key rollover.
    require_https("newAccount Location", *location);
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
