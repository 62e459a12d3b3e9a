// Certificate signing requests and certificate revocation lists.

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "brokertls/crypto/crl.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using Type = SubjectAltName::Type;
using std::chrono::seconds;

using test::error_of;

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.rfind(prefix, 0) == 0;
}

std::string pem_of_der_request(const std::string& der) {
    BioPtr in = memory_bio(der);
    X509ReqPtr req(d2i_X509_REQ_bio(in.get(), nullptr));
    EXPECT_NE(req, nullptr);
    BioPtr out = memory_bio();
    EXPECT_EQ(PEM_write_bio_X509_REQ(out.get(), req.get()), 1);
    return bio_contents(out.get());
}

const std::vector<SubjectAltName> kSans = {
    {Type::Dns, "dev-1.example.com"},
    {Type::Ip, "10.0.0.7"},
    {Type::Ip, "fd00::7"},
    {Type::Uri, "spiffe://example/dev-1"},
    {Type::Email, "dev-1@example.com"},
};

// ---- CSR ----

class CsrTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(CsrTest, CreateAndInspect) {
    PrivateKey key = PrivateKey::generate(GetParam());
    CertificateRequest csr = CertificateRequest::create(key, "dev-1", kSans);
    EXPECT_EQ(csr.subject(), "CN=dev-1");
    EXPECT_EQ(csr.common_name(), "dev-1");
    EXPECT_EQ(csr.subject_alt_names(), kSans);
    EXPECT_TRUE(csr.signature_valid());
    EXPECT_NO_THROW(csr.verify_signature("dev-1.csr"));
    ASSERT_NE(csr.public_key(), nullptr);
    EXPECT_EQ(EVP_PKEY_eq(csr.public_key(), key.get()), 1);
}

TEST_P(CsrTest, PemRoundTrip) {
    PrivateKey key = PrivateKey::generate(GetParam());
    CertificateRequest csr = CertificateRequest::create(key, "dev-1", kSans);
    std::string pem = csr.to_pem();
    EXPECT_TRUE(starts_with(pem, "-----BEGIN CERTIFICATE REQUEST-----\n")) << pem;
    CertificateRequest back = CertificateRequest::parse(pem, "dev-1.csr");
    EXPECT_EQ(back.to_der(), csr.to_der());
    EXPECT_EQ(back.common_name(), "dev-1");
    EXPECT_EQ(back.subject_alt_names(), kSans);
    EXPECT_TRUE(back.signature_valid());
    EXPECT_EQ(EVP_PKEY_eq(back.public_key(), key.get()), 1);
}

TEST_P(CsrTest, DerRoundTrip) {
    PrivateKey key = PrivateKey::generate(GetParam());
    CertificateRequest csr = CertificateRequest::create(key, "dev-1", kSans);
    std::string der = csr.to_der();
    EXPECT_EQ(static_cast<unsigned char>(der[0]), 0x30);
    CertificateRequest back = CertificateRequest::parse(der, "dev-1.der");
    EXPECT_EQ(back.to_pem(), csr.to_pem());
    EXPECT_EQ(back.subject_alt_names(), kSans);
    EXPECT_TRUE(back.signature_valid());
}

TEST_P(CsrTest, TamperedSignatureDoesNotVerify) {
    PrivateKey key = PrivateKey::generate(GetParam());
    std::string der = CertificateRequest::create(key, "dev-1", kSans).to_der();
    // The signature BIT STRING is the last element: flip a bit in its final byte.
    der.back() = static_cast<char>(der.back() ^ 0x01);
    CertificateRequest tampered = CertificateRequest::parse(der, "tampered.der");
    EXPECT_FALSE(tampered.signature_valid());
    EXPECT_EQ(error_of([&] { tampered.verify_signature("tampered.csr"); }, ErrorKind::Input),
              "tampered.csr: signature does not verify");

    // The same request as PEM.
    CertificateRequest from_pem =
        CertificateRequest::parse(pem_of_der_request(der), "tampered.pem");
    EXPECT_FALSE(from_pem.signature_valid());
    EXPECT_EQ(error_of([&] { from_pem.verify_signature("tampered.pem"); }, ErrorKind::Input),
              "tampered.pem: signature does not verify");
}

TEST_P(CsrTest, TamperedSubjectDoesNotVerify) {
    PrivateKey key = PrivateKey::generate(GetParam());
    std::string der = CertificateRequest::create(key, "dev-1", {}).to_der();
    size_t at = der.find("dev-1");
    ASSERT_NE(at, std::string::npos);
    der[at + 4] = '2';  // CN=dev-2, same length, still well-formed DER
    CertificateRequest tampered = CertificateRequest::parse(der, "tampered.der");
    EXPECT_EQ(tampered.common_name(), "dev-2");
    EXPECT_FALSE(tampered.signature_valid());
    std::string msg =
        error_of([&] { tampered.verify_signature("req from dev-2"); }, ErrorKind::Input);
    EXPECT_EQ(msg, "req from dev-2: signature does not verify");
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, CsrTest,
                         ::testing::Values(KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048,
                                           KeyType::Ed25519),
                         [](const ::testing::TestParamInfo<KeyType>& param) {
                             std::string name(key_type_name(param.param));
                             std::erase(name, '-');
                             return name;
                         });

