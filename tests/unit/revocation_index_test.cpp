#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "brokertls/crypto/signing.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "support.hpp"
#include "trust/revocation_index.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;

class RevocationIndexTest : public ::testing::Test {
  protected:
    RevocationIndexTest()
        : root_key_(PrivateKey::generate(KeyType::EcP256)),
          root_(ca("Index Root", root_key_, root_key_, nullptr)),
          other_key_(PrivateKey::generate(KeyType::EcP256)),
          other_(ca("Index Other", other_key_, root_key_, &root_)) {}

    static Certificate ca(const std::string& cn, const PrivateKey& key,
                          const PrivateKey& issuer_key, const Certificate* issuer) {
        TimePoint now = SystemClock::now();
        return sign_certificate(
            {issuer ? CertificateProfile::IntermediateCa : CertificateProfile::RootCa,
             cn,
             "",
             {},
             now - Days(1),
             now + Days(100),
             ""},
            key.get(), issuer_key, issuer);
    }
    static std::vector<RevokedCertificate> entries(std::vector<std::string> serials) {
        std::vector<RevokedCertificate> out;
        for (auto& s : serials)
            out.push_back({std::move(s), SystemClock::now(), RevocationReason::KeyCompromise});
        return out;
    }
    CrlInForce crl_of(const Certificate& issuer, const PrivateKey& key,
                      std::vector<std::string> serials, long number = 1) {
        Crl crl = sign_crl(issuer, key, entries(std::move(serials)), SystemClock::now(),
                           SystemClock::now() + Days(7), number);
        return CrlInForce::parse(crl.to_pem(), "test.crl");
    }

    PrivateKey root_key_;
    Certificate root_;
    PrivateKey other_key_;
    Certificate other_;
};

TEST_F(RevocationIndexTest, FindsPresentSerialsPerIssuerOnly) {
    RevocationIndex index;
    index.add(crl_of(root_, root_key_, {"1F", "ABCDEF0123456789ABCDEF0123456789", "7"}));
    index.add(crl_of(other_, other_key_, {"2F", "1F00"}));
    EXPECT_EQ(index.size(), 5u);
    EXPECT_TRUE(index.contains("CN=Index Root", "1F"));
    EXPECT_TRUE(index.contains("CN=Index Root", "abcdef0123456789ABCDEF0123456789"));
    EXPECT_TRUE(index.contains("CN=Index Root", "7"));
    EXPECT_TRUE(index.contains("CN=Index Other", "2F"));
    EXPECT_TRUE(index.contains("CN=Index Other", "1F00"));
    // A serial of one issuer is not revoked under another.
    EXPECT_FALSE(index.contains("CN=Index Other", "1F"));
    EXPECT_FALSE(index.contains("CN=Index Root", "2F"));
    EXPECT_FALSE(index.contains("CN=Unknown", "1F"));
    // Absent serials: neighbours, a longer one, not hex at all.
    EXPECT_FALSE(index.contains("CN=Index Root", "1E"));
    EXPECT_FALSE(index.contains("CN=Index Root", "20"));
    EXPECT_FALSE(index.contains("CN=Index Root", "1F1F"));
    EXPECT_FALSE(index.contains("CN=Index Root", "ABCDEF0123456789ABCDEF012345678900"));
    EXPECT_FALSE(index.contains("CN=Index Root", "xyz"));
    EXPECT_FALSE(index.contains("CN=Index Root", ""));
}

TEST_F(RevocationIndexTest, LeadingZerosAndTheSignByteDoNotMatter) {
    // 0x80 and 0xFF00 are DER-encoded with a leading 00 (they would read as negative otherwise).
    RevocationIndex index;
    index.add(crl_of(root_, root_key_, {"80", "FF00", "0A"}));
    EXPECT_TRUE(index.contains("CN=Index Root", "80"));
    EXPECT_TRUE(index.contains("CN=Index Root", "0080"));
    EXPECT_TRUE(index.contains("CN=Index Root", "ff00"));
    EXPECT_TRUE(index.contains("CN=Index Root", "A"));
    EXPECT_TRUE(index.contains("CN=Index Root", "000A"));
    EXPECT_FALSE(index.contains("CN=Index Root", "-80"));  // the sign counts
    EXPECT_FALSE(index.contains("CN=Index Root", "FF"));

    // And a certificate's serial as the validator reads it (X509_get0_serialNumber).
    TimePoint now = SystemClock::now();
    Certificate leaf = sign_certificate(
        {CertificateProfile::Client, "dev", "", {}, now - Days(1), now + Days(1), "80"},
        PrivateKey::generate(KeyType::EcP256).get(), root_key_, &root_);
    EXPECT_TRUE(index.contains(leaf.issuer(), X509_get0_serialNumber(leaf.get())));
}

