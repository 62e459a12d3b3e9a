#pragma once
// An RFC 8555 client: directory, nonces (reused from Replay-Nonce, a badNonce answer retried),
// accounts (find or create, contact, terms, External Account Binding), orders, authorizations,
// challenges, finalize, certificate download with alternate chains, revocation, and ARI
// (RFC 9773 renewalInfo). Blocking calls, one client per thread; waits go through `Sleeper`
// so a stopping module can interrupt them and tests need not wait, and the time (deadlines,
// Retry-After) is read from the `Clock` it is given.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "acme/http.hpp"
#include "acme/problem.hpp"
#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/names.hpp"
#include "brokertls/crypto/time.hpp"
#include "brokertls/time/clock.hpp"

namespace brokertls {

struct AcmeDirectory {
    std::string new_nonce, new_account, new_order, revoke_cert, key_change;
    std::string renewal_info;  // "" when the CA has no ARI
    std::string terms_of_service;
    bool external_account_required = false;
    std::vector<std::string> profiles;  // names from meta.profiles (draft-aaron-acme-profiles)
};

struct ExternalAccountBinding {
    std::string key_id;
    std::string hmac_key;  // base64url, as CAs hand it out
};

struct AccountRequest {
    std::vector<std::string> contact;  // "mailto:ops@example.com"
    bool agree_to_terms = true;
    std::optional<ExternalAccountBinding> eab;
    bool only_return_existing = false;
};

struct AcmeIdentifier {
    std::string type;  // "dns" or "ip" (RFC 8738)
    std::string value;
    bool operator==(const AcmeIdentifier&) const = default;
};
// "dns" for DNS names (also wildcards), "ip" for addresses; throws Error(Usage) otherwise.
AcmeIdentifier to_acme_identifier(const SubjectAltName& name);

struct AcmeChallenge {
    std::string type;  // "http-01", "dns-01", "tls-alpn-01", ...
    std::string url;
    std::string token;
    std::string status;  // "pending", "processing", "valid", "invalid"
    std::optional<AcmeProblem> error;
};

struct AcmeAuthorization {
    std::string url;
    AcmeIdentifier identifier;
    std::string status;  // "pending", "valid", "invalid", "deactivated", "expired", "revoked"
    bool wildcard = false;
    std::vector<AcmeChallenge> challenges;
    const AcmeChallenge* find(const std::string& type) const;
};

struct AcmeOrder {
    std::string url;
    std::string status;  // "pending", "ready", "processing", "valid", "invalid"
    std::vector<AcmeIdentifier> identifiers;
    std::vector<std::string> authorizations;
    std::string finalize;
    std::string certificate;  // set once valid
    std::optional<AcmeProblem> error;
};

struct OrderRequest {
    std::vector<AcmeIdentifier> identifiers;
    std::string replaces;  // ARI certificate id of the certificate this renews; "" for none
    std::string profile;   // a directory meta.profiles name; "" for the CA's default
};

struct RenewalInfo {
    TimePoint window_start, window_end;
    std::string explanation_url;
    std::optional<TimePoint> retry_after;
};

// Interruptible waiting: returns false when the wait was cut short (the module is stopping);
// the client then throws Error(State) "stopped".
using Sleeper = std::function<bool(std::chrono::milliseconds)>;

class AcmeClient {
  public:
    AcmeClient(HttpTransport& transport, std::string directory_url, const Clock& clock,
               Sleeper sleeper);

    const AcmeDirectory& directory();  // fetched on first use

    // Registers `key` (or finds its existing account when only_return_existing) and remembers
    // the account URL for the calls below; returns it.
    std::string account(const PrivateKey& key, const AccountRequest& request);
    // Uses an account URL found earlier (stored beside the key) without a round trip.
    void use_account(const PrivateKey& key, std::string account_url);
    const std::string& account_url() const { return kid_; }
    const Clock& clock() const { return clock_; }

    AcmeOrder new_order(const OrderRequest& request);
    AcmeOrder get_order(const std::string& url);
    AcmeAuthorization get_authorization(const std::string& url);
    // Tells the CA the challenge is ready to be validated.
    AcmeChallenge respond(const AcmeChallenge& challenge);
    // Polls until the authorization leaves "pending" (Retry-After honoured; otherwise 150 ms
    // growing ×1.5 to 2 s), or `deadline`. Throws AcmeError with the challenge's problem when it
    // became invalid.
    AcmeAuthorization wait_authorization(const std::string& url, TimePoint deadline);
    // Sends the CSR (DER) and polls until the order is "valid"; throws on "invalid" or deadline.
    AcmeOrder finalize(const AcmeOrder& order, const std::string& csr_der, TimePoint deadline);

    // The certificate chains (PEM, leaf first) at `certificate_url`: the default first, then
    // every Link rel="alternate" one.
    std::vector<std::string> download_chains(const std::string& certificate_url);
    // The chain whose top certificate's issuer CN (or its own subject CN) equals `issuer_cn`;
    // the first (default) one otherwise or when issuer_cn is empty.
    static std::string pick_chain(const std::vector<std::string>& chains,
                                  const std::string& issuer_cn);

    // revokeCert signed by the account key (reason: RFC 5280 code, 0 = unspecified).
    void revoke(const Certificate& certificate, int reason = 0);

    // RFC 9773: the certificate's ARI id (base64url(AKI) "." base64url(serial)), and its
    // renewal window; nullopt when the directory has no renewalInfo.
    static std::string ari_cert_id(const Certificate& certificate);
    std::optional<RenewalInfo> renewal_info(const Certificate& certificate);

    // key authorization = token "." thumbprint(account key)
    std::string key_authorization(const std::string& token) const;

    static constexpr int bad_nonce_retries = 5;

  private:
    // A JWS-signed POST (kid, or jwk when use_jwk) with badNonce retries; throws AcmeError
    // "acme WHAT URL: problem" on an error answer. An empty payload is POST-as-GET.
    HttpResponse post(std::string_view what, const std::string& url, const std::string& payload,
                      bool use_jwk = false, const std::string& accept = "");
    // An unauthenticated GET (directory, renewalInfo); throws AcmeError on an error answer.
    HttpResponse get(std::string_view what, const std::string& url);
    std::string nonce();
    // RFC 8555 §6.1: ACME is HTTPS. Every URL is checked before a request goes to it (the
    // directory's entries, Location headers, order, authorization, challenge, finalize,
    // certificate and Link alternate URLs all come from the CA); plain http only to this host
    // while the directory itself is http on this host (a local test CA). Other origins are
    // allowed (RFC 8555 does not require one). Throws Error(Input) "acme WHAT URL: reason".
    void require_https(std::string_view what, const std::string& url) const;
    void remember_nonce(const HttpResponse& response);
    const PrivateKey& key(std::string_view what) const;
    // Waits before polling again: Retry-After of `last` when it has one, else `backoff`
    // (grown ×1.5 up to 2 s). Throws Error(State) "WHAT: STATE at the deadline" past
    // `deadline` and "WHAT: stopped" when the sleeper says stop.
    void pause(const HttpResponse& last, std::chrono::milliseconds& backoff, TimePoint deadline,
               const std::string& what, const std::string& state);

    HttpTransport& transport_;
    std::string directory_url_;
    const Clock& clock_;
    Sleeper sleeper_;
    std::optional<AcmeDirectory> directory_;
    std::optional<PrivateKey> key_;
    std::string kid_;
    std::string nonce_;
};

}  // namespace brokertls
