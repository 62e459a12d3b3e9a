// Secrets sealed at rest: AES-256-GCM under a key file, bound to their record.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "brokertls/crypto/sealing.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

class SealingTest : public ::testing::Test {
  protected:
    test::TempDir dir_;
};

TEST_F(SealingTest, AMissingKeyIsMadePrivateAndLoadsAgain) {
    auto file = dir_ / "secrets.key";
    SecretSealer first = SecretSealer::load(file, true);
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    std::string text = read_file(file);
    EXPECT_EQ(text.size(), 65u);
    EXPECT_EQ(text.find_first_not_of("0123456789abcdef"), 64u);
    std::string sealed = first.seal("device key", "devices/x7k2p.json");
    EXPECT_EQ(sealed.rfind("v1:", 0), 0u);
    EXPECT_EQ(sealed.find("device key"), std::string::npos);
    EXPECT_EQ(SecretSealer::load(file, false).open(sealed, "devices/x7k2p.json"), "device key");
}

TEST_F(SealingTest, OpensOnlyWithTheSameKeyForTheSameRecordUndamaged) {
    SecretSealer sealer = SecretSealer::load(dir_ / "a.key", true);
    SecretSealer other = SecretSealer::load(dir_ / "b.key", true);
    std::string sealed = sealer.seal("secret", "devices/a.json");
    EXPECT_NE(sealer.seal("secret", "devices/a.json"), sealed);  // a fresh nonce each time
    EXPECT_EQ(sealer.open(sealed, "devices/a.json"), "secret");
    EXPECT_EQ(sealer.open(sealed, "devices/b.json"), std::nullopt);
    EXPECT_EQ(other.open(sealed, "devices/a.json"), std::nullopt);
    std::string damaged = sealed;
    damaged[10] = damaged[10] == '0' ? '1' : '0';
    EXPECT_EQ(sealer.open(damaged, "devices/a.json"), std::nullopt);
    for (std::string bad : {std::string(), std::string("v1:"), std::string("v1:zz"),
                            std::string("v2:") + sealed.substr(3), sealed.substr(0, 40)})
        EXPECT_EQ(sealer.open(bad, "devices/a.json"), std::nullopt) << bad;
    EXPECT_EQ(sealer.open(sealer.seal("", "r"), "r"), "");
}

TEST_F(SealingTest, AKeyFileOthersCanReadOrThatIsMalformedIsRefused) {
    auto file = dir_ / "secrets.key";
    write_file_atomic(file, std::string(64, 'a') + "\n", 0640);
    EXPECT_NE(
        test::error_of([&] { SecretSealer::load(file, false); }, ErrorKind::Io).find("chmod 600"),
        std::string::npos);
    write_file_atomic(file, "0123\n", kPrivateMode);
    EXPECT_NE(test::error_of([&] { SecretSealer::load(file, false); }, ErrorKind::Input)
                  .find("64 hex digits"),
              std::string::npos);
    EXPECT_NE(test::error_of([&] { SecretSealer::load(dir_ / "absent.key", false); }, ErrorKind::Io)
                  .find("absent.key"),
              std::string::npos);
}

}  // namespace
}  // namespace brokertls
