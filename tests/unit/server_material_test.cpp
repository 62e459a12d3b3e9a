#include <gtest/gtest.h>

#include "brokertls/crypto/signing.hpp"
#include "brokertls/module/certificate_manager.hpp"
#include "brokertls/module/server_material.hpp"
#include "brokertls/renewal/policy.hpp"

namespace brokertls {
namespace {

class ServerMaterialTest : public ::testing::Test {
  protected:
    ServerMaterialTest()
        : ca_key_(PrivateKey::generate(KeyType::EcP256)),
          ca_(sign_certificate({CertificateProfile::RootCa,
                                "CA",
                                "",
                                {},
                                Clock::now() - Days(1),
                                Clock::now() + Days(100),
                                ""},
                               ca_key_.get(), ca_key_, nullptr)) {}

    ServerMaterial make(std::vector<std::string> names, Days valid_for = Days(30),
                        CertificateProfile profile = CertificateProfile::Server) {
        std::vector<SubjectAltName> sans;
        for (const auto& n : names) sans.push_back(classify_name(n));
        auto key = PrivateKey::generate(KeyType::EcP256);
        TimePoint now = Clock::now();
        auto leaf =
            sign_certificate({profile, names.front(), "", sans, now - Days(1), now + valid_for, ""},
                             key.get(), ca_key_, &ca_);
        return ServerMaterial{std::move(key), {leaf, ca_}};
    }
    static std::vector<SubjectAltName> want(std::initializer_list<const char*> names) {
        std::vector<SubjectAltName> out;
        for (const char* n : names) out.push_back(classify_name(n));
        return out;
    }

    PrivateKey ca_key_;
    Certificate ca_;
};

TEST_F(ServerMaterialTest, AcceptsGoodMaterialAndWildcardCoverage) {
    EXPECT_EQ(check_server_material(make({"broker.local", "10.0.0.5"}),
                                    want({"broker.local", "10.0.0.5"}), Clock::now()),
              "");
    EXPECT_EQ(
        check_server_material(make({"*.example.com"}), want({"mqtt.example.com"}), Clock::now()),
        "");
}

TEST_F(ServerMaterialTest, RefusesEachKindOfBadMaterialWithTheReason) {
    auto m = make({"broker.local"});
    EXPECT_EQ(check_server_material(m, want({"other.local"}), Clock::now()),
              "the certificate does not cover DNS:other.local");
    EXPECT_EQ(
        check_server_material(make({"*.example.com"}), want({"a.b.example.com"}), Clock::now()),
        "the certificate does not cover DNS:a.b.example.com");  // a wildcard covers one label
    EXPECT_NE(
        check_server_material(m, {}, Clock::now() + Days(31)).find("the certificate expired on"),
        std::string::npos);
    EXPECT_NE(check_server_material(m, {}, Clock::now() - Days(2)).find("not valid before"),
              std::string::npos);

    ServerMaterial wrong_key{PrivateKey::generate(KeyType::EcP256), m.chain};
    EXPECT_EQ(check_server_material(wrong_key, {}, Clock::now()),
              "the private key does not match the certificate");

    auto other = make({"x.local"});
    ServerMaterial broken{std::move(m.key), {m.leaf(), other.leaf()}};
    EXPECT_NE(check_server_material(broken, {}, Clock::now()).find("the chain is broken"),
              std::string::npos);

    EXPECT_EQ(check_server_material(make({"client-1"}, Days(30), CertificateProfile::Client), {},
                                    Clock::now()),
              "the certificate's EKU does not allow serverAuth");
}

TEST(RenewalTime, ThirdOfLifetimeOrRenewBefore) {
    TimePoint start = Clock::from_time_t(0);
    EXPECT_EQ(renewal_time(start, start + Days(90), std::chrono::seconds(0)), start + Days(60));
    EXPECT_EQ(renewal_time(start, start + Days(90), std::chrono::hours(24 * 10)), start + Days(80));
}

}  // namespace
}  // namespace brokertls
