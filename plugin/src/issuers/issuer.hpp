#pragma once
// Where a certificate profile's key and chain come from. An Issuer produces new material for a
// profile and nothing else: when to ask is the scheduler's (the renewal policy), checking,
// archiving and deploying is the deployer's, telling the world is the event path's.
// Implementations: files (the operator's files), local-ca (a brokertls-ca directory), acme (an
// ACME CA); the central issuing service adds one.

#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "acme/client.hpp"
#include "acme/http.hpp"
#include "brokertls/time/clock.hpp"
#include "challenges/solver.hpp"
#include "config/config.hpp"
#include "deploy/server_material.hpp"

namespace brokertls {

// What an issuer is told for one request.
struct IssueContext {
    IssueContext(const CertificateProfileConfig& p, const std::filesystem::path& dir)
        : profile(p), state_dir(dir) {}
    const CertificateProfileConfig& profile;
    const std::filesystem::path& state_dir;
    // The usable material deployed now (null: none, or a temporary stand-in).
    const ServerMaterial* deployed = nullptr;
    std::string last_directory;  // acme: the directory URL the deployed material came from
    std::string replaces;        // acme: ARI id of the certificate this one replaces
    TimePoint now;
    std::stop_token stop;
    // Progress for the event path (type, message) and plain lines for the log.
    std::function<void(const std::string& type, const std::string& message)> event;
    std::function<void(const std::string& line)> log;
};

// A CA's own suggestion of when to renew (ACME ARI, RFC 9773).
struct RenewalWindow {
    RenewalInfo info;
    std::string replaces;  // the id a replacement order names
};

class Issuer {
  public:
    virtual ~Issuer() = default;
    // New material for ctx.profile. Throws Error (AcmeError for a CA's problem).
    virtual ServerMaterial issue(const IssueContext& ctx) = 0;
    // Where issued material comes from, to name it when it is refused ("PATH: reason").
    virtual std::string origin(const CertificateProfileConfig& profile) const = 0;
    // True when the material is whatever the source holds right now (files): every check takes
    // it, and the deployer finds whether it is new. Otherwise material is issued when the
    // renewal policy says so.
    virtual bool mirrors_source() const { return false; }
    // The CA's renewal window for the deployed certificate, when it offers one. Throws when it
    // could not be asked (the lifetime decides then).
    virtual std::optional<RenewalWindow> renewal_window(const IssueContext&) {
        return std::nullopt;
    }
    // Why a renewal is due although the policy does not say so ("" when not): acme, when the
    // issuer's directory changed since the deployed certificate was obtained.
    virtual std::string due_anyway(const IssueContext&) const { return ""; }
    // Kept in the order of the profile's work: a forced renewal may be refused.
    virtual bool talks_to_ca() const { return false; }
};

// The operator's key and certificate files (files.key, files.cert, files.chain).
std::shared_ptr<Issuer> make_files_issuer();
// A brokertls-ca directory (local_ca.dir), its CA key read with local_ca.passphrase_file.
std::shared_ptr<Issuer> make_local_ca_issuer();

using TransportFactory =
    std::function<std::unique_ptr<HttpTransport>(const IssuerConfig&, std::stop_token)>;
// An ACME CA: the account under STATE_DIR/accounts/ISSUER, one order per request, challenges
// answered by `solver`. `transports` gives an HTTP transport per request (libcurl with the
// issuer's ca_bundle by default), `clock` the time to wait with between polls.
std::shared_ptr<Issuer> make_acme_issuer(IssuerConfig issuer,
                                         std::shared_ptr<ChallengeSolver> solver,
                                         TransportFactory transports, Clock& clock,
                                         std::chrono::seconds order_timeout);

// brokertls-service (`source: service`): the key is made here and never leaves the host; the CSR
// goes to the service's /v1 API. `transports` gives an HTTP transport per request (libcurl
// with the profile's service.ca_bundle by default).
using ServiceTransportFactory =
    std::function<std::unique_ptr<HttpTransport>(const CertificateProfileConfig&, std::stop_token)>;
std::shared_ptr<Issuer> make_service_issuer(ServiceTransportFactory transports, Clock& clock);

// libcurl with the issuer's ca_bundle, aborting when `stop` is requested.
std::unique_ptr<HttpTransport> default_transport(const IssuerConfig& issuer, std::stop_token stop);

}  // namespace brokertls
