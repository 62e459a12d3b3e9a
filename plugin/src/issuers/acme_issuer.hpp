#pragma once
// Obtaining one certificate from an ACME CA: the account (stored and reused), one order with
// its challenges answered through a ChallengeSolver, finalize with a CSR from the profile's
// key, and the preferred chain.

#include <filesystem>
#include <string>
#include <vector>

#include "acme/client.hpp"
#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/key.hpp"
#include "challenges/solver.hpp"
#include "config/config.hpp"

namespace brokertls {

// The account of an issuer at its current directory, kept under
// STATE_DIR/accounts/ISSUER/: key.pem (0600) and account.json {directory, url}. When the
// issuer's directory changed (staging -> production), a new account is created for the new
// directory; `log` says so. Registers the account on `client` (use_account or account()).
void ensure_account(AcmeClient& client, const IssuerConfig& issuer,
                    const std::filesystem::path& state_dir,
                    const std::function<void(const std::string&)>& log);

struct ObtainRequest {
    std::string profile;
    std::vector<SubjectAltName> names;  // DNS (wildcards allowed with dns-01) and IP names
    std::string preferred_chain;
    std::string acme_profile;
    std::string replaces;  // ARI id of the certificate being renewed ("" = none)
    TimePoint deadline;    // for the CA's part: time spent in the solver's present() is added
};

// Runs one order to a certificate chain (leaf first) for `key`. A CA rejecting `replaces` is
// retried once without it (not when it answers rateLimited / 429). Challenges are always cleaned
// up. Throws AcmeError (the CA's problem) or Error.
std::vector<Certificate> obtain_certificate(AcmeClient& client, ChallengeSolver& solver,
                                            const PrivateKey& key, const ObtainRequest& request,
                                            const std::function<void(const std::string&)>& log);
// The same for a CSR made elsewhere (brokertls-service's clients): the certificate must be for
// the CSR's key; the CSR's names are not read (request.names are ordered).
std::vector<Certificate> obtain_certificate(AcmeClient& client, ChallengeSolver& solver,
                                            const CertificateRequest& csr,
                                            const ObtainRequest& request,
                                            const std::function<void(const std::string&)>& log);

}  // namespace brokertls