TEST(CsrMiscTest, WithoutNamesOrCommonName) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    CertificateRequest bare = CertificateRequest::create(key, "", {});
    EXPECT_EQ(bare.subject(), "");
    EXPECT_EQ(bare.common_name(), "");
    EXPECT_TRUE(bare.subject_alt_names().empty());
    EXPECT_TRUE(bare.signature_valid());

    CertificateRequest sans_only = CertificateRequest::create(key, "", {{Type::Dns, "a.example"}});
    EXPECT_EQ(sans_only.common_name(), "");
    EXPECT_EQ(sans_only.subject_alt_names(),
              (std::vector<SubjectAltName>{{Type::Dns, "a.example"}}));
}

TEST(CsrMiscTest, OverlongCommonName) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    std::string cn(65, 'c');
    std::string msg = error_of([&] { CertificateRequest::create(key, cn, {}); }, ErrorKind::Usage);
    EXPECT_TRUE(starts_with(msg, cn + ": ")) << msg;
}

TEST(CsrMiscTest, GarbageThrowsNamingTheSource) {
    EXPECT_EQ(
        error_of([] { CertificateRequest::parse("garbage", "upload.csr"); }, ErrorKind::Input),
        "upload.csr: not a PEM or DER certificate request");
    EXPECT_EQ(error_of(
                  [] {
                      CertificateRequest::parse(
                          "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                          "-----END CERTIFICATE REQUEST-----\n",
                          "upload.pem");
                  },
                  ErrorKind::Input),
              "upload.pem: not a PEM or DER certificate request");
    // A private key is not a request.
    std::string key_pem = PrivateKey::generate(KeyType::EcP256).to_pem();
    EXPECT_EQ(error_of([&] { CertificateRequest::parse(key_pem, "key.pem"); }, ErrorKind::Input),
              "key.pem: not a PEM or DER certificate request");
}

TEST(CsrMiscTest, LoadFromFile) {
    test::TempDir dir;
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    auto path = dir / "dev.csr";
    write_file_atomic(path, CertificateRequest::create(key, "dev", {}).to_pem());
    EXPECT_EQ(CertificateRequest::load(path).common_name(), "dev");
    std::string msg =
        error_of([&] { CertificateRequest::load(dir / "absent.csr"); }, ErrorKind::Input);
    EXPECT_TRUE(starts_with(msg, (dir / "absent.csr").string() + ": ")) << msg;
}

// ---- CRL ----

class CrlTest : public ::testing::Test {
  protected:
    CrlTest()
        : now_(std::chrono::floor<seconds>(SystemClock::now())),
          ca_key_(PrivateKey::generate(KeyType::EcP256)),
          ca_(make_ca("CRL Test CA", ca_key_)),
          other_key_(PrivateKey::generate(KeyType::EcP256)),
          other_ca_(make_ca("CRL Test CA", other_key_)) {}  // same name, different key

    Certificate make_ca(const std::string& cn, const PrivateKey& key) const {
        CertificateSpec spec;
        spec.profile = CertificateProfile::RootCa;
        spec.common_name = cn;
        spec.not_before = now_ - Days(1);
        spec.not_after = now_ + Days(365);
        return sign_certificate(spec, key.get(), key, nullptr);
    }

    TimePoint now_;
    PrivateKey ca_key_;
    Certificate ca_;
    PrivateKey other_key_;
    Certificate other_ca_;
};

