#include <gtest/gtest.h>

#include "brokertls/ca/authority.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/error.hpp"
#include "brokertls/trust/validator.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// A root, an intermediate under it, and leaves made directly with sign_certificate so each
// test can shape exactly the certificate it needs.
class TrustValidator : public ::testing::Test {
  protected:
    TrustValidator()
        : root_key_(PrivateKey::generate(KeyType::EcP256)),
          root_(sign_certificate(spec(CertificateProfile::RootCa, "Test Root", Days(3650)),
                                 root_key_.get(), root_key_, nullptr)),
          int_key_(PrivateKey::generate(KeyType::EcP256)),
          intermediate_(
              sign_certificate(spec(CertificateProfile::IntermediateCa, "Test Int", Days(1000)),
                               int_key_.get(), root_key_, &root_)) {
        write(tmp_ / "root.pem", root_.to_pem());
        profile_.name = "devices";
        profile_.trust_anchors = {tmp_ / "root.pem"};
    }

    static CertificateSpec spec(CertificateProfile p, const std::string& cn, Days days,
                                Days start_offset = Days(0)) {
        TimePoint now = Clock::now();
        return {p, cn, "", {}, now - std::chrono::minutes(1) + start_offset, now + days, ""};
    }
    static void write(const fs::path& p, const std::string& data) { write_file_atomic(p, data); }

    Certificate leaf(const std::string& cn, CertificateProfile p = CertificateProfile::Client,
                     Days days = Days(30), Days start_offset = Days(0),
                     std::vector<SubjectAltName> sans = {}) {
        auto s = spec(p, cn, days, start_offset);
        s.subject_alt_names = std::move(sans);
        return sign_certificate(s, PrivateKey::generate(KeyType::EcP256).get(), root_key_, &root_);
    }
    ValidationResult check(const Certificate& c, const std::string& client_id = "",
                           TimePoint now = Clock::now()) {
        return TrustSnapshot::build(profile_)->validate(
            c.get(), client_id.empty() ? c.common_name() : client_id, now);
    }

    TempDir tmp_;
    PrivateKey root_key_;
    Certificate root_;
    PrivateKey int_key_;
    Certificate intermediate_;
    SecurityProfile profile_;
};

TEST_F(TrustValidator, AcceptsAValidClientAndMapsTheCn) {
    auto r = check(leaf("dev-1"));
    EXPECT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.identity, "dev-1");
    EXPECT_EQ(r.subject, "CN=dev-1");
    EXPECT_EQ(r.fingerprint.size(), 64u);
}

TEST_F(TrustValidator, MapsEveryIdentitySource) {
    auto c = leaf("dev-1", CertificateProfile::Client, Days(30), Days(0),
                  {classify_name("dev1.example"), classify_name("spiffe://fleet/dev-1"),
                   classify_name("dev1@example.com")});
    std::vector<std::pair<IdentitySource, std::string>> cases{
        {IdentitySource::CommonName, "dev-1"},
        {IdentitySource::SanDns, "dev1.example"},
        {IdentitySource::SanUri, "spiffe://fleet/dev-1"},
        {IdentitySource::SanEmail, "dev1@example.com"},
        {IdentitySource::SubjectDn, "CN=dev-1"},
        {IdentitySource::Fingerprint, c.fingerprint_sha256()},
    };
    for (const auto& [source, expected] : cases) {
        profile_.identity = source;
        auto r = check(c);
        EXPECT_TRUE(r.ok()) << identity_source_name(source) << ": " << r.detail;
        EXPECT_EQ(r.identity, expected) << identity_source_name(source);
    }
}

TEST_F(TrustValidator, RejectsAMissingIdentity) {
    profile_.identity = IdentitySource::SanUri;
    auto r = check(leaf("dev-1"));
    EXPECT_EQ(r.reason, RejectReason::NoIdentity);
    EXPECT_NE(r.detail.find("san_uri"), std::string::npos);
}

TEST_F(TrustValidator, RejectsNoCertificate) {
    auto r = TrustSnapshot::build(profile_)->validate(nullptr, "x", Clock::now());
    EXPECT_EQ(r.reason, RejectReason::NoCertificate);
}

TEST_F(TrustValidator, RejectsExpiredAndNotYetValid) {
    auto c = leaf("dev-1", CertificateProfile::Client, Days(1));
    EXPECT_EQ(check(c, "", Clock::now() + Days(2)).reason, RejectReason::Expired);
    auto future = leaf("dev-2", CertificateProfile::Client, Days(30), Days(5));
    auto r = check(future);
    EXPECT_EQ(r.reason, RejectReason::NotYetValid);
    EXPECT_NE(r.detail.find("notBefore"), std::string::npos);
}

TEST_F(TrustValidator, RejectsAForeignCa) {
    auto other_key = PrivateKey::generate(KeyType::EcP256);
    auto other = sign_certificate(spec(CertificateProfile::RootCa, "Other", Days(100)),
                                  other_key.get(), other_key, nullptr);
    auto c = sign_certificate(spec(CertificateProfile::Client, "intruder", Days(30)),
                              PrivateKey::generate(KeyType::EcP256).get(), other_key, &other);
    EXPECT_EQ(check(c).reason, RejectReason::Untrusted);
}

