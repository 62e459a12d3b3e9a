#include <gtest/gtest.h>

#include "brokertls/crypto/signing.hpp"
#include "deploy/deployer.hpp"
#include "deploy/server_material.hpp"
#include "renewal/policy.hpp"

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
                                SystemClock::now() - Days(1),
                                SystemClock::now() + Days(100),
                                ""},
                               ca_key_.get(), ca_key_, nullptr)) {}

    ServerMaterial make(std::vector<std::string> names, Days valid_for = Days(30),
                        CertificateProfile profile = CertificateProfile::Server) {
        std::vector<SubjectAltName> sans;
        for (const auto& n : names) sans.push_back(classify_name(n));
        auto key = PrivateKey::generate(KeyType::EcP256);
        TimePoint now = SystemClock::now();
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
    EXPECT_EQ(server_material_problem(make({"broker.local", "10.0.0.5"}),
                                      want({"broker.local", "10.0.0.5"}), SystemClock::now()),
              std::nullopt);
    EXPECT_EQ(server_material_problem(make({"*.example.com"}), want({"mqtt.example.com"}),
                                      SystemClock::now()),
              std::nullopt);
}

TEST_F(ServerMaterialTest, RefusesEachKindOfBadMaterialWithTheReason) {
    auto m = make({"broker.local"});
    EXPECT_EQ(server_material_problem(m, want({"other.local"}), SystemClock::now()),
              "the certificate does not cover DNS:other.local");
    EXPECT_EQ(server_material_problem(make({"*.example.com"}), want({"a.b.example.com"}),
                                      SystemClock::now()),
              "the certificate does not cover DNS:a.b.example.com");  // a wildcard covers one label
    EXPECT_NE(server_material_problem(m, {}, SystemClock::now() + Days(31))
                  .value_or("")
                  .find("the certificate expired on"),
              std::string::npos);
    EXPECT_NE(server_material_problem(m, {}, SystemClock::now() - Days(2))
                  .value_or("")
                  .find("not valid before"),
              std::string::npos);

    ServerMaterial wrong_key{PrivateKey::generate(KeyType::EcP256), m.chain};
    EXPECT_EQ(server_material_problem(wrong_key, {}, SystemClock::now()),
              "the private key does not match the certificate");

    auto other = make({"x.local"});
    ServerMaterial broken{std::move(m.key), {m.leaf(), other.leaf()}};
    EXPECT_NE(server_material_problem(broken, {}, SystemClock::now())
                  .value_or("")
                  .find("the chain is broken"),
              std::string::npos);

    EXPECT_EQ(server_material_problem(make({"client-1"}, Days(30), CertificateProfile::Client), {},
                                      SystemClock::now()),
              "the certificate's EKU does not allow serverAuth");
}

TEST(RenewalTime, ThirdOfLifetimeOrRenewBefore) {
    TimePoint start = SystemClock::from_time_t(0);
    EXPECT_EQ(renewal_time(start, start + Days(90), std::chrono::seconds(0)), start + Days(60));
    EXPECT_EQ(renewal_time(start, start + Days(90), std::chrono::hours(24 * 10)), start + Days(80));
}

}  // namespace
}  // namespace brokertls

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "brokertls/store/files.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;

// chattr +i: a directory nobody may change, root included (tests run as root, for whom mode
// bits are no obstacle).
void set_immutable(const fs::path& dir, bool on) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0) << dir;
    int flags = 0;
    ASSERT_EQ(::ioctl(fd, FS_IOC_GETFLAGS, &flags), 0) << dir;
    flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
    ASSERT_EQ(::ioctl(fd, FS_IOC_SETFLAGS, &flags), 0) << "chattr on " << dir;
    ::close(fd);
}

class DeployTest : public ServerMaterialTest {
  protected:
    fs::path cert() { return tmp_ / "certs/broker.crt"; }
    fs::path key() { return tmp_ / "keys/broker.key"; }
    std::string pending(const fs::path& p) { return p.string() + ".brokertls-new"; }
    test::TempDir tmp_;
};

