// The certificate pipeline keeps ACME account keys and archived keys under STATE_DIR/profiles:
// a state directory others may write into is refused when the configuration is applied.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "pipeline/pipeline.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;

class AcmeStateDirTest : public ::testing::Test {
  protected:
    AcmeStateDirTest() {
        ensure_directory(dir / "deploy");
        ensure_directory(dir / "state");
        config.file = dir / "brokertls.json";
        config.state_dir = dir / "state";
        IssuerConfig issuer;
        issuer.name = "ca";
        issuer.directory = "https://ca.test/dir";
        issuer.challenge.type = ChallengeConfig::Type::Http01;
        issuer.challenge.listen = "127.0.0.1:0";
        config.issuers["ca"] = issuer;
        CertificateProfileConfig& p = config.certificate_profiles["web"];
        p.name = "web";
        p.source = CertificateSource::Acme;
        p.names = {classify_name("a.example")};
        p.issuer = "ca";
        p.deploy_cert = dir / "deploy" / "web.crt";
        p.deploy_key = dir / "deploy" / "web.key";
    }
    std::string configure() {
        CertificatePipeline renewer(
            {}, CertificatePipeline::Options{
                    [](const IssuerConfig&, std::stop_token) -> std::unique_ptr<HttpTransport> {
                        ADD_FAILURE() << "no request may be made";
                        return nullptr;
                    }});
        return test::error_of([&] { renewer.configure(config, SystemClock::now()); },
                              ErrorKind::Io);
    }

    test::TempDir dir;
    Config config;
};

TEST_F(AcmeStateDirTest, AWorldWritableStateDirIsRefused) {
    ASSERT_EQ(::chmod(config.state_dir.c_str(), 0777), 0);
    EXPECT_EQ(configure(), config.state_dir.string() +
                               ": mode 0777 lets group or others write into it, and so replace "
                               "keys and certificates in it (chmod go-w it)");
    EXPECT_FALSE(fs::exists(config.state_dir / "profiles"));
}

TEST_F(AcmeStateDirTest, AGroupWritableProfileDirectoryIsRefused) {
    fs::path profile_dir = config.state_dir / "profiles" / "web";
    ensure_directory(profile_dir);
    ASSERT_EQ(::chmod(profile_dir.c_str(), 0770), 0);
    EXPECT_EQ(configure(), profile_dir.string() +
                               ": mode 0770 lets group or others write into it, and so replace "
                               "keys and certificates in it (chmod go-w it)");
}

}  // namespace
}  // namespace brokertls