TEST_F(TrustValidator, RejectsServerEkuAndCaAsLeaf) {
    auto r = check(
        leaf("srv", CertificateProfile::Server, Days(30), Days(0), {classify_name("srv.example")}));
    EXPECT_EQ(r.reason, RejectReason::MissingEku);
    EXPECT_NE(r.detail.find("clientAuth"), std::string::npos);
    EXPECT_EQ(check(intermediate_).reason, RejectReason::CaAsLeaf);
    profile_.required_eku = "";
    EXPECT_TRUE(check(leaf("srv", CertificateProfile::Server, Days(30), Days(0),
                           {classify_name("srv.example")}))
                    .ok());
}

TEST_F(TrustValidator, EnforcesMaxChainDepth) {
    write(tmp_ / "int.pem", intermediate_.to_pem());
    profile_.trust_anchors.push_back(tmp_ / "int.pem");
    auto c =
        sign_certificate(spec(CertificateProfile::Client, "deep", Days(30)),
                         PrivateKey::generate(KeyType::EcP256).get(), int_key_, &intermediate_);
    EXPECT_TRUE(check(c).ok());  // leaf -> intermediate -> root: 2 above the leaf
    profile_.max_chain_depth = 1;
    auto r = check(c);
    EXPECT_EQ(r.reason, RejectReason::ChainTooDeep);
    EXPECT_NE(r.detail.find("max_chain_depth is 1"), std::string::npos);
}

TEST_F(TrustValidator, IntermediatesBuildTheChainWithoutBeingTrusted) {
    auto c =
        sign_certificate(spec(CertificateProfile::Client, "via-int", Days(30)),
                         PrivateKey::generate(KeyType::EcP256).get(), int_key_, &intermediate_);
    auto r = check(c);
    EXPECT_EQ(r.reason, RejectReason::Untrusted);  // the broker passes the leaf only
    EXPECT_NE(r.detail.find("neither a trust anchor nor listed in intermediates"),
              std::string::npos)
        << r.detail;
    write(tmp_ / "int.pem", intermediate_.to_pem());
    profile_.intermediates = {tmp_ / "int.pem"};
    EXPECT_TRUE(check(c).ok()) << check(c).detail;
    // An intermediate alone is not an anchor.
    profile_.trust_anchors = {tmp_ / "int.pem"};
    profile_.intermediates.clear();
    EXPECT_FALSE(check(c).ok());
}

TEST_F(TrustValidator, AppliesCrlsAndPins) {
    auto revoked = leaf("revoked");
    auto good = leaf("good");
    auto crl = sign_crl(root_, root_key_,
                        {{revoked.serial_hex(), Clock::now(), RevocationReason::KeyCompromise}},
                        Clock::now(), Clock::now() + Days(7), 1);
    write(tmp_ / "crl.pem", crl.to_pem());
    profile_.crls = {tmp_ / "crl.pem"};
    auto snap = TrustSnapshot::build(profile_);
    EXPECT_EQ(snap->validate(revoked.get(), "revoked", Clock::now()).reason, RejectReason::Revoked);
    EXPECT_TRUE(snap->validate(good.get(), "good", Clock::now()).ok());
    EXPECT_TRUE(snap->is_revoked(revoked.issuer(), revoked.serial_hex()));

    profile_.deny_fingerprints = {good.fingerprint_sha256()};
    EXPECT_EQ(check(good).reason, RejectReason::DenyPinned);
    profile_.deny_fingerprints.clear();
    profile_.allow_fingerprints = {leaf("x").fingerprint_sha256()};
    EXPECT_EQ(check(good).reason, RejectReason::NotAllowPinned);
}

TEST_F(TrustValidator, ClientIdMustMatchWhenRequired) {
    profile_.client_id_must_match_identity = true;
    auto c = leaf("dev-1");
    EXPECT_TRUE(check(c, "dev-1").ok());
    auto r = check(c, "someone-else");
    EXPECT_EQ(r.reason, RejectReason::ClientIdMismatch);
    EXPECT_NE(r.detail.find("someone-else"), std::string::npos);
}

TEST_F(TrustValidator, BuildRejectsBadFilesNamingThem) {
    auto expect_error = [&](const std::string& fragment) {
        try {
            TrustSnapshot::build(profile_);
            ADD_FAILURE() << "no error, expected " << fragment;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    };
    profile_.trust_anchors = {tmp_ / "missing.pem"};
    expect_error("missing.pem: CA certificate file not found");
    write(tmp_ / "leaf.pem", leaf("x").to_pem());
    profile_.trust_anchors = {tmp_ / "leaf.pem"};
    expect_error("is not a CA certificate");
    write(tmp_ / "garbage.pem",
          "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    profile_.trust_anchors = {tmp_ / "garbage.pem"};
    expect_error("garbage.pem");

    profile_.trust_anchors = {tmp_ / "root.pem"};
    auto other_key = PrivateKey::generate(KeyType::EcP256);
    auto other = sign_certificate(spec(CertificateProfile::RootCa, "Other", Days(100)),
                                  other_key.get(), other_key, nullptr);
    write(tmp_ / "foreign-crl.pem",
          sign_crl(other, other_key, {}, Clock::now(), Clock::now() + Days(1), 1).to_pem());
    profile_.crls = {tmp_ / "foreign-crl.pem"};
    expect_error("is not among the trust anchors");
}

TEST_F(TrustValidator, AnchorDirectoryIsRead) {
    fs::create_directories(tmp_ / "anchors");
    write(tmp_ / "anchors" / "root.crt", root_.to_pem());
    write(tmp_ / "anchors" / "ignored.txt", "not a certificate");
    profile_.trust_anchors = {tmp_ / "anchors"};
    EXPECT_TRUE(check(leaf("dev-1")).ok());
}

}  // namespace
}  // namespace brokertls
