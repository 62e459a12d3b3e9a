#include "issuers/issuer.hpp"

#include "brokertls/ca/authority.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

class LocalCaIssuer final : public Issuer {
  public:
    std::string origin(const CertificateProfileConfig&) const override { return "local CA issued"; }

    ServerMaterial issue(const IssueContext& ctx) override {
        const auto& p = ctx.profile;
        Passphrase passphrase;
        if (p.ca_passphrase_file) {
            std::string text = read_file(*p.ca_passphrase_file);
            passphrase = text.substr(0, text.find('\n'));
        }
        // The CA writes into a private staging directory (0700, checked: whoever may write a
        // directory may swap the key in it, so never beside deployed files in a directory
        // others write). Only checked material moves on.
        fs::path staging = ctx.state_dir / "local-ca" / p.name / "staging";
        ensure_private_directory(ctx.state_dir, staging.parent_path());
        // Left by a process killed while issuing: ours (only this profile writes it), stale.
        std::error_code ec;
        fs::remove_all(staging, ec);
        CertificateAuthority ca(p.ca_dir, passphrase, true, DirectoryLock::Mode::Exclusive,
                                ctx.now);
        for (const auto& warning : ca.warnings())
            ctx.log("certificate profile " + p.name + ": " + warning);
        LeafRequest request{
            CertificateProfile::Server, p.names.front().value, p.name, p.names, 0, p.key_type};
        request.lifetime = p.lifetime;
        auto issued = ca.issue({request}, staging, Overwrite::Allow);
        ServerMaterial m{PrivateKey::load(issued[0].key), Certificate::load_chain(issued[0].chain)};
        fs::remove_all(staging, ec);
        return m;
    }
};

}  // namespace

std::shared_ptr<Issuer> make_local_ca_issuer() {
    return std::make_shared<LocalCaIssuer>();
}

}  // namespace brokertls
