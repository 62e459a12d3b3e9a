// The CRLs in force kept in STATE_DIR/crls/ across restarts (trust/kept_crls.hpp).

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "brokertls/crypto/digest.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/store/files.hpp"
#include "support.hpp"
#include "trust/kept_crls.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;

class KeptCrls : public ::testing::Test {
  protected:
    KeptCrls()
        : key_(PrivateKey::generate(KeyType::EcP256)),
          root_(sign_certificate({CertificateProfile::RootCa,
                                  "Kept Root",
                                  "",
                                  {},
                                  SystemClock::now() - Days(1),
                                  SystemClock::now() + Days(100),
                                  ""},
                                 key_.get(), key_, nullptr)) {}

    std::shared_ptr<const CrlInForce> crl(long number) const {
        Crl signed_crl =
            sign_crl(root_, key_, {{"1F", SystemClock::now(), RevocationReason::KeyCompromise}},
                     SystemClock::now(), SystemClock::now() + Days(7), number);
        return std::make_shared<const CrlInForce>(CrlInForce::parse(signed_crl.to_pem(), "crl"));
    }
    fs::path kept(std::string_view extension) const {
        return state_ / "crls" /
               (sha256_hex("CN=Kept Root").substr(0, 32) + std::string(extension));
    }
    static ino_t inode(const fs::path& path) {
        struct stat st {};
        EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
        return st.st_ino;
    }

    test::TempDir tmp_;
    fs::path state_ = tmp_ / "state";
    PrivateKey key_;
    Certificate root_;
    std::vector<std::string> warnings_;
};

TEST_F(KeptCrls, KeptAsTheirDerAndReadBack) {
    auto one = crl(1);
    keep_crls(state_, {{one->issuer(), one}}, warnings_);
    EXPECT_TRUE(warnings_.empty()) << testing::PrintToString(warnings_);
    EXPECT_EQ(read_file(kept(".crl")), one->der());
    EXPECT_EQ(fs::status(state_ / "crls").permissions() & fs::perms::all, fs::perms::owner_all);
    EXPECT_EQ(fs::status(kept(".crl")).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                  fs::perms::others_read);
    CrlsInForce back = load_kept_crls(state_, warnings_);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back.at("CN=Kept Root")->der(), one->der());
    EXPECT_TRUE(back.at("CN=Kept Root")->signed_by(root_));
}

TEST_F(KeptCrls, AnUnchangedCrlIsNotWrittenAgainAndAChangedOneIs) {
    auto one = crl(1);
    keep_crls(state_, {{one->issuer(), one}}, warnings_);
    ino_t first = inode(kept(".crl"));
    keep_crls(state_, {{one->issuer(), one}}, warnings_);
    EXPECT_EQ(inode(kept(".crl")), first);  // write_file_atomic would have renamed a new file
    auto two = crl(2);
    keep_crls(state_, {{two->issuer(), two}}, warnings_);
    EXPECT_NE(inode(kept(".crl")), first);
    EXPECT_EQ(read_file(kept(".crl")), two->der());
    EXPECT_TRUE(warnings_.empty()) << testing::PrintToString(warnings_);
}

TEST_F(KeptCrls, AKeptFileHoldingACrlInForceGivesThatCrl) {
    auto one = crl(1);
    keep_crls(state_, {{one->issuer(), one}}, warnings_);
    // The same bytes in force: shared, not read a second time.
    CrlsInForce back = load_kept_crls(state_, warnings_, {{one->issuer(), one}});
    EXPECT_EQ(back.at("CN=Kept Root"), one);
    // Another CRL in force: the kept file is read.
    auto two = crl(2);
    back = load_kept_crls(state_, warnings_, {{two->issuer(), two}});
    EXPECT_NE(back.at("CN=Kept Root"), two);
    EXPECT_EQ(back.at("CN=Kept Root")->number(), 1);
    EXPECT_EQ(back.at("CN=Kept Root")->der(), one->der());
    EXPECT_TRUE(warnings_.empty()) << testing::PrintToString(warnings_);
}

TEST_F(KeptCrls, PemFilesOfEarlierVersionsAreReadAndReplaced) {
    auto two = crl(2);
    fs::create_directories(state_ / "crls");
    write_file_atomic(kept(".pem"), two->to_pem());
    CrlsInForce back = load_kept_crls(state_, warnings_);
    EXPECT_EQ(back.at("CN=Kept Root")->number(), 2);
    // Both files (a keep interrupted between them): the newer counts.
    write_file_atomic(kept(".crl"), crl(1)->der());
    EXPECT_EQ(load_kept_crls(state_, warnings_).at("CN=Kept Root")->number(), 2);
    keep_crls(state_, back, warnings_);
    EXPECT_EQ(read_file(kept(".crl")), two->der());
    EXPECT_FALSE(fs::exists(kept(".pem")));
    EXPECT_TRUE(warnings_.empty()) << testing::PrintToString(warnings_);
}

TEST_F(KeptCrls, AnUnreadableKeptFileIsAWarning) {
    fs::create_directories(state_ / "crls");
    write_file_atomic(kept(".crl"), "not a CRL");
    EXPECT_TRUE(load_kept_crls(state_, warnings_).empty());
    ASSERT_EQ(warnings_.size(), 1u);
    EXPECT_EQ(warnings_[0],
              "kept CRL ignored: " + kept(".crl").string() + ": not a PEM or DER CRL");
}

}  // namespace
}  // namespace brokertls