TEST_F(CrlTest, SignAndParseBack) {
    std::vector<RevokedCertificate> entries = {
        {"7F00112233445566778899AABBCCDDEE", now_ - Days(3), RevocationReason::KeyCompromise},
        {"0A1B2C", now_ - seconds(90), RevocationReason::Superseded},
        {"1234", now_ - Days(1) - seconds(7), RevocationReason::Unspecified},
    };
    Crl crl = sign_crl(ca_, ca_key_, entries, now_ - seconds(60), now_ + Days(7), 42);

    for (const Crl& parsed :
         {Crl::parse(crl.to_pem(), "ca.crl"), Crl::parse(crl.to_der(), "ca.crl.der")}) {
        EXPECT_EQ(parsed.issuer(), "CN=CRL Test CA");
        EXPECT_EQ(parsed.number(), 42);
        EXPECT_EQ(parsed.this_update(), now_ - seconds(60));
        EXPECT_EQ(parsed.next_update(), now_ + Days(7));
        EXPECT_TRUE(parsed.signed_by(ca_));
        EXPECT_FALSE(parsed.signed_by(other_ca_));

        std::vector<RevokedCertificate> revoked = parsed.revoked();
        ASSERT_EQ(revoked.size(), entries.size());
        std::map<std::string, RevokedCertificate> by_serial;
        for (const auto& r : revoked) by_serial.emplace(r.serial_hex, r);
        for (const auto& e : entries) {
            auto it = by_serial.find(e.serial_hex);
            ASSERT_NE(it, by_serial.end()) << e.serial_hex;
            EXPECT_EQ(it->second.revoked_at, e.revoked_at) << e.serial_hex;
            EXPECT_EQ(it->second.reason, e.reason) << e.serial_hex;
        }
    }
    EXPECT_TRUE(starts_with(crl.to_pem(), "-----BEGIN X509 CRL-----\n"));
    EXPECT_EQ(Crl::parse(crl.to_der(), "der").to_pem(), crl.to_pem());
}

TEST_F(CrlTest, EveryReasonRoundTrips) {
    const std::vector<RevocationReason> reasons = {
        RevocationReason::Unspecified,     RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,    RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,      RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold, RevocationReason::PrivilegeWithdrawn,
    };
    std::vector<RevokedCertificate> entries;
    for (size_t i = 0; i < reasons.size(); ++i)
        entries.push_back({"1" + std::to_string(i), now_ - Days(1), reasons[i]});  // "10".."17"
    Crl crl = Crl::parse(sign_crl(ca_, ca_key_, entries, now_, now_ + Days(1), 1).to_der(), "crl");
    std::map<std::string, RevocationReason> got;
    for (const auto& r : crl.revoked()) got[r.serial_hex] = r.reason;
    ASSERT_EQ(got.size(), reasons.size());
    for (const auto& e : entries) EXPECT_EQ(got.at(e.serial_hex), e.reason) << e.serial_hex;
}

// A CRL with its cRLNumber extension removed (re-signed), as some CAs issue them.
Crl without_number(const Crl& crl, const PrivateKey& key) {
    X509CrlPtr copy(X509_CRL_dup(crl.get()));
    int at = X509_CRL_get_ext_by_NID(copy.get(), NID_crl_number, -1);
    X509_EXTENSION_free(X509_CRL_delete_ext(copy.get(), at));
    X509_CRL_sign(copy.get(), key.get(), EVP_sha256());
    return Crl::parse(Crl(std::move(copy)).to_der(), "crl");
}

TEST_F(CrlTest, NewerThanComparesNumbersThenThisUpdate) {
    Crl older_high = sign_crl(ca_, ca_key_, {}, now_ - Days(2), now_ + Days(7), 5);
    Crl newer_low = sign_crl(ca_, ca_key_, {}, now_, now_ + Days(7), 4);
    EXPECT_TRUE(older_high.newer_than(newer_low));  // the number decides
    EXPECT_FALSE(newer_low.newer_than(older_high));
    Crl newer_same = sign_crl(ca_, ca_key_, {}, now_, now_ + Days(7), 5);
    EXPECT_TRUE(newer_same.newer_than(older_high));  // equal numbers: thisUpdate
    EXPECT_FALSE(older_high.newer_than(newer_same));
    EXPECT_FALSE(newer_same.newer_than(newer_same));

    Crl unnumbered = without_number(older_high, ca_key_);
    ASSERT_EQ(unnumbered.number(), -1);
    EXPECT_TRUE(newer_low.newer_than(unnumbered));  // no number on one side: thisUpdate
    EXPECT_FALSE(unnumbered.newer_than(newer_low));
    EXPECT_EQ(older_high.version_text(), "CRL number 5, thisUpdate " + to_iso8601(now_ - Days(2)));
    EXPECT_EQ(unnumbered.version_text(), "no CRL number, thisUpdate " + to_iso8601(now_ - Days(2)));
}

TEST_F(CrlTest, EmptyCrl) {
    Crl crl = sign_crl(ca_, ca_key_, {}, now_, now_ + Days(30), 1);
    EXPECT_TRUE(crl.revoked().empty());
    EXPECT_EQ(crl.number(), 1);
    EXPECT_TRUE(crl.signed_by(ca_));
    EXPECT_FALSE(crl.signed_by(other_ca_));
}

TEST_F(CrlTest, SignedByAnotherCaKey) {
    Crl crl = sign_crl(other_ca_, other_key_, {}, now_, now_ + Days(30), 5);
    EXPECT_TRUE(crl.signed_by(other_ca_));
    EXPECT_FALSE(crl.signed_by(ca_));
}

