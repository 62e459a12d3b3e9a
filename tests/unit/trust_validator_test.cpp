#include <gtest/gtest.h>

#include "brokertls/ca/authority.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/error.hpp"
#include "pki.hpp"
#include "support.hpp"
#include "trust/validator.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
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
        TimePoint now = SystemClock::now();
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
                           TimePoint now = SystemClock::now()) {
        return TrustSnapshot::build(profile_, {}, SystemClock::now())
            ->validate(c.get(), client_id.empty() ? c.common_name() : client_id, now);
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
    profile_.identity_allow_slash = true;  // the URI
    for (const auto& [source, expected] : cases) {
        profile_.identity = source;
        auto r = check(c, expected);
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
    auto r = TrustSnapshot::build(profile_, {}, SystemClock::now())
                 ->validate(nullptr, "x", SystemClock::now());
    EXPECT_EQ(r.reason, RejectReason::NoCertificate);
}

TEST_F(TrustValidator, RejectsExpiredAndNotYetValid) {
    auto c = leaf("dev-1", CertificateProfile::Client, Days(1));
    EXPECT_EQ(check(c, "", SystemClock::now() + Days(2)).reason, RejectReason::Expired);
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
    auto crl =
        sign_crl(root_, root_key_,
                 {{revoked.serial_hex(), SystemClock::now(), RevocationReason::KeyCompromise}},
                 SystemClock::now(), SystemClock::now() + Days(7), 1);
    write(tmp_ / "crl.pem", crl.to_pem());
    profile_.crls = {tmp_ / "crl.pem"};
    auto snap = TrustSnapshot::build(profile_, {}, SystemClock::now());
    EXPECT_EQ(snap->validate(revoked.get(), "revoked", SystemClock::now()).reason,
              RejectReason::Revoked);
    EXPECT_TRUE(snap->validate(good.get(), "good", SystemClock::now()).ok());
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

TEST_F(TrustValidator, ClientIdMustMatchByDefault) {
    EXPECT_TRUE(SecurityProfile{}.client_id_must_match_identity);
    auto r = check(leaf("dev-2"), "dev-1");
    EXPECT_EQ(r.reason, RejectReason::ClientIdMismatch);
    EXPECT_EQ(r.detail, "client id 'dev-1' is not the identity 'dev-2'");
    // The client id is the client's bytes: escaped in the detail.
    EXPECT_EQ(check(leaf("dev-2"), "dev\x1b[2J"s).detail,
              "client id 'dev\\x1b[2J' is not the identity 'dev-2'");
    profile_.client_id_must_match_identity = false;
    EXPECT_TRUE(check(leaf("dev-2"), "dev-1").ok());
}

// "admin\0x" is "admin" to every C string reader, Mosquitto's username included.
TEST_F(TrustValidator, RejectsNamesWithANulByte) {
    auto cn = test::raw::with_names(leaf("dev-1"), root_key_, "admin\0x"s);
    auto r = check(cn, "admin");
    EXPECT_EQ(r.reason, RejectReason::BadIdentity) << r.detail;
    EXPECT_EQ(reject_reason_name(r.reason), "bad_identity");
    EXPECT_EQ(r.detail, "certificate subject CN: contains a NUL byte (admin\\x00x)");
    EXPECT_EQ(r.identity, "");
    // A NUL in any SAN refuses the certificate, whatever the identity source.
    auto san = test::raw::with_names(leaf("dev-1"), root_key_, std::nullopt, "dev-1\0.evil"s);
    r = check(san, "dev-1");
    EXPECT_EQ(r.reason, RejectReason::BadIdentity) << r.detail;
    EXPECT_NE(r.detail.find("subjectAltName DNS: contains a NUL byte"), std::string::npos);
}

TEST_F(TrustValidator, RejectsIdentitiesWithTopicAndControlCharacters) {
    auto r = check(leaf("dev-1/x"));
    EXPECT_EQ(r.reason, RejectReason::BadIdentity);
    EXPECT_EQ(r.detail, "identity 'dev-1/x' (cn) contains '/' (an MQTT topic level separator)");
    EXPECT_EQ(r.identity, "");
    EXPECT_EQ(check(leaf("dev-#")).reason, RejectReason::BadIdentity);
    EXPECT_EQ(check(leaf("dev+1")).reason, RejectReason::BadIdentity);
    r = check(leaf("dev\x01"));
    EXPECT_EQ(r.reason, RejectReason::BadIdentity);
    EXPECT_NE(r.detail.find("'dev\\x01'"), std::string::npos) << r.detail;
    EXPECT_NE(r.detail.find("control character"), std::string::npos) << r.detail;

    profile_.identity_allow_slash = true;
    r = check(leaf("site-1/dev-1"));
    EXPECT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.identity, "site-1/dev-1");
    EXPECT_EQ(check(leaf("dev-#")).reason, RejectReason::BadIdentity);  // still refused
}

TEST_F(TrustValidator, ARevokedIntermediateRevokesTheLeavesUnderIt) {
    write(tmp_ / "int.pem", intermediate_.to_pem());
    profile_.intermediates = {tmp_ / "int.pem"};
    auto c =
        sign_certificate(spec(CertificateProfile::Client, "dev-1", Days(30)),
                         PrivateKey::generate(KeyType::EcP256).get(), int_key_, &intermediate_);
    ASSERT_TRUE(check(c).ok());
    write(
        tmp_ / "root-crl.pem",
        sign_crl(root_, root_key_,
                 {{intermediate_.serial_hex(), SystemClock::now(), RevocationReason::CaCompromise}},
                 SystemClock::now(), SystemClock::now() + Days(7), 1)
            .to_pem());
    profile_.crls = {tmp_ / "root-crl.pem"};
    auto r = check(c);
    EXPECT_EQ(r.reason, RejectReason::Revoked);
    EXPECT_EQ(r.detail, "issuing CA 'CN=Test Int' (serial " + intermediate_.serial_hex() +
                            ") is on the CRL of CN=Test Root");
    EXPECT_EQ(check(leaf("dev-2")).reason, RejectReason::None);  // directly under the root
}

class TrustValidatorCrls : public TrustValidator {
  protected:
    TrustValidatorCrls() : revoked_(leaf("dev-rev")) {}
    Crl crl(long number, std::vector<RevokedCertificate> revoked, Days age = Days(0)) {
        TimePoint at = SystemClock::now() - age;
        return sign_crl(root_, root_key_, std::move(revoked), at, at + Days(30), number);
    }
    std::vector<RevokedCertificate> dev_rev() const {
        return {{revoked_.serial_hex(), SystemClock::now(), RevocationReason::KeyCompromise}};
    }
    RejectReason reason(const TrustSnapshot& snap) const {
        return snap.validate(revoked_.get(), "dev-rev", SystemClock::now()).reason;
    }
    static bool warned(const TrustSnapshot& snap, const std::string& text) {
        for (const auto& w : snap.warnings())
            if (w.find(text) != std::string::npos) return true;
        return false;
    }
    Certificate revoked_;
};

TEST_F(TrustValidatorCrls, AnOlderCrlWrittenOverTheCurrentOneDoesNotUnrevoke) {
    write(tmp_ / "crl.pem", crl(2, dev_rev()).to_pem());
    profile_.crls = {tmp_ / "crl.pem"};
    auto current = TrustSnapshot::build(profile_, {}, SystemClock::now());
    ASSERT_EQ(reason(*current), RejectReason::Revoked);

    write(tmp_ / "crl.pem", crl(1, {}, Days(1)).to_pem());
    auto next = TrustSnapshot::build(profile_, current->crls(), SystemClock::now());
    EXPECT_EQ(reason(*next), RejectReason::Revoked);
    EXPECT_TRUE(warned(*next, (tmp_ / "crl.pem").string() + ": CRL number 1, thisUpdate "))
        << testing::PrintToString(next->warnings());
    EXPECT_TRUE(warned(*next, "is older than the CRL in force (CRL number 2, thisUpdate "))
        << testing::PrintToString(next->warnings());
    EXPECT_EQ(next->crls().at("CN=Test Root")->number(), 2);
    // And it stays so over further reloads that see the same stale file.
    EXPECT_EQ(reason(*TrustSnapshot::build(profile_, next->crls(), SystemClock::now())),
              RejectReason::Revoked);
    // Without the snapshot in force, the file is all there is.
    EXPECT_EQ(reason(*TrustSnapshot::build(profile_, {}, SystemClock::now())), RejectReason::None);
}

TEST_F(TrustValidatorCrls, WithEqualNumbersTheLaterThisUpdateWins) {
    write(tmp_ / "crl.pem", crl(5, dev_rev()).to_pem());
    profile_.crls = {tmp_ / "crl.pem"};
    auto current = TrustSnapshot::build(profile_, {}, SystemClock::now());
    write(tmp_ / "crl.pem", crl(5, {}, Days(2)).to_pem());
    auto next = TrustSnapshot::build(profile_, current->crls(), SystemClock::now());
    EXPECT_EQ(reason(*next), RejectReason::Revoked);
    EXPECT_TRUE(warned(*next, "older than the CRL in force"));
}

TEST_F(TrustValidatorCrls, ANewerCrlReplacesTheOneInForce) {
    write(tmp_ / "crl.pem", crl(1, {}, Days(1)).to_pem());
    profile_.crls = {tmp_ / "crl.pem"};
    auto current = TrustSnapshot::build(profile_, {}, SystemClock::now());
    EXPECT_EQ(reason(*current), RejectReason::None);
    write(tmp_ / "crl.pem", crl(2, dev_rev()).to_pem());
    auto next = TrustSnapshot::build(profile_, current->crls(), SystemClock::now());
    EXPECT_EQ(reason(*next), RejectReason::Revoked);
    EXPECT_TRUE(next->warnings().empty()) << testing::PrintToString(next->warnings());
}

TEST_F(TrustValidatorCrls, OfTwoFilesOfOneIssuerTheNewerWins) {
    write(tmp_ / "new.pem", crl(7, dev_rev()).to_pem());
    write(tmp_ / "old.pem", crl(6, {}, Days(1)).to_pem());
    for (auto order : {std::vector<fs::path>{tmp_ / "new.pem", tmp_ / "old.pem"},
                       std::vector<fs::path>{tmp_ / "old.pem", tmp_ / "new.pem"}}) {
        profile_.crls = order;
        auto snap = TrustSnapshot::build(profile_, {}, SystemClock::now());
        EXPECT_EQ(reason(*snap), RejectReason::Revoked);
        EXPECT_TRUE(warned(*snap, (tmp_ / "old.pem").string() + ": CRL number 6"))
            << testing::PrintToString(snap->warnings());
        EXPECT_TRUE(warned(*snap, "is older than " + (tmp_ / "new.pem").string()));
    }
}

// Under a CA whose nameConstraints permit only *.devices.example, OpenSSL lets CN=admin through
// (a CN that does not look like a host name is not constrained).
TEST_F(TrustValidator, CnIdentitiesUnderNameConstrainedCasMustBeConstrainedDnsNames) {
    Certificate constrained = test::raw::with_extension(
        intermediate_, root_key_, NID_name_constraints, "critical,permitted;DNS:.devices.example");
    write(tmp_ / "int.pem", constrained.to_pem());
    profile_.intermediates = {tmp_ / "int.pem"};
    auto under = [&](const std::string& cn, std::vector<SubjectAltName> sans = {}) {
        auto s = spec(CertificateProfile::Client, cn, Days(30));
        s.subject_alt_names = std::move(sans);
        return sign_certificate(s, PrivateKey::generate(KeyType::EcP256).get(), int_key_,
                                &constrained);
    };
    auto admin = under("admin");
    auto r = check(admin);
    EXPECT_EQ(r.reason, RejectReason::NameConstraints) << r.detail;
    EXPECT_EQ(reject_reason_name(r.reason), "name_constraints");
    EXPECT_NE(r.detail.find("CN 'admin' is not a DNS name of the certificate"), std::string::npos)
        << r.detail;
    EXPECT_NE(r.detail.find("CA 'CN=Test Int' has nameConstraints"), std::string::npos);
    // A permitted DNS name elsewhere does not vouch for the CN.
    EXPECT_EQ(check(under("admin", {classify_name("dev-1.devices.example")})).reason,
              RejectReason::NameConstraints);
    // The CN as a SAN DNS name is what the constraints checked: accepted.
    r = check(under("dev-1.devices.example", {classify_name("dev-1.devices.example")}));
    EXPECT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.identity, "dev-1.devices.example");
    // OpenSSL refuses a name outside the constraints.
    EXPECT_EQ(check(under("admin.other.example", {classify_name("admin.other.example")})).reason,
              RejectReason::Untrusted);
    // subject_dn rests on the CN as well; SAN identities were checked by OpenSSL.
    profile_.identity = IdentitySource::SubjectDn;
    EXPECT_EQ(check(admin, "CN=admin").reason, RejectReason::NameConstraints);
    profile_.identity = IdentitySource::SanDns;
    EXPECT_TRUE(
        check(under("admin", {classify_name("dev-1.devices.example")}), "dev-1.devices.example")
            .ok());
    // Without constraints a plain CN stays fine.
    profile_.identity = IdentitySource::CommonName;
    EXPECT_TRUE(check(leaf("admin")).ok());
}

