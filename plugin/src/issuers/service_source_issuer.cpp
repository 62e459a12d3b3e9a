// The Issuer of `source: service` profiles: a key made here, a CSR to brokertls-service.

#include "brokertls/crypto/csr.hpp"
#include "fleet/service_client.hpp"
#include "issuers/issuer.hpp"

namespace brokertls {

namespace {

class ServiceSourceIssuer final : public Issuer {
  public:
    ServiceSourceIssuer(ServiceTransportFactory transports, Clock& clock)
        : transports_(std::move(transports)), clock_(clock) {}

    bool talks_to_ca() const override { return true; }
    std::string origin(const CertificateProfileConfig& p) const override {
        return "issued by brokertls-service " + p.service_url;
    }

    ServerMaterial issue(const IssueContext& ctx) override {
        const auto& p = ctx.profile;
        auto transport = transports_(p, ctx.stop);
        ServiceClient client(p.service_url,
                             load_service_credentials(p.service_credentials, p.service_key_id),
                             *transport, clock_);
        if (!p.address_update.empty()) {
            // The device's name must reach this host (Heckel's A record); a failure here does
            // not stop the certificate, which is for the name, not the address.
            std::vector<std::string> addresses;
            try {
                for (const auto& a : p.address_update)
                    addresses.push_back(a == "auto" ? local_address_toward(p.service_url) : a);
                client.set_addresses(addresses);
                ctx.log("certificate profile " + p.name + ": address set to " + join(addresses));
            } catch (const Error& e) {
                ctx.event("address-update-failed", e.what());
            }
        }
        PrivateKey key = PrivateKey::generate(p.key_type);
        std::string common_name;
        for (const auto& n : p.names)
            if (n.type == SubjectAltName::Type::Dns) {
                common_name = n.value;
                break;
            }
        ctx.event("obtaining",
                  "asking brokertls-service " + p.service_url + " for " + join_names(p.names));
        auto issued = client.request_certificate(
            CertificateRequest::create(key, common_name, p.names), p.service_profile);
        return ServerMaterial{std::move(key), std::move(issued.chain)};
    }

  private:
    static std::string join(const std::vector<std::string>& items) {
        std::string out;
        for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
        return out;
    }
    static std::string join_names(const std::vector<SubjectAltName>& names) {
        std::vector<std::string> values;
        for (const auto& n : names) values.push_back(n.value);
        return join(values);
    }

    ServiceTransportFactory transports_;
    Clock& clock_;
};

}  // namespace

std::shared_ptr<Issuer> make_service_issuer(ServiceTransportFactory transports, Clock& clock) {
    if (!transports)
        transports = [](const CertificateProfileConfig& p, std::stop_token stop) {
            CurlOptions options;
            options.ca_bundle = p.service_ca_bundle;
            options.cancelled = [stop] { return stop.stop_requested(); };
            return make_curl_transport(options);
        };
    return std::make_shared<ServiceSourceIssuer>(std::move(transports), clock);
}

}  // namespace brokertls