TEST_F(RevocationIndexTest, AnUnsortedCrlIsSortedForTheLookup) {
    // sign_crl sorts the entries and refuses negative serials; a CRL from elsewhere may have
    // both (a negative serial breaks RFC 5280, but other CAs' certificates can carry one).
    X509CrlPtr raw(X509_CRL_new());
    X509_CRL_set_version(raw.get(), X509_CRL_VERSION_2);
    X509_CRL_set_issuer_name(raw.get(), X509_get_subject_name(root_.get()));
    Asn1TimePtr at(ASN1_TIME_set(nullptr, SystemClock::to_time_t(SystemClock::now())));
    X509_CRL_set1_lastUpdate(raw.get(), at.get());
    for (long s : {900, 5, 70000, -7, 3, 42}) {
        X509_REVOKED* rev = X509_REVOKED_new();
        Asn1IntegerPtr n(ASN1_INTEGER_new());
        ASN1_INTEGER_set(n.get(), s);
        X509_REVOKED_set_serialNumber(rev, n.get());
        X509_REVOKED_set_revocationDate(rev, at.get());
        X509_CRL_add0_revoked(raw.get(), rev);
    }
    ASSERT_GT(X509_CRL_sign(raw.get(), root_key_.get(), EVP_sha256()), 0);
    CrlInForce crl = CrlInForce::parse(Crl(std::move(raw)).to_der(), "unsorted.crl");
    EXPECT_TRUE(crl.signed_by(root_));
    RevocationIndex index;
    index.add(crl);
    for (const char* s : {"384", "5", "11170", "-7", "3", "2A"})
        EXPECT_TRUE(index.contains("CN=Index Root", s)) << s;
    for (const char* s : {"4", "6", "2B", "0", "7", "-5"})
        EXPECT_FALSE(index.contains("CN=Index Root", s)) << s;
}

TEST_F(RevocationIndexTest, CrlInForceReadsWhatCrlReads) {
    Crl crl = sign_crl(root_, root_key_, entries({"1", "2", "3"}), SystemClock::now() - Days(1),
                       SystemClock::now() + Days(7), 42);
    for (const auto& data : {crl.to_pem(), crl.to_der()}) {
        CrlInForce kept = CrlInForce::parse(data, "crl");
        EXPECT_EQ(kept.issuer(), crl.issuer());
        EXPECT_EQ(kept.number(), 42);
        EXPECT_EQ(kept.this_update(), crl.this_update());
        EXPECT_EQ(kept.next_update(), crl.next_update());
        EXPECT_EQ(kept.revoked_count(), 3u);
        EXPECT_EQ(kept.version_text(), crl.version_text());
        EXPECT_EQ(kept.to_pem(), crl.to_pem());  // the files kept across restarts stay the same
        EXPECT_TRUE(kept.signed_by(root_));
        EXPECT_FALSE(kept.signed_by(other_));
    }
    // CRLF line ends, and other PEM blocks before the CRL (as PEM_read_bio_X509_CRL reads).
    std::string crlf;
    for (char c : crl.to_pem()) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    EXPECT_EQ(CrlInForce::parse(crlf, "crlf.crl").der(), crl.to_der());
    EXPECT_EQ(CrlInForce::parse(root_.to_pem() + crl.to_pem(), "bundle.crl").der(), crl.to_der());
    test::TempDir tmp;
    write_file_atomic(tmp / "crl.pem", crl.to_pem());
    write_file_atomic(tmp / "crl.der", crl.to_der());
    EXPECT_EQ(CrlInForce::load(tmp / "crl.pem").der(), crl.to_der());
    EXPECT_EQ(CrlInForce::load(tmp / "crl.der").der(), crl.to_der());

    // No number, no nextUpdate, no entries.
    X509CrlPtr bare(X509_CRL_new());
    X509_CRL_set_issuer_name(bare.get(), X509_get_subject_name(root_.get()));
    Asn1TimePtr at(ASN1_TIME_set(nullptr, SystemClock::to_time_t(SystemClock::now())));
    X509_CRL_set1_lastUpdate(bare.get(), at.get());
    ASSERT_GT(X509_CRL_sign(bare.get(), root_key_.get(), EVP_sha256()), 0);
    CrlInForce empty = CrlInForce::parse(Crl(std::move(bare)).to_der(), "bare.crl");
    EXPECT_EQ(empty.number(), -1);
    EXPECT_EQ(empty.next_update(), TimePoint::max());
    EXPECT_EQ(empty.revoked_count(), 0u);
    EXPECT_TRUE(empty.signed_by(root_));
}

