#include "issuers/issuer.hpp"

namespace brokertls {

namespace {

class FilesIssuer final : public Issuer {
  public:
    std::string origin(const CertificateProfileConfig& profile) const override {
        return profile.cert_file.string();
    }

    ServerMaterial issue(const IssueContext& ctx) override {
        const auto& p = ctx.profile;
        ServerMaterial m{PrivateKey::load(p.key_file), Certificate::load_chain(p.cert_file)};
        if (!p.chain_file.empty())
            for (auto& c : Certificate::load_chain(p.chain_file)) m.chain.push_back(std::move(c));
        return m;
    }
    bool mirrors_source() const override { return true; }
};

}  // namespace

std::shared_ptr<Issuer> make_files_issuer() {
    return std::make_shared<FilesIssuer>();
}

}  // namespace brokertls