// The certificate's directory refuses writes: the new key must not be left beside the old
// certificate (a pair the broker cannot load).
TEST_F(DeployTest, BothFilesOrNeither) {
    auto first = make({"broker.test"});
    Deployer::install(first, cert(), key());
    std::string key_pem = read_file(key()), cert_pem = read_file(cert());
    set_immutable(tmp_ / "certs", true);
    EXPECT_THROW(Deployer::install(make({"broker.test"}), cert(), key()), Error);
    set_immutable(tmp_ / "certs", false);
    EXPECT_EQ(read_file(key()), key_pem);
    EXPECT_EQ(read_file(cert()), cert_pem);
    EXPECT_FALSE(fs::exists(pending(key())));
}

// A process killed between the writes and the renames: the next start finishes the deploy when
// the pending files form a pair, else drops them; the key always matches the certificate.
TEST_F(DeployTest, AnInterruptedDeployIsFinishedOrDropped) {
    auto old_pair = make({"broker.test"}), new_pair = make({"broker.test"});
    Deployer::install(old_pair, cert(), key());

    // Killed before any rename.
    write_file_atomic(pending(key()), new_pair.key.to_pem(), kPrivateMode);
    write_file_atomic(pending(cert()), new_pair.cert_pem());
    Deployer::recover(cert(), key());
    auto read = Deployer::read(cert(), key());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->cert_pem(), new_pair.cert_pem());
    EXPECT_TRUE(read->leaf().matches_key(read->key));
    EXPECT_EQ(fs::status(key()).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);

    // Killed between the key's rename and the certificate's.
    write_file_atomic(key(), old_pair.key.to_pem(), kPrivateMode);
    write_file_atomic(pending(cert()), old_pair.cert_pem());
    Deployer::recover(cert(), key());
    read = Deployer::read(cert(), key());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->cert_pem(), old_pair.cert_pem());
    EXPECT_TRUE(read->leaf().matches_key(read->key));

    // Killed while writing: a pending certificate that is no pair with anything.
    write_file_atomic(pending(key()), new_pair.key.to_pem(), kPrivateMode);
    write_file_atomic(pending(cert()), "-----BEGIN CERT");
    Deployer::recover(cert(), key());
    read = Deployer::read(cert(), key());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->cert_pem(), old_pair.cert_pem());
    EXPECT_FALSE(fs::exists(pending(key())));
    EXPECT_FALSE(fs::exists(pending(cert())));
}

// A first start deploys many sets at once: straight to their names where nothing was, by the
// pending names where one file of a pair was left (a key never lands beside a foreign
// certificate); each key matches its certificate and nothing is left behind.
TEST_F(DeployTest, NewSetsAreDeployedWholeWithNothingLeftBehind) {
    auto fresh = make({"broker.test"}), replacing = make({"broker.test"});
    CertificateProfileConfig a, b;
    a.name = "a";
    a.deploy_cert = tmp_ / "a/broker.crt";
    a.deploy_key = tmp_ / "a/broker.key";
    b.name = "b";
    b.deploy_cert = cert();
    b.deploy_key = key();
    ensure_directory(cert().parent_path());
    write_file_atomic(cert(), make({"broker.test"}).cert_pem());  // its key is gone
    TimePoint now = SystemClock::now();
    Deployer::deploy_new(
        {Deployer::prepare(a, fresh, "a", now), Deployer::prepare(b, replacing, "b", now)});
    for (const auto& [profile, material] : {std::pair{&a, &fresh}, std::pair{&b, &replacing}}) {
        auto read = Deployer::read(*profile);
        ASSERT_TRUE(read) << profile->name;
        EXPECT_EQ(read->cert_pem(), material->cert_pem()) << profile->name;
        EXPECT_TRUE(Deployer::same(*read, *material)) << profile->name;
        EXPECT_EQ(fs::status(profile->deploy_key).permissions() & fs::perms::all,
                  fs::perms::owner_read | fs::perms::owner_write);
        EXPECT_FALSE(fs::exists(pending(profile->deploy_key)));
        EXPECT_FALSE(fs::exists(pending(profile->deploy_cert)));
    }
}

}  // namespace
}  // namespace brokertls