TEST_F(RevocationIndexTest, ATamperedEntryFailsTheSignature) {
    Crl crl = sign_crl(root_, root_key_, entries({"1234567890ABCDEF"}), SystemClock::now(),
                       SystemClock::now() + Days(7), 1);
    std::string der = crl.to_der();
    auto at = der.find("\x12\x34\x56\x78\x90\xAB\xCD\xEF");
    ASSERT_NE(at, std::string::npos);
    der[at + 7] = '\xEE';  // un-revokes the serial, if the signature were not checked
    CrlInForce tampered = CrlInForce::parse(der, "tampered.crl");
    EXPECT_FALSE(tampered.signed_by(root_));
    // The same for the signed algorithm (X509_CRL_verify's check that both algorithms agree).
    EXPECT_TRUE(CrlInForce::parse(crl.to_der(), "crl").signed_by(root_));
}

TEST_F(RevocationIndexTest, ManyUnsortedEntriesAreSortedInPlace) {
    // Long permutation cycles: the records follow the sorted order in place.
    X509CrlPtr raw(X509_CRL_new());
    X509_CRL_set_version(raw.get(), X509_CRL_VERSION_2);
    X509_CRL_set_issuer_name(raw.get(), X509_get_subject_name(root_.get()));
    Asn1TimePtr at(ASN1_TIME_set(nullptr, SystemClock::to_time_t(SystemClock::now())));
    X509_CRL_set1_lastUpdate(raw.get(), at.get());
    std::vector<long> serials;
    for (long s = 1; s <= 3000; ++s) serials.push_back(s * 7919 % 1000003);
    std::mt19937 shuffle(42);
    std::shuffle(serials.begin(), serials.end(), shuffle);
    for (long s : serials) {
        X509_REVOKED* rev = X509_REVOKED_new();
        Asn1IntegerPtr n(ASN1_INTEGER_new());
        ASN1_INTEGER_set(n.get(), s);
        X509_REVOKED_set_serialNumber(rev, n.get());
        X509_REVOKED_set_revocationDate(rev, at.get());
        X509_CRL_add0_revoked(raw.get(), rev);
    }
    ASSERT_GT(X509_CRL_sign(raw.get(), root_key_.get(), EVP_sha256()), 0);
    RevocationIndex index;
    index.add(CrlInForce::parse(Crl(std::move(raw)).to_der(), "unsorted.crl"));
    EXPECT_EQ(index.size(), serials.size());
    auto hex = [](long v) {
        char text[32];
        std::snprintf(text, sizeof text, "%lX", v);
        return std::string(text);
    };
    for (long s : serials) EXPECT_TRUE(index.contains("CN=Index Root", hex(s))) << s;
    for (long s : {0L, 1000003L, 7918L, 7920L, 3001L * 7919 % 1000003})
        EXPECT_FALSE(index.contains("CN=Index Root", hex(s))) << s;
}

// signed_by verifies over the CRL's own bytes for algorithms with a digest and for EdDSA
// (ASN1_item_verify copied the whole signed part first: the largest part of the peak while a
// changed CRL of 1,000,000 entries is applied) and answers as X509_CRL_verify does.
TEST_F(RevocationIndexTest, SignaturesOfEveryKeyTypeVerifyAsX509CrlVerify) {
    PrivateKey ec = PrivateKey::generate(KeyType::EcP256);
    for (KeyType type : {KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048, KeyType::Ed25519}) {
        SCOPED_TRACE(std::string(key_type_name(type)));
        PrivateKey key = PrivateKey::generate(type);
        Certificate issuer = ca("Typed Root", key, key, nullptr);
        // Same name, other key (of another type): the wrong-key-type check.
        Certificate impostor = ca("Typed Root", ec, ec, nullptr);
        Crl crl = sign_crl(issuer, key, entries({"1234567890ABCDEF", "2"}), SystemClock::now(),
                           SystemClock::now() + Days(7), 1);
        std::string der = crl.to_der();
        CrlInForce parsed = CrlInForce::parse(der, "typed.crl");
        EXPECT_TRUE(crl.signed_by(issuer));
        EXPECT_TRUE(parsed.signed_by(issuer));
        EXPECT_FALSE(crl.signed_by(impostor));
        EXPECT_FALSE(parsed.signed_by(impostor));
        auto entry = der.find("\x12\x34\x56\x78\x90\xAB\xCD\xEF");
        ASSERT_NE(entry, std::string::npos);
        der[entry + 7] = '\xEE';
        EXPECT_FALSE(CrlInForce::parse(der, "tampered.crl").signed_by(issuer));
    }
}

