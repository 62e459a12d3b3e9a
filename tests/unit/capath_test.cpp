// sync_capath removes only files it wrote (listed in its manifest): an operator's own CA file in
// the same directory stays, whatever its name.

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "brokertls/crypto/signing.hpp"
#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "support.hpp"
#include "trust/capath.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Certificate root(const std::string& cn) {
    auto key = PrivateKey::generate(KeyType::EcP256);
    return sign_certificate({CertificateProfile::RootCa,
                             cn,
                             "",
                             {},
                             SystemClock::now() - Days(1),
                             SystemClock::now() + Days(30),
                             ""},
                            key.get(), key, nullptr);
}

std::string hashed_name(const Certificate& cert, int index) {
    char name[32];
    std::snprintf(name, sizeof name, "%08lx.%d",
                  X509_NAME_hash_ex(X509_get_subject_name(cert.get()), nullptr, nullptr, nullptr),
                  index);
    return name;
}

std::vector<std::string> manifest_files(const fs::path& dir) {
    return json::parse(read_file(dir / kCapathManifest))["files"].get<std::vector<std::string>>();
}

class CapathTest : public ::testing::Test {
  protected:
    test::TempDir tmp;
    fs::path dir = tmp / "capath";
    Certificate a = root("CA A"), b = root("CA B"), operators = root("Operator CA");
};

TEST_F(CapathTest, RemovesOnlyTheFilesItWrote) {
    // The operator's own CA (as c_rehash names it), a copy of it under the name our CA A would
    // take first, and an unrelated file.
    ensure_directory(dir);
    write_file_atomic(dir / hashed_name(operators, 0), operators.to_pem());
    write_file_atomic(dir / hashed_name(a, 0), operators.to_pem());
    write_file_atomic(dir / "README", "operator notes\n");

    sync_capath(dir, {a, b});
    // A's first name was taken by the operator: ours is the next one, theirs is untouched.
    EXPECT_EQ(read_file(dir / hashed_name(a, 0)), operators.to_pem());
    EXPECT_EQ(read_file(dir / hashed_name(a, 1)), a.to_pem());
    EXPECT_EQ(read_file(dir / hashed_name(b, 0)), b.to_pem());
    auto ours = std::vector<std::string>{hashed_name(a, 1), hashed_name(b, 0)};
    std::sort(ours.begin(), ours.end());
    EXPECT_EQ(manifest_files(dir), ours);

    // B leaves the configuration: our copy of it goes, the operator's files stay.
    auto log = sync_capath(dir, {a});
    EXPECT_EQ(log, (std::vector<std::string>{"capath " + dir.string() + ": removed " +
                                             hashed_name(b, 0)}));
    EXPECT_FALSE(fs::exists(dir / hashed_name(b, 0)));
    EXPECT_EQ(read_file(dir / hashed_name(operators, 0)), operators.to_pem());
    EXPECT_EQ(read_file(dir / hashed_name(a, 0)), operators.to_pem());
    EXPECT_EQ(read_file(dir / "README"), "operator notes\n");
    EXPECT_EQ(read_file(dir / hashed_name(a, 1)), a.to_pem());
    EXPECT_EQ(manifest_files(dir), std::vector<std::string>{hashed_name(a, 1)});

    // Nothing configured: every file of ours goes, the operator's stay.
    sync_capath(dir, {});
    EXPECT_FALSE(fs::exists(dir / hashed_name(a, 1)));
    EXPECT_TRUE(fs::exists(dir / hashed_name(operators, 0)));
    EXPECT_TRUE(fs::exists(dir / hashed_name(a, 0)));
    EXPECT_TRUE(manifest_files(dir).empty());
}

TEST_F(CapathTest, AnUnchangedSetRewritesNothing) {
    EXPECT_EQ(sync_capath(dir, {a}).size(), 1u);
    EXPECT_TRUE(sync_capath(dir, {a}).empty());
}

TEST_F(CapathTest, AManifestNamingOtherFilesIsRefusedAndNothingRemoved) {
    sync_capath(dir, {a});
    write_file_atomic(tmp / "precious", "x");
    write_file_atomic(dir / kCapathManifest, R"({"files": ["../precious"]})");
    auto message = test::error_of([&] { sync_capath(dir, {}); }, ErrorKind::Input);
    EXPECT_EQ(message, (dir / kCapathManifest).string() +
                           ": \"files\" holds \"../precious\", not a HASH.N file name");
    EXPECT_TRUE(fs::exists(tmp / "precious"));
    EXPECT_TRUE(fs::exists(dir / hashed_name(a, 0)));
}

}  // namespace
}  // namespace brokertls