TEST_F(CrlTest, MalformedEntrySerialIsRejected) {
    std::vector<RevokedCertificate> entries = {{"12zz", now_, RevocationReason::Unspecified}};
    std::string msg = error_of([&] { sign_crl(ca_, ca_key_, entries, now_, now_ + Days(1), 1); },
                               ErrorKind::Input);
    EXPECT_TRUE(starts_with(msg, "12zz: ")) << msg;
}

TEST_F(CrlTest, WithoutNumberOrNextUpdate) {
    // A CRL from elsewhere: no cRLNumber, no nextUpdate.
    X509CrlPtr raw(X509_CRL_new());
    X509_CRL_set_version(raw.get(), X509_CRL_VERSION_2);
    X509_CRL_set_issuer_name(raw.get(), X509_get_subject_name(ca_.get()));
    Asn1TimePtr last(ASN1_TIME_set(nullptr, SystemClock::to_time_t(now_)));
    X509_CRL_set1_lastUpdate(raw.get(), last.get());
    ASSERT_GT(X509_CRL_sign(raw.get(), ca_key_.get(), EVP_sha256()), 0);
    Crl crl(std::move(raw));
    EXPECT_EQ(crl.number(), -1);
    EXPECT_EQ(crl.next_update(), TimePoint::max());
    EXPECT_EQ(crl.this_update(), now_);
    EXPECT_TRUE(crl.signed_by(ca_));
}

TEST(CrlParseTest, GarbageThrowsNamingTheSource) {
    EXPECT_EQ(error_of([] { Crl::parse("nope", "ca.crl"); }, ErrorKind::Input),
              "ca.crl: not a PEM or DER CRL");
    EXPECT_EQ(
        error_of(
            [] { Crl::parse("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "x"); },
            ErrorKind::Input),
        "x: not a PEM or DER CRL");
    test::TempDir dir;
    std::string msg = error_of([&] { Crl::load(dir / "none.crl"); }, ErrorKind::Input);
    EXPECT_TRUE(starts_with(msg, (dir / "none.crl").string() + ": ")) << msg;
}

TEST(CrlReasonTest, ParseNamesCaseInsensitively) {
    EXPECT_EQ(parse_revocation_reason("unspecified"), RevocationReason::Unspecified);
    EXPECT_EQ(parse_revocation_reason("keyCompromise"), RevocationReason::KeyCompromise);
    EXPECT_EQ(parse_revocation_reason("KEYCOMPROMISE"), RevocationReason::KeyCompromise);
    EXPECT_EQ(parse_revocation_reason("keycompromise"), RevocationReason::KeyCompromise);
    EXPECT_EQ(parse_revocation_reason("CACompromise"), RevocationReason::CaCompromise);
    EXPECT_EQ(parse_revocation_reason("caCompromise"), RevocationReason::CaCompromise);
    EXPECT_EQ(parse_revocation_reason("affiliationChanged"), RevocationReason::AffiliationChanged);
    EXPECT_EQ(parse_revocation_reason("Superseded"), RevocationReason::Superseded);
    EXPECT_EQ(parse_revocation_reason("cessationofoperation"),
              RevocationReason::CessationOfOperation);
    EXPECT_EQ(parse_revocation_reason("certificateHold"), RevocationReason::CertificateHold);
    EXPECT_EQ(parse_revocation_reason("privilegeWithdrawn"), RevocationReason::PrivilegeWithdrawn);
}

TEST(CrlReasonTest, UnknownNames) {
    EXPECT_EQ(parse_revocation_reason(""), std::nullopt);
    EXPECT_EQ(parse_revocation_reason("stolen"), std::nullopt);
    EXPECT_EQ(parse_revocation_reason("removeFromCRL"), std::nullopt);
    EXPECT_EQ(parse_revocation_reason("keyCompromise "), std::nullopt);
    EXPECT_EQ(parse_revocation_reason("key-compromise"), std::nullopt);
    EXPECT_EQ(parse_revocation_reason("1"), std::nullopt);
    EXPECT_EQ(parse_revocation_reason("superseded\xff"), std::nullopt);
    EXPECT_EQ(parse_revocation_reason("supersede\xe9"), std::nullopt);  // same length, not ASCII
}

TEST(CrlReasonTest, NamesRoundTrip) {
    for (auto reason : {RevocationReason::Unspecified, RevocationReason::KeyCompromise,
                        RevocationReason::CaCompromise, RevocationReason::AffiliationChanged,
                        RevocationReason::Superseded, RevocationReason::CessationOfOperation,
                        RevocationReason::CertificateHold, RevocationReason::PrivilegeWithdrawn}) {
        std::string_view name = revocation_reason_name(reason);
        EXPECT_EQ(parse_revocation_reason(name), reason) << name;
        EXPECT_NE(revocation_reason_names().find(name), std::string_view::npos) << name;
    }
}

}  // namespace
}  // namespace brokertls
