// The Issuer of `source: acme` profiles: an account, then one order per request.

#include "issuers/acme_issuer.hpp"
#include "issuers/issuer.hpp"

namespace brokertls {

namespace {

std::string names_text(const std::vector<SubjectAltName>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n.value;
    return out;
}

class AcmeIssuer final : public Issuer {
  public:
    AcmeIssuer(IssuerConfig issuer, std::shared_ptr<ChallengeSolver> solver,
               TransportFactory transports, Clock& clock, std::chrono::seconds order_timeout)
        : issuer_(std::move(issuer)),
          solver_(std::move(solver)),
          transports_(std::move(transports)),
          clock_(clock),
          order_timeout_(order_timeout) {}

    bool talks_to_ca() const override { return true; }

    std::optional<RenewalWindow> renewal_window(const IssueContext& ctx) override {
        if (!ctx.deployed) return std::nullopt;
        auto transport = transports_(issuer_, ctx.stop);
        AcmeClient client = make_client(*transport, ctx.stop);
        const Certificate& leaf = ctx.deployed->leaf();
        auto info = client.renewal_info(leaf);
        if (!info) return std::nullopt;
        return RenewalWindow{*info, AcmeClient::ari_cert_id(leaf)};
    }

    std::string due_anyway(const IssueContext& ctx) const override {
        if (ctx.deployed && !ctx.last_directory.empty() && ctx.last_directory != issuer_.directory)
            return "the issuer's directory changed from " + ctx.last_directory;
        return "";
    }

    std::string origin(const CertificateProfileConfig&) const override {
        return "the CA's certificate is not deployed";
    }

    ServerMaterial issue(const IssueContext& ctx) override {
        const auto& profile = ctx.profile;
        bool manual = issuer_.challenge.type == ChallengeConfig::Type::Dns01 &&
                      issuer_.challenge.provider == ChallengeConfig::DnsProvider::Manual;
        if (manual && ctx.deployed)
            ctx.event("expiring",
                      "the certificate expires at " + to_iso8601(ctx.deployed->leaf().not_after()) +
                          " and this profile renews only with the operator's help (manual dns-01)");
        std::string why = due_anyway(ctx);
        ctx.event("obtaining", "ordering a certificate for " + names_text(profile.names) +
                                   " from " + issuer_.directory +
                                   (why.empty() ? "" : " (" + why + ")"));
        auto transport = transports_(issuer_, ctx.stop);
        AcmeClient client = make_client(*transport, ctx.stop);
        // ensure_account and obtain_certificate name the issuer or profile in their lines.
        ensure_account(client, issuer_, ctx.state_dir, ctx.log);
        PrivateKey key = PrivateKey::generate(profile.key_type);
        ObtainRequest request{profile.name,         profile.names, profile.preferred_chain,
                              profile.acme_profile, ctx.replaces,  ctx.now + order_timeout_};
        auto chain = obtain_certificate(client, *solver_, key, request, ctx.log);
        return ServerMaterial{std::move(key), std::move(chain)};
    }

  private:
    AcmeClient make_client(HttpTransport& transport, std::stop_token stop) {
        return AcmeClient(
            transport, issuer_.directory, clock_,
            [this, stop](std::chrono::milliseconds d) { return clock_.sleep_for(d, stop); });
    }

    IssuerConfig issuer_;
    std::shared_ptr<ChallengeSolver> solver_;
    TransportFactory transports_;
    Clock& clock_;
    std::chrono::seconds order_timeout_;
};

}  // namespace

std::shared_ptr<Issuer> make_acme_issuer(IssuerConfig issuer,
                                         std::shared_ptr<ChallengeSolver> solver,
                                         TransportFactory transports, Clock& clock,
                                         std::chrono::seconds order_timeout) {
    if (!transports) transports = default_transport;
    return std::make_shared<AcmeIssuer>(std::move(issuer), std::move(solver), std::move(transports),
                                        clock, order_timeout);
}

std::unique_ptr<HttpTransport> default_transport(const IssuerConfig& issuer, std::stop_token stop) {
    CurlOptions options;
    options.ca_bundle = issuer.ca_bundle;
    options.cancelled = [stop] { return stop.stop_requested(); };
    return make_curl_transport(options);
}

}  // namespace brokertls