TEST_F(RevocationIndexTest, RsaPssSignaturesVerify) {
    // RSA-PSS keeps its parameters in the AlgorithmIdentifier: OpenSSL's own path.
    PrivateKey key = PrivateKey::generate(KeyType::Rsa2048);
    Certificate issuer = ca("Pss Root", key, key, nullptr);
    X509CrlPtr raw(X509_CRL_new());
    X509_CRL_set_version(raw.get(), X509_CRL_VERSION_2);
    X509_CRL_set_issuer_name(raw.get(), X509_get_subject_name(issuer.get()));
    Asn1TimePtr at(ASN1_TIME_set(nullptr, SystemClock::to_time_t(SystemClock::now())));
    X509_CRL_set1_lastUpdate(raw.get(), at.get());
    X509_REVOKED* rev = X509_REVOKED_new();
    Asn1IntegerPtr n(ASN1_INTEGER_new());
    ASN1_INTEGER_set(n.get(), 0x5A5A5A5A);
    X509_REVOKED_set_serialNumber(rev, n.get());
    X509_REVOKED_set_revocationDate(rev, at.get());
    X509_CRL_add0_revoked(raw.get(), rev);
    std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX_free>> ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    ASSERT_EQ(EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key.get()), 1);
    ASSERT_GT(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 0);
    ASSERT_GT(X509_CRL_sign_ctx(raw.get(), ctx.get()), 0);
    Crl crl(std::move(raw));
    std::string der = crl.to_der();
    const ASN1_BIT_STRING* sig = nullptr;
    const X509_ALGOR* alg = nullptr;
    X509_CRL_get0_signature(crl.get(), &sig, &alg);
    ASSERT_EQ(OBJ_obj2nid(alg->algorithm), NID_rsassaPss);
    EXPECT_TRUE(crl.signed_by(issuer));
    EXPECT_TRUE(CrlInForce::parse(der, "pss.crl").signed_by(issuer));
    auto entry = der.find("\x5A\x5A\x5A\x5A");
    ASSERT_NE(entry, std::string::npos);
    der[entry + 3] = '\x5B';
    EXPECT_FALSE(CrlInForce::parse(der, "tampered.crl").signed_by(issuer));
}

TEST_F(RevocationIndexTest, RefusesWhatIsNotACrl) {
    Crl crl = sign_crl(root_, root_key_, entries({"1", "2"}), SystemClock::now(),
                       SystemClock::now() + Days(7), 1);
    std::string der = crl.to_der();
    auto message = [](const std::string& data) {
        try {
            CrlInForce::parse(data, "bad.crl");
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::Input);
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(message("nope"), "bad.crl: not a PEM or DER CRL");
    EXPECT_EQ(message(der.substr(0, der.size() - 1)), "bad.crl: not a PEM or DER CRL");
    EXPECT_EQ(message(der + "x"), "bad.crl: not a PEM or DER CRL");
    EXPECT_EQ(message(root_.to_pem()), "bad.crl: not a PEM or DER CRL");
    EXPECT_EQ(message(std::string(root_.to_der())), "bad.crl: not a PEM or DER CRL");
    EXPECT_EQ(message(""), "bad.crl: not a PEM or DER CRL");
    test::TempDir tmp;
    EXPECT_THROW(CrlInForce::load(tmp / "none.crl"), Error);
    // A serial far longer than RFC 5280's 20 octets would widen every record of the index.
    std::string longest(64, 'A'), too_long = "7" + std::string(129, 'A');
    EXPECT_EQ(crl_of(root_, root_key_, {longest}).revoked_count(), 1u);
    EXPECT_EQ(message(sign_crl(root_, root_key_, entries({"1", too_long}), SystemClock::now(),
                               SystemClock::now() + Days(7), 1)
                          .to_der()),
              "bad.crl: a revoked serial number of 65 bytes (RFC 5280 allows 20; at most 64 are "
              "accepted)");
}

}  // namespace
}  // namespace brokertls