TEST_F(TrustValidator, BuildRejectsBadFilesNamingThem) {
    auto expect_error = [&](const std::string& fragment) {
        try {
            TrustSnapshot::build(profile_, {}, SystemClock::now());
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
          sign_crl(other, other_key, {}, SystemClock::now(), SystemClock::now() + Days(1), 1)
              .to_pem());
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

// The verification cache (issue #9): per leaf and snapshot, never for the per-connection checks.
TEST_F(TrustValidatorCrls, ACachedChainIsStillCheckedAgainstTheCrlOnEveryCall) {
    write(tmp_ / "crl.pem", crl(1, dev_rev()).to_pem());
    profile_.crls = {tmp_ / "crl.pem"};
    auto snap = TrustSnapshot::build(profile_, {}, SystemClock::now());
    auto good = leaf("dev-good");
    for (int i = 0; i < 3; ++i) {
        auto r = snap->validate(revoked_.get(), "dev-rev", SystemClock::now());
        EXPECT_EQ(r.reason, RejectReason::Revoked) << "call " << i;
        EXPECT_EQ(r.detail, "serial " + revoked_.serial_hex() + " is on the CRL of CN=Test Root");
        EXPECT_TRUE(snap->validate(good.get(), "dev-good", SystemClock::now()).ok())
            << "call " << i;
    }
    EXPECT_EQ(snap->cache_hits(), 4u);  // the later calls were answered from the cache
}

TEST_F(TrustValidator, ACachedIntermediateIsStillCheckedAgainstTheCrl) {
    write(tmp_ / "int.pem", intermediate_.to_pem());
    profile_.intermediates = {tmp_ / "int.pem"};
    write(
        tmp_ / "root-crl.pem",
        sign_crl(root_, root_key_,
                 {{intermediate_.serial_hex(), SystemClock::now(), RevocationReason::CaCompromise}},
                 SystemClock::now(), SystemClock::now() + Days(7), 1)
            .to_pem());
    profile_.crls = {tmp_ / "root-crl.pem"};
    auto c =
        sign_certificate(spec(CertificateProfile::Client, "dev-1", Days(30)),
                         PrivateKey::generate(KeyType::EcP256).get(), int_key_, &intermediate_);
    auto snap = TrustSnapshot::build(profile_, {}, SystemClock::now());
    for (int i = 0; i < 2; ++i)
        EXPECT_EQ(snap->validate(c.get(), "dev-1", SystemClock::now()).reason,
                  RejectReason::Revoked);
    EXPECT_EQ(snap->cache_hits(), 1u);
}

TEST_F(TrustValidatorCrls, ANewCrlIsAppliedToACachedCertificate) {
    write(tmp_ / "crl.pem", crl(1, {}).to_pem());
    profile_.crls = {tmp_ / "crl.pem"};
    auto current = TrustSnapshot::build(profile_, {}, SystemClock::now());
    ASSERT_EQ(reason(*current), RejectReason::None);
    ASSERT_EQ(reason(*current), RejectReason::None);
    ASSERT_EQ(current->cache_hits(), 1u);
    write(tmp_ / "crl.pem", crl(2, dev_rev()).to_pem());
    auto next = TrustSnapshot::build(profile_, current->crls(), SystemClock::now());
    EXPECT_EQ(reason(*next), RejectReason::Revoked);
    EXPECT_EQ(reason(*next), RejectReason::Revoked);
    EXPECT_EQ(reason(*current), RejectReason::None);  // a snapshot never changes
}

TEST_F(TrustValidatorCrls, ACrlPastItsNextUpdateIsToldByTheCallersTime) {
    write(tmp_ / "crl.pem", crl(1, dev_rev()).to_pem());  // nextUpdate in 30 days
    profile_.crls = {tmp_ / "crl.pem"};
    TimePoint now = SystemClock::now();
    EXPECT_TRUE(TrustSnapshot::build(profile_, {}, now)->warnings().empty());
    auto late = TrustSnapshot::build(profile_, {}, now + Days(31));
    EXPECT_TRUE(warned(*late, (tmp_ / "crl.pem").string() + ": CRL is past its nextUpdate ("))
        << testing::PrintToString(late->warnings());
    EXPECT_EQ(reason(*late), RejectReason::Revoked);  // still applied
}

// A snapshot built to replace another keeps what that one verified when it verifies chains
// the same way (issue #9: re-checking connected clients after a CRL change).
TEST_F(TrustValidatorCrls, ARebuiltSnapshotKeepsVerifiedChainsButChecksTheNewCrl) {
    write(tmp_ / "crl.pem", crl(1, {}).to_pem());
    profile_.crls = {tmp_ / "crl.pem"};
    auto current = TrustSnapshot::build(profile_, {}, SystemClock::now());
    auto good = leaf("dev-good");
    ASSERT_TRUE(current->validate(good.get(), "dev-good", SystemClock::now()).ok());
    ASSERT_EQ(reason(*current), RejectReason::None);
    ASSERT_EQ(current->cache_hits(), 0u);

    write(tmp_ / "crl.pem", crl(2, dev_rev()).to_pem());
    auto next = TrustSnapshot::build(profile_, current->crls(), SystemClock::now(), current.get());
    EXPECT_EQ(reason(*next), RejectReason::Revoked);
    auto r = next->validate(good.get(), "dev-good", SystemClock::now());
    EXPECT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.identity, "dev-good");
    EXPECT_EQ(next->cache_hits(), 2u);  // both answered without X509_verify_cert
    // A pin change is applied to a kept chain as well.
    profile_.deny_fingerprints = {good.fingerprint_sha256()};
    auto pinned = TrustSnapshot::build(profile_, next->crls(), SystemClock::now(), next.get());
    EXPECT_EQ(pinned->validate(good.get(), "dev-good", SystemClock::now()).reason,
              RejectReason::DenyPinned);
    // And the validity window.
    profile_.deny_fingerprints.clear();
    auto later = TrustSnapshot::build(profile_, next->crls(), SystemClock::now(), next.get());
    EXPECT_EQ(later->validate(good.get(), "dev-good", SystemClock::now() + Days(31)).reason,
              RejectReason::Expired);
}

TEST_F(TrustValidator, ASnapshotWithOtherAnchorsOrRulesVerifiesAfresh) {
    auto c = leaf("dev-1");
    auto current = TrustSnapshot::build(profile_, {}, SystemClock::now());
    ASSERT_TRUE(current->validate(c.get(), "dev-1", SystemClock::now()).ok());

    // The client's root is no longer an anchor: refused, not answered from the old cache.
    auto other_key = PrivateKey::generate(KeyType::EcP256);
    write(tmp_ / "other.pem",
          sign_certificate(spec(CertificateProfile::RootCa, "Other Root", Days(100)),
                           other_key.get(), other_key, nullptr)
              .to_pem());
    profile_.trust_anchors = {tmp_ / "other.pem"};
    auto moved = TrustSnapshot::build(profile_, {}, SystemClock::now(), current.get());
    EXPECT_EQ(moved->validate(c.get(), "dev-1", SystemClock::now()).reason,
              RejectReason::Untrusted);
    // The root file rewritten with another root of the same name: refused as well.
    write(tmp_ / "root.pem",
          sign_certificate(spec(CertificateProfile::RootCa, "Test Root", Days(100)),
                           other_key.get(), other_key, nullptr)
              .to_pem());
    profile_.trust_anchors = {tmp_ / "root.pem"};
    auto replaced = TrustSnapshot::build(profile_, {}, SystemClock::now(), current.get());
    EXPECT_EQ(replaced->validate(c.get(), "dev-1", SystemClock::now()).reason,
              RejectReason::Untrusted);
    EXPECT_EQ(moved->cache_hits() + replaced->cache_hits(), 0u);

    // Another identity source: the identity is mapped afresh.
    write(tmp_ / "root.pem", root_.to_pem());
    profile_.identity = IdentitySource::Fingerprint;
    auto remapped = TrustSnapshot::build(profile_, {}, SystemClock::now(), current.get());
    auto r = remapped->validate(c.get(), c.fingerprint_sha256(), SystemClock::now());
    EXPECT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.identity, c.fingerprint_sha256());
    EXPECT_EQ(remapped->cache_hits(), 0u);
    // A required EKU the client lacks.
    profile_.identity = IdentitySource::CommonName;
    profile_.required_eku = "serverAuth";
    auto stricter = TrustSnapshot::build(profile_, {}, SystemClock::now(), current.get());
    EXPECT_EQ(stricter->validate(c.get(), "dev-1", SystemClock::now()).reason,
              RejectReason::MissingEku);
}

