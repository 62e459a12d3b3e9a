// One ACME order, from new-order to the chosen certificate chain.

#include <algorithm>
#include <cctype>
#include <map>

#include "brokertls/crypto/csr.hpp"
#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "issuers/acme_issuer.hpp"

namespace brokertls {

namespace {

// Undoes the solver's work whatever happens after present() was called.
class CleanupGuard {
  public:
    CleanupGuard(ChallengeSolver& solver, const std::vector<ChallengeTask>& tasks)
        : solver_(solver), tasks_(tasks) {}
    ~CleanupGuard() { solver_.cleanup(tasks_); }
    CleanupGuard(const CleanupGuard&) = delete;
    CleanupGuard& operator=(const CleanupGuard&) = delete;

  private:
    ChallengeSolver& solver_;
    const std::vector<ChallengeTask>& tasks_;
};

std::string join_names(const std::vector<AcmeIdentifier>& ids) {
    std::string out;
    for (const auto& id : ids) out += (out.empty() ? "" : ", ") + id.value;
    return out;
}

// How an identifier reads in an order ("*.example.com" for a wildcard), lower-case for DNS names
// (RFC 4343); IP addresses are already canonical on both sides (RFC 8738 §3).
std::string ordered_name(const AcmeIdentifier& id, bool wildcard = false) {
    std::string value = (wildcard ? "*." : "") + id.value;
    if (id.type == "dns")
        std::transform(value.begin(), value.end(), value.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return id.type + ":" + value;
}

// The order's authorizations must cover exactly the names ordered, each once: a challenge is
// never answered for a name we did not ask for (a CA bug or a hostile CA would otherwise get
// us to prove control of something else). A wildcard's authorization names its base domain
// with "wildcard": true (RFC 8555 §7.1.4). Called for every authorization before any
// challenge is presented; `finish` checks that none is missing.
class AuthorizationCheck {
  public:
    AuthorizationCheck(const std::vector<AcmeIdentifier>& ordered, std::string prefix)
        : prefix_(std::move(prefix)) {
        for (const auto& id : ordered) {
            wanted_[ordered_name(id)] = false;
            list_ += (list_.empty() ? "" : ", ") + id.value;
        }
    }
    void check(const std::string& url, const AcmeAuthorization& authz) {
        std::string where = prefix_ + "authorization " + url;
        if (authz.identifier.value.rfind("*.", 0) == 0)
            fail(ErrorKind::Input, where,
                 "names " + printable(authz.identifier.value) +
                     " (an authorization names a wildcard's base domain)");
        std::string name = ordered_name(authz.identifier, authz.wildcard);
        auto found = wanted_.find(name);
        if (found == wanted_.end())
            fail(ErrorKind::Input, where,
                 "names " + printable(name) + ", which was not ordered (ordered: " + list_ +
                     "); no challenge answered");
        if (found->second)
            fail(ErrorKind::Input, where,
                 "names " + printable(name) + " a second time; no challenge answered");
        found->second = true;
    }
    void finish(const std::string& order_url) const {
        for (const auto& [name, seen] : wanted_)
            if (!seen)
                fail(ErrorKind::Input, prefix_ + "order " + order_url,
                     "the CA gave no authorization for " + name + " (ordered: " + list_ + ")");
    }

  private:
    std::string prefix_, list_;
    std::map<std::string, bool> wanted_;  // ordered_name -> an authorization names it
};

AcmeOrder place_order(AcmeClient& client, OrderRequest order_request, const std::string& prefix,
                      const std::function<void(const std::string&)>& log) {
    if (order_request.replaces.empty()) return client.new_order(order_request);
    try {
        return client.new_order(order_request);
    } catch (const AcmeError& e) {
        // Asking again at once would only spend more of a rate limit (and lose its Retry-After).
        if (e.problem().short_type() == "rateLimited" || e.problem().status == 429) throw;
        // A CA without ARI, or one that no longer considers the old certificate replaceable,
        // may refuse the hint; the renewal itself must not fail for that.
        log(prefix + "the CA refused replaces=" + order_request.replaces + " (" + e.what() +
            "): ordering without it");
        order_request.replaces.clear();
        return client.new_order(order_request);
    }
}

}  // namespace

std::vector<Certificate> obtain_certificate(AcmeClient& client, ChallengeSolver& solver,
                                            const PrivateKey& key, const ObtainRequest& request,
                                            const std::function<void(const std::string&)>& log) {
    std::string common_name;
    for (const auto& name : request.names)
        if (name.type == SubjectAltName::Type::Dns) {
            common_name = name.value;
            break;
        }
    auto csr = CertificateRequest::create(key, common_name, request.names);
    return obtain_certificate(client, solver, csr, request, log);
}

std::vector<Certificate> obtain_certificate(AcmeClient& client, ChallengeSolver& solver,
                                            const CertificateRequest& csr,
                                            const ObtainRequest& request,
                                            const std::function<void(const std::string&)>& log) {
    std::string prefix = "certificate profile " + request.profile + ": ";
    TimePoint deadline = request.deadline;
    if (request.names.empty()) fail(ErrorKind::Usage, "profile " + request.profile, "no names");
    OrderRequest order_request;
    for (const auto& name : request.names)
        order_request.identifiers.push_back(to_acme_identifier(name));
    order_request.replaces = request.replaces;
    order_request.profile = request.acme_profile;
    if (!request.acme_profile.empty()) {
        const auto& offered = client.directory().profiles;
        if (std::find(offered.begin(), offered.end(), request.acme_profile) == offered.end()) {
            std::string list;
            for (const auto& p : offered) list += (list.empty() ? "" : ", ") + p;
            fail(ErrorKind::Input, prefix + "acme.profile",
                 "the CA does not offer profile '" + request.acme_profile + "' (" +
                     (list.empty() ? "its directory lists no profiles" : "offered: " + list) + ")");
        }
    }

    AcmeOrder order = place_order(client, order_request, prefix, log);
    log(prefix + "order " + order.url + " for " + join_names(order_request.identifiers));

    std::vector<ChallengeTask> tasks;
    std::vector<AcmeChallenge> challenges;
    std::vector<std::string> pending;
    AuthorizationCheck ordered(order_request.identifiers, prefix);
    for (const auto& url : order.authorizations) {
        AcmeAuthorization authz = client.get_authorization(url);
        ordered.check(url, authz);
        if (authz.status == "valid") continue;  // reused from an earlier order
        std::string name = (authz.wildcard ? "*." : "") + authz.identifier.value;
        if (authz.status != "pending")
            fail(ErrorKind::State, prefix + "authorization for " + name,
                 "status is " + authz.status);
        const AcmeChallenge* challenge = authz.find(solver.type());
        if (!challenge) {
            std::string offered;
            for (const auto& c : authz.challenges)
                offered += (offered.empty() ? "" : ", ") + c.type;
            fail(ErrorKind::State, prefix + "authorization for " + name,
                 "the CA offers no " + solver.type() +
                     " challenge (offered: " + (offered.empty() ? "none" : offered) + ")");
        }
        tasks.push_back(ChallengeTask{request.profile, authz.identifier, authz.wildcard,
                                      challenge->token,
                                      client.key_authorization(challenge->token)});
        challenges.push_back(*challenge);
        pending.push_back(url);
    }
    ordered.finish(order.url);

    if (!tasks.empty()) {
        CleanupGuard guard(solver, tasks);
        // Waiting in present() (an operator, DNS propagation) is not the CA's time: the
        // deadline moves by as much, or a manual order resumed after hours always fails.
        auto presenting = client.clock().now();
        solver.present(tasks);
        deadline += client.clock().now() - presenting;
        log(prefix + std::to_string(tasks.size()) + " " + solver.type() + " challenge(s) ready");
        for (const auto& challenge : challenges) client.respond(challenge);
        for (const auto& url : pending) client.wait_authorization(url, deadline);
        log(prefix + "authorizations valid");
    }

    order = client.finalize(client.get_order(order.url), csr.to_der(), deadline);
    log(prefix + "order valid; downloading " + order.certificate);

    auto chains = client.download_chains(order.certificate);
    std::string pem = AcmeClient::pick_chain(chains, request.preferred_chain);
    auto chain = Certificate::parse_chain(pem, "acme certificate " + order.certificate);
    if (EVP_PKEY_eq(X509_get0_pubkey(chain.front().get()), csr.public_key()) != 1)
        fail(ErrorKind::Input, "acme certificate " + order.certificate,
             "the certificate is not for the CSR's key");
    log(prefix + "certificate serial " + chain.front().serial_hex() + " valid until " +
        to_iso8601(chain.front().not_after()) + " (" + std::to_string(chains.size()) +
        " chain(s) offered)");
    return chain;
}

}  // namespace brokertls
