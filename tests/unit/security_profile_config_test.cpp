// security_profiles.NAME fields added for issue 8: required_eku spelled as the validator
// compares it, identity_allow_slash, and client_id_must_match_identity on by default where
// every client has a certificate.

#include <gtest/gtest.h>

#include <fstream>

#include "brokertls/error.hpp"
#include "config/config.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

class SecurityProfileConfig : public ::testing::Test {
  protected:
    SecurityProfileConfig() { std::ofstream(tmp_ / "root.pem") << "x"; }
    SecurityProfile profile(const std::string& fields) {
        std::string text = R"({"security_profiles": {"devices": {"trust_anchors": ["root.pem"])" +
                           (fields.empty() ? "" : ", " + fields) + "}}}";
        return parse_config(text, tmp_ / "brokertls.json").security_profiles.at("devices");
    }
    std::string error_of(const std::string& fields) {
        try {
            profile(fields);
        } catch (const Error& e) {
            return e.what();
        }
        return "no error";
    }
    test::TempDir tmp_;
};

TEST_F(SecurityProfileConfig, UnknownRequiredEkuIsRefusedListingTheKnownOnes) {
    for (const char* bad : {R"("clientauth")", R"("client")", R"("2.5.4.3")", R"("1.2.x")"})
        EXPECT_EQ(error_of(std::string(R"("required_eku": )") + bad),
                  "brokertls.json: security_profiles.devices.required_eku: unknown extended key "
                  "usage; use one of serverAuth, clientAuth, codeSigning, emailProtection, "
                  "timeStamping, OCSPSigning, a dotted OID, or \"\" for any")
            << bad;
}

TEST_F(SecurityProfileConfig, RequiredEkuIsSpelledAsTheValidatorComparesIt) {
    EXPECT_EQ(profile("").required_eku, "clientAuth");
    EXPECT_EQ(profile(R"("required_eku": "serverAuth")").required_eku, "serverAuth");
    EXPECT_EQ(profile(R"("required_eku": "")").required_eku, "");
    // The OID of clientAuth is clientAuth; a private purpose stays an OID.
    EXPECT_EQ(profile(R"("required_eku": "1.3.6.1.5.5.7.3.2")").required_eku, "clientAuth");
    EXPECT_EQ(profile(R"("required_eku": "1.3.6.1.4.1.55555.1")").required_eku,
              "1.3.6.1.4.1.55555.1");
}

TEST_F(SecurityProfileConfig, IdentityAllowSlashDefaultsToFalse) {
    EXPECT_FALSE(profile("").identity_allow_slash);
    EXPECT_TRUE(profile(R"("identity_allow_slash": true)").identity_allow_slash);
    EXPECT_EQ(error_of(R"("identity_allow_slash": "yes")"),
              "brokertls.json: security_profiles.devices.identity_allow_slash: must be true or "
              "false");
}

TEST_F(SecurityProfileConfig, ClientIdMustMatchIdentityDefaultsToRequireClientCertificate) {
    EXPECT_TRUE(profile("").client_id_must_match_identity);
    EXPECT_FALSE(
        profile(R"("client_id_must_match_identity": false)").client_id_must_match_identity);
    EXPECT_FALSE(profile(R"("require_client_certificate": false)").client_id_must_match_identity);
    EXPECT_TRUE(profile(R"("require_client_certificate": false,
                          "client_id_must_match_identity": true)")
                    .client_id_must_match_identity);
}

}  // namespace
}  // namespace brokertls