TEST_F(TrustValidator, TheClientIdIsCheckedOnEveryCall) {
    auto c = leaf("dev-1");
    auto snap = TrustSnapshot::build(profile_, {}, SystemClock::now());
    EXPECT_TRUE(snap->validate(c.get(), "dev-1", SystemClock::now()).ok());
    auto r = snap->validate(c.get(), "dev-2", SystemClock::now());
    EXPECT_EQ(r.reason, RejectReason::ClientIdMismatch);
    EXPECT_EQ(r.detail, "client id 'dev-2' is not the identity 'dev-1'");
    r = snap->validate(c.get(), "dev-1", SystemClock::now());
    EXPECT_TRUE(r.ok()) << r.detail;
    EXPECT_EQ(r.identity, "dev-1");
    EXPECT_EQ(snap->cache_hits(), 2u);
}

TEST_F(TrustValidator, ACachedVerificationHoldsOnlyWhileTheChainIsValid) {
    auto c = leaf("dev-1", CertificateProfile::Client, Days(30));
    auto snap = TrustSnapshot::build(profile_, {}, SystemClock::now());
    ASSERT_TRUE(snap->validate(c.get(), "dev-1", SystemClock::now()).ok());
    auto r = snap->validate(c.get(), "dev-1", SystemClock::now() + Days(31));
    EXPECT_EQ(r.reason, RejectReason::Expired) << r.detail;
    r = snap->validate(c.get(), "dev-1", SystemClock::now() - Days(2));
    EXPECT_EQ(r.reason, RejectReason::NotYetValid) << r.detail;
    EXPECT_TRUE(snap->validate(c.get(), "dev-1", SystemClock::now()).ok());
    EXPECT_EQ(snap->cache_hits(), 1u);
}

TEST_F(TrustValidator, AnIdentityRejectionIsCachedWithItsDetail) {
    auto c = leaf("dev-1/x");
    auto snap = TrustSnapshot::build(profile_, {}, SystemClock::now());
    for (int i = 0; i < 2; ++i) {
        auto r = snap->validate(c.get(), "dev-1/x", SystemClock::now());
        EXPECT_EQ(r.reason, RejectReason::BadIdentity);
        EXPECT_EQ(r.detail, "identity 'dev-1/x' (cn) contains '/' (an MQTT topic level separator)");
        EXPECT_EQ(r.identity, "");
    }
    EXPECT_EQ(snap->cache_hits(), 1u);
}

}  // namespace
}  // namespace brokertls
