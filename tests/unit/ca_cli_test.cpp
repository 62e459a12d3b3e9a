// brokertls-ca run in-process through brokertls::cli::run: every command, its options, and its
// refusals. A refused command must exit 1 (usage) or 2 (input/state), say what it refused, and
// leave the CA directory byte-for-byte as it was.

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "brokertls/ca/authority.hpp"
#include "brokertls/ca/index.hpp"
#include "brokertls/ca/lock.hpp"
#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/crl.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/identity.hpp"
#include "brokertls/store/files.hpp"
#include "cli.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

struct CliResult {
    int code = -1;
    std::string out;
    std::string err;
};

std::ostream& operator<<(std::ostream& os, const CliResult& r) {
    return os << "exit " << r.code << "\nstdout: " << r.out << "\nstderr: " << r.err;
}

CliResult brokertls_ca(const std::vector<std::string>& args) {
    std::ostringstream out, err;
    int code = cli::run(args, out, err);
    return {code, out.str(), err.str()};
}

// Every file and directory under `dir` with its mode and bytes.
using Snapshot = std::map<std::string, std::string>;

Snapshot snapshot(const fs::path& dir) {
    Snapshot s;
    if (!fs::exists(dir)) return s;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        std::string rel = fs::relative(e.path(), dir).string();
        auto mode = static_cast<unsigned>(e.symlink_status().permissions() & fs::perms::mask);
        if (e.is_directory()) {
            s[rel + "/"] = "dir mode " + std::to_string(mode);
        } else {
            s[rel] = "mode " + std::to_string(mode) + "\n" + read_file(e.path());
        }
    }
    return s;
}

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return 0xffff;
    return st.st_mode & 07777;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

size_t count_of(const std::string& text, const std::string& part) {
    size_t n = 0;
    for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
    return n;
}

bool has_extension(const Certificate& cert, int nid) {
    return X509_get_ext_by_NID(cert.get(), nid, -1) >= 0;
}

bool extension_critical(const Certificate& cert, int nid) {
    int at = X509_get_ext_by_NID(cert.get(), nid, -1);
    return at >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert.get(), at)) == 1;
}

std::vector<std::string> san_strings(const Certificate& cert) {
    std::vector<std::string> out;
    for (const auto& san : cert.subject_alt_names()) out.push_back(san.to_string());
    return out;
}

// |a - b| within `slack`.
bool near(TimePoint a, TimePoint b, std::chrono::seconds slack = 5min) {
    return (a > b ? a - b : b - a) <= slack;
}

class EnvVar {
  public:
    EnvVar(const char* name, const std::string& value) : name_(name) {
        ::setenv(name, value.c_str(), 1);
    }
    EnvVar(const EnvVar&) = delete;
    EnvVar& operator=(const EnvVar&) = delete;
    ~EnvVar() { ::unsetenv(name_); }

  private:
    const char* name_;
};

class CaCliTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ::unsetenv("BROKERTLS_CA_PASSPHRASE");
        ::unsetenv("BROKERTLS_CA_DIR");
    }

    // brokertls-ca COMMAND --dir DIR ARGS...
    CliResult ca(std::vector<std::string> args) const {
        args.insert(args.begin() + (args.empty() ? 0 : 1), {"--dir", dir_.string()});
        return brokertls_ca(args);
    }

    void init(std::vector<std::string> extra = {}) const {
        extra.insert(extra.begin(), "init");
        CliResult r = ca(extra);
        ASSERT_EQ(r.code, cli::kExitOk) << r;
    }

    // `issue client NAMES... --out OUT EXTRA...`, expected to succeed.
    void issue_client(const std::vector<std::string>& names,
                      const std::vector<std::string>& extra = {}) const {
        std::vector<std::string> args{"issue", "client"};
        args.insert(args.end(), names.begin(), names.end());
        args.push_back("--out");
        args.push_back(out());
        args.insert(args.end(), extra.begin(), extra.end());
        CliResult r = ca(args);
        ASSERT_EQ(r.code, cli::kExitOk) << r;
    }

    std::string out() const { return out_.string(); }
    fs::path out(const std::string& file) const { return out_ / file; }
    Certificate cert(const std::string& stem) const {
        return Certificate::load(out_ / (stem + ".crt"));
    }
    std::vector<IndexEntry> index() const { return CertificateIndex(dir_ / "index.jsonl").read(); }
    Certificate root() const { return Certificate::load(dir_ / "root.crt"); }

    // A certificate signed with this CA's (unencrypted) root key outside brokertls-ca, for states
    // the command line cannot make: an expired certificate, a chosen serial, an unindexed one.
    Certificate sign_directly(const std::string& cn, TimePoint not_before, TimePoint not_after,
                              const std::string& serial = "") const {
        PrivateKey root_key = PrivateKey::load(dir_ / "root.key");
        Certificate root_cert = root();
        PrivateKey key = PrivateKey::generate(KeyType::EcP256);
        CertificateSpec spec{CertificateProfile::Client, cn, "", {}, not_before, not_after, serial};
        return sign_certificate(spec, key.get(), root_key, &root_cert);
    }

    // Records `c` the way `issue` does: certs/SERIAL.pem and a line in index.jsonl.
    void add_to_index(const Certificate& c, const std::string& name) const {
        IndexEntry e;
        e.serial = c.serial_hex();
        e.name = name;
        e.subject = c.subject();
        e.profile = "client";
        e.key_type = c.key_algorithm();
        e.not_before = c.not_before();
        e.not_after = c.not_after();
        e.fingerprint = c.fingerprint_sha256();
        CertificateIndex(dir_ / "index.jsonl").append_issued({e});
        write_file_atomic(dir_ / "certs" / (e.serial + ".pem"), c.to_pem());
    }

    void write(const fs::path& path, const std::string& text) const {
        write_file_atomic(path, text);
    }

    test::TempDir tmp_;
    fs::path dir_ = tmp_ / "ca";
    fs::path out_ = tmp_ / "out";
};

// ---------------------------------------------------------------- init

TEST_F(CaCliTest, InitCreatesRootKeyAndSelfSignedCertificate) {
    CliResult r = ca({"init"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(contains(r.out, "root.crt")) << r.out;
    EXPECT_TRUE(contains(r.out, "not encrypted")) << r.out;

    EXPECT_EQ(mode_of(dir_ / "root.key"), 0600u);
    EXPECT_TRUE(fs::exists(dir_ / "index.jsonl"));
    EXPECT_TRUE(index().empty());
    Certificate c = root();
    EXPECT_EQ(c.common_name(), "brokertls CA");
    EXPECT_TRUE(c.is_ca());
    EXPECT_TRUE(c.is_self_signed());
    EXPECT_TRUE(c.basic_constraints().critical);
    EXPECT_EQ(c.key_algorithm(), "ecdsa-p256");
    EXPECT_TRUE(c.matches_key(PrivateKey::load(dir_ / "root.key")));
    EXPECT_TRUE(near(c.not_after(), SystemClock::now() + Days(kDefaultRootDays)));
    EXPECT_FALSE(contains(read_file(dir_ / "root.key"), "ENCRYPTED"));
}

TEST_F(CaCliTest, InitTakesDaysNameAndOrganization) {
    init({"--days", "30", "--name", "Test Root", "--org", "Example Org"});
    Certificate c = root();
    EXPECT_EQ(c.common_name(), "Test Root");
    EXPECT_TRUE(contains(c.subject(), "O=Example Org")) << c.subject();
    EXPECT_TRUE(near(c.not_after(), SystemClock::now() + Days(30)));
}

TEST_F(CaCliTest, InitJsonDescribesTheCertificate) {
    CliResult r = ca({"init", "--json"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    json j = json::parse(r.out);
    EXPECT_EQ(j.at("subject"), "CN=brokertls CA");
    EXPECT_EQ(j.at("fingerprint"), root().fingerprint_sha256());
    EXPECT_EQ(j.at("encrypted_key"), false);
}

TEST_F(CaCliTest, InitTwiceIsRefusedAndChangesNothing) {
    init();
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"init", "--key-type", "rsa2048"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "already holds a CA")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
}

TEST_F(CaCliTest, InitRefusesBadOptionsBeforeCreatingAnything) {
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
             {"init", "--days", "0"},
             {"init", "--days", "abc"},
             {"init", "--days", "99999"},
             {"init", "--key-type", "bogus"},
             {"init", "--bogus"},
             {"init", "extra-argument"},
             {"init", "--days"},
         }) {
        CliResult r = ca(args);
        EXPECT_EQ(r.code, cli::kExitUsage) << args.back() << ": " << r;
        EXPECT_FALSE(fs::exists(dir_)) << args.back();
    }
}

class CaCliKeyTypeTest : public CaCliTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CaCliKeyTypeTest, RootAndLeafUseTheKeyType) {
    const std::string type = GetParam();
    init({"--key-type", type});
    EXPECT_EQ(root().key_algorithm(), type);
    issue_client({"dev-1"}, {"--key-type", type});

    Certificate leaf = cert("dev-1");
    EXPECT_EQ(leaf.key_algorithm(), type);
    EXPECT_TRUE(leaf.signed_by(root()));
    EXPECT_TRUE(leaf.matches_key(PrivateKey::load(out("dev-1.key"))));
    std::vector<std::string> usage{"digitalSignature"};
    if (type == "rsa2048") usage.push_back("keyEncipherment");
    EXPECT_EQ(leaf.key_usage(), usage);
    EXPECT_TRUE(extension_critical(leaf, NID_key_usage));

    CliResult r = ca({"verify", out("dev-1.crt").string()});
    EXPECT_EQ(r.code, cli::kExitOk) << r;
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, CaCliKeyTypeTest,
                         ::testing::Values("ecdsa-p256", "ecdsa-p384", "rsa2048", "ed25519"));

// ---------------------------------------------------------------- intermediate

TEST_F(CaCliTest, IntermediateIssuesLeavesAndChainFileHoldsIt) {
    init();
    CliResult r = ca({"init", "--intermediate"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_EQ(mode_of(dir_ / "intermediate.key"), 0600u);
    Certificate inter = Certificate::load(dir_ / "intermediate.crt");
    EXPECT_EQ(inter.common_name(), "brokertls Intermediate CA");
    EXPECT_TRUE(inter.is_ca());
    EXPECT_EQ(inter.basic_constraints().path_length, 0);
    EXPECT_TRUE(inter.signed_by(root()));
    EXPECT_FALSE(inter.is_self_signed());

    issue_client({"dev-1"});
    Certificate leaf = cert("dev-1");
    EXPECT_EQ(leaf.issuer(), inter.subject());
    EXPECT_TRUE(leaf.signed_by(inter));
    EXPECT_FALSE(leaf.signed_by(root()));

    std::vector<Certificate> chain = Certificate::load_chain(out("dev-1.chain.pem"));
    ASSERT_EQ(chain.size(), 2u);
    EXPECT_EQ(chain[0].fingerprint_sha256(), leaf.fingerprint_sha256());
    EXPECT_EQ(chain[1].fingerprint_sha256(), inter.fingerprint_sha256());

    r = ca({"verify", out("dev-1.crt").string()});
    EXPECT_EQ(r.code, cli::kExitOk) << r;

    Snapshot before = snapshot(dir_);
    r = ca({"init", "--intermediate"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "intermediate")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
}

TEST_F(CaCliTest, IntermediateMayNotOutliveTheRoot) {
    init({"--days", "30"});
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"init", "--intermediate", "--days", "60"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "--days 60")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
}

TEST_F(CaCliTest, IntermediateNeedsARoot) {
    CliResult r = ca({"init", "--intermediate"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "init first")) << r.err;
}

TEST_F(CaCliTest, RootKeyCanGoOfflineOnceAnIntermediateIssues) {
    init();
    init({"--intermediate"});
    fs::remove(dir_ / "root.key");

    issue_client({"dev-1"});
    EXPECT_TRUE(cert("dev-1").signed_by(Certificate::load(dir_ / "intermediate.crt")));
    CliResult r = ca({"revoke", out("dev-1.crt").string()});
    EXPECT_EQ(r.code, cli::kExitOk) << r;
    Crl crl = Crl::load(dir_ / "crl.pem");
    EXPECT_TRUE(crl.signed_by(Certificate::load(dir_ / "intermediate.crt")));
    ASSERT_EQ(crl.revoked().size(), 1u);
    EXPECT_EQ(crl.revoked()[0].serial_hex, cert("dev-1").serial_hex());
}

TEST_F(CaCliTest, WithoutAnIntermediateTheRootKeyIsNeeded) {
    init();
    fs::remove(dir_ / "root.key");
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"issue", "client", "dev-1", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "root.key")) << r.err;
    EXPECT_TRUE(contains(r.err, "missing")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out_));
    // Reading commands do not need it.
    EXPECT_EQ(ca({"list"}).code, cli::kExitOk);
}

// ---------------------------------------------------------------- passphrase

TEST_F(CaCliTest, PassphraseEncryptsTheRootKeyAndIsRequiredToIssue) {
    fs::path pw = tmp_ / "pw", wrong = tmp_ / "wrong";
    write(pw, "correct horse\n");
    write(wrong, "battery staple\n");
    CliResult r = ca({"init", "--passphrase-file", pw.string()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(contains(read_file(dir_ / "root.key"), "ENCRYPTED"));
    EXPECT_FALSE(contains(r.out, "not encrypted")) << r.out;
    Snapshot before = snapshot(dir_);

    r = ca({"issue", "client", "dev-1", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "passphrase is needed")) << r.err;
    EXPECT_TRUE(contains(r.err, "root.key")) << r.err;

    r = ca({"issue", "client", "dev-1", "--out", out(), "--passphrase-file", wrong.string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "wrong passphrase")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out_));

    r = ca({"issue", "client", "dev-1", "--out", out(), "--passphrase-file", pw.string()});
    EXPECT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(cert("dev-1").signed_by(root()));
    // Reading needs no passphrase.
    EXPECT_EQ(ca({"list"}).code, cli::kExitOk);
}

TEST_F(CaCliTest, PassphraseFromNamedEnvironmentVariable) {
    fs::path pw = tmp_ / "pw";
    write(pw, "s3cret\n");
    init({"--passphrase-file", pw.string()});

    EnvVar var("BROKERTLS_TEST_CA_PW", "s3cret");
    issue_client({"dev-1"}, {"--passphrase-env", "BROKERTLS_TEST_CA_PW"});
    EXPECT_TRUE(fs::exists(out("dev-1.crt")));

    EnvVar bad("BROKERTLS_TEST_CA_BAD", "nope");
    CliResult r = ca(
        {"issue", "client", "dev-2", "--out", out(), "--passphrase-env", "BROKERTLS_TEST_CA_BAD"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "wrong passphrase")) << r.err;

    r = ca({"issue", "client", "dev-2", "--out", out(), "--passphrase-env",
            "BROKERTLS_TEST_CA_UNSET"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "BROKERTLS_TEST_CA_UNSET")) << r.err;

    r = ca({"issue", "client", "dev-2", "--out", out(), "--passphrase-env", "BROKERTLS_TEST_CA_PW",
            "--passphrase-file", pw.string()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "exclusive")) << r.err;
    EXPECT_FALSE(fs::exists(out("dev-2.crt")));
}

TEST_F(CaCliTest, PassphraseFromDefaultEnvironmentVariable) {
    {
        EnvVar var("BROKERTLS_CA_PASSPHRASE", "from-env");
        init();
        EXPECT_TRUE(contains(read_file(dir_ / "root.key"), "ENCRYPTED"));
        issue_client({"dev-1"});
    }
    CliResult r = ca({"issue", "client", "dev-2", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "passphrase is needed")) << r.err;
}

TEST_F(CaCliTest, EmptyPassphraseIsRefused) {
    fs::path pw = tmp_ / "pw";
    write(pw, "\nsecond line\n");
    CliResult r = ca({"init", "--passphrase-file", pw.string()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "empty")) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "root.key"));
}

TEST_F(CaCliTest, IntermediateKeyIsEncryptedWithThePassphrase) {
    fs::path pw = tmp_ / "pw";
    write(pw, "s3cret");
    init({"--passphrase-file", pw.string()});
    CliResult r = ca({"init", "--intermediate"});
    EXPECT_EQ(r.code, cli::kExitError) << r;  // the root key is needed, and locked
    EXPECT_FALSE(fs::exists(dir_ / "intermediate.crt"));
    init({"--intermediate", "--passphrase-file", pw.string()});
    EXPECT_TRUE(contains(read_file(dir_ / "intermediate.key"), "ENCRYPTED"));
    issue_client({"dev-1"}, {"--passphrase-file", pw.string()});
}

// ---------------------------------------------------------------- issue client

TEST_F(CaCliTest, IssueClientFollowsTheClientProfile) {
    init();
    issue_client({"dev-1"});

    EXPECT_EQ(mode_of(out("dev-1.key")), 0600u);
    Certificate c = cert("dev-1");
    EXPECT_EQ(c.common_name(), "dev-1");
    EXPECT_EQ(c.subject(), "CN=dev-1");
    EXPECT_EQ(c.issuer(), root().subject());
    EXPECT_TRUE(c.signed_by(root()));
    EXPECT_TRUE(c.matches_key(PrivateKey::load(out("dev-1.key"))));
    EXPECT_EQ(c.extended_key_usage(), std::vector<std::string>{"clientAuth"});
    BasicConstraints bc = c.basic_constraints();
    EXPECT_TRUE(bc.present);
    EXPECT_TRUE(bc.critical);
    EXPECT_FALSE(bc.ca);
    EXPECT_EQ(c.key_usage(), std::vector<std::string>{"digitalSignature"});
    EXPECT_TRUE(has_extension(c, NID_subject_key_identifier));
    EXPECT_TRUE(has_extension(c, NID_authority_key_identifier));
    EXPECT_TRUE(c.subject_alt_names().empty());
    EXPECT_TRUE(near(c.not_after(), SystemClock::now() + Days(kDefaultLeafDays)));

    // Without an intermediate, the chain file is the certificate alone.
    EXPECT_EQ(read_file(out("dev-1.chain.pem")), read_file(out("dev-1.crt")));
    EXPECT_EQ(read_file(dir_ / "certs" / (c.serial_hex() + ".pem")), read_file(out("dev-1.crt")));
    std::vector<IndexEntry> entries = index();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].name, "dev-1");
    EXPECT_EQ(entries[0].serial, c.serial_hex());
    EXPECT_EQ(entries[0].profile, "client");
    EXPECT_EQ(entries[0].fingerprint, c.fingerprint_sha256());
    EXPECT_FALSE(entries[0].revoked_at.has_value());
}

TEST_F(CaCliTest, IssueClientWithExtraSubjectAltNames) {
    init();
    issue_client({"dev-1"}, {"--san-dns", "dev-1.example.com", "--san-ip", "10.1.2.3", "--san-uri",
                             "spiffe://example.com/dev-1", "--san-email", "dev-1@example.com",
                             "--san-dns", "alt.example.com"});
    std::vector<std::string> sans = san_strings(cert("dev-1"));
    std::multiset<std::string> got(sans.begin(), sans.end());
    std::multiset<std::string> want{"DNS:dev-1.example.com", "DNS:alt.example.com", "IP:10.1.2.3",
                                    "URI:spiffe://example.com/dev-1", "email:dev-1@example.com"};
    EXPECT_EQ(got, want);
    EXPECT_EQ(cert("dev-1").common_name(), "dev-1");
    EXPECT_EQ(cert("dev-1").extended_key_usage(), std::vector<std::string>{"clientAuth"});
}

TEST_F(CaCliTest, IssueClientSanOptionsNeedASingleNameAndValidValues) {
    init();
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"issue", "client", "a", "b", "--out", out(), "--san-dns", "x.example"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "--san-")) << r.err;
    r = ca({"issue", "client", "--count", "2", "--prefix", "d-", "--out", out(), "--san-ip",
            "10.0.0.1"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    r = ca({"issue", "client", "a", "--out", out(), "--san-ip", "not-an-ip"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "not-an-ip")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out_));
}

TEST_F(CaCliTest, IssueClientCountAndPrefix) {
    init();
    CliResult r = ca({"issue", "client", "--count", "50", "--prefix", "dev-", "--out", out()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(contains(r.out, "... and 40 more: 50 certificates")) << r.out;

    std::vector<IndexEntry> entries = index();
    ASSERT_EQ(entries.size(), 50u);
    std::set<std::string> names, serials;
    for (const auto& e : entries) {
        names.insert(e.name);
        serials.insert(e.serial);
    }
    EXPECT_EQ(serials.size(), 50u);
    for (int i = 1; i <= 50; ++i) {
        std::string name = "dev-" + std::to_string(i);
        EXPECT_TRUE(names.count(name)) << name;
        ASSERT_TRUE(fs::exists(out(name + ".crt"))) << name;
        EXPECT_EQ(mode_of(out(name + ".key")), 0600u) << name;
        EXPECT_EQ(cert(name).common_name(), name);
    }
    EXPECT_FALSE(fs::exists(out("dev-0.crt")));
    EXPECT_FALSE(fs::exists(out("dev-51.crt")));
}

TEST_F(CaCliTest, IssueClientCountNeedsPrefixAndViceVersa) {
    init();
    Snapshot before = snapshot(dir_);
    for (std::vector<std::string> extra : std::vector<std::vector<std::string>>{
             {"--count", "3"},
             {"--prefix", "dev-"},
             {"--count", "0", "--prefix", "dev-"},
             {"--count", "-1", "--prefix", "dev-"},
         }) {
        std::vector<std::string> args{"issue", "client", "--out", out()};
        args.insert(args.end(), extra.begin(), extra.end());
        CliResult r = ca(args);
        EXPECT_EQ(r.code, cli::kExitUsage) << r;
    }
    EXPECT_EQ(snapshot(dir_), before);
}

TEST_F(CaCliTest, IssueClientNamesFileSkipsCommentsAndBlankLines) {
    init();
    fs::path names = tmp_ / "names.txt";
    write(names, "# devices of line 3\nalpha\n\nbeta\r\ngamma");
    issue_client({}, {"--names-file", names.string()});
    std::vector<std::string> got;
    for (const auto& e : index()) got.push_back(e.name);
    EXPECT_EQ(got, (std::vector<std::string>{"alpha", "beta", "gamma"}));
    for (const char* n : {"alpha", "beta", "gamma"}) EXPECT_EQ(cert(n).common_name(), n);
    EXPECT_FALSE(fs::exists(out("# devices of line 3.crt")));
    EXPECT_FALSE(fs::exists(out(".crt")));

    CliResult r = ca({"issue", "client", "--names-file", (tmp_ / "missing.txt").string(), "--out",
                      out(), "--force"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "missing.txt")) << r.err;
}

TEST_F(CaCliTest, IssueClientRefusesANameTwice) {
    init();
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"issue", "client", "dev-1", "dev-2", "dev-1", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "dev-1")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out("dev-2.crt")));
}

TEST_F(CaCliTest, IssueRefusesExistingOutputAndChangesNothing) {
    init();
    issue_client({"dev-1"});
    Snapshot ca_before = snapshot(dir_);
    Snapshot out_before = snapshot(out_);
    std::string index_before = read_file(dir_ / "index.jsonl");

    CliResult r = ca({"issue", "client", "dev-1", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "dev-1.key")) << r.err;
    EXPECT_TRUE(contains(r.err, "already exists")) << r.err;
    EXPECT_TRUE(contains(r.err, "--force")) << r.err;
    // One existing name in a batch stops the whole batch.
    r = ca({"issue", "client", "dev-0", "dev-1", "dev-2", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_EQ(read_file(dir_ / "index.jsonl"), index_before);
    EXPECT_EQ(snapshot(dir_), ca_before);
    EXPECT_EQ(snapshot(out_), out_before);

    // Only the chain file left over still counts as existing output.
    fs::remove(out("dev-1.key"));
    fs::remove(out("dev-1.crt"));
    r = ca({"issue", "client", "dev-1", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "dev-1.chain.pem")) << r.err;
    EXPECT_EQ(snapshot(dir_), ca_before);
}

TEST_F(CaCliTest, IssueForceOverwrites) {
    init();
    issue_client({"dev-1"});
    std::string old_fingerprint = cert("dev-1").fingerprint_sha256();
    std::string old_key = read_file(out("dev-1.key"));
    issue_client({"dev-1"}, {"--force"});
    Certificate fresh = cert("dev-1");
    EXPECT_NE(fresh.fingerprint_sha256(), old_fingerprint);
    EXPECT_NE(read_file(out("dev-1.key")), old_key);
    EXPECT_TRUE(fresh.matches_key(PrivateKey::load(out("dev-1.key"))));
    EXPECT_EQ(mode_of(out("dev-1.key")), 0600u);
    std::vector<IndexEntry> entries = index();
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_NE(entries[0].serial, entries[1].serial);
    EXPECT_EQ(entries[1].fingerprint, fresh.fingerprint_sha256());
}

TEST_F(CaCliTest, IssueDaysMustBeAWholeNumberInRange) {
    init();
    Snapshot before = snapshot(dir_);
    for (const char* days : {"0", "abc", "99999", "-5", "7d", ""}) {
        CliResult r = ca({"issue", "client", "dev-1", "--out", out(), "--days", days});
        EXPECT_EQ(r.code, cli::kExitUsage) << days << ": " << r;
        EXPECT_TRUE(contains(r.err, "--days")) << r.err;
    }
    CliResult r = ca({"issue", "client", "dev-1", "--out", out(), "--days", "1", "--days", "2"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "more than once")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out_));

    issue_client({"dev-1"}, {"--days=10"});
    EXPECT_TRUE(near(cert("dev-1").not_after(), SystemClock::now() + Days(10)));
}

TEST_F(CaCliTest, IssueMayNotOutliveTheCa) {
    init({"--days", "30"});
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"issue", "client", "dev-1", "--out", out(), "--days", "397"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "--days 397")) << r.err;
    EXPECT_TRUE(contains(r.err, "outlive")) << r.err;
    // The default validity (397 days) is refused the same way.
    r = ca({"issue", "server", "broker.local", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out_));

    issue_client({"dev-1"}, {"--days", "29"});
}

TEST_F(CaCliTest, IssueRefusesBadArguments) {
    init();
    Snapshot before = snapshot(dir_);
    struct Case {
        std::vector<std::string> args;
        std::string names;  // the message must name this
    };
    for (const Case& c : std::vector<Case>{
             {{"issue", "client", "dev-1", "--key-type", "bogus"}, "--key-type bogus"},
             {{"issue", "client", "dev-1", "--bogus"}, "--bogus"},
             {{"issue", "client", "dev-1", "--dyas", "3"}, "--dyas"},
             {{"issue"}, "profile"},
             {{"issue", "admin", "dev-1"}, "admin"},
             {{"issue", "client"}, "NAME"},
             {{"issue", "client", "a/b"}, "a/b"},
             {{"issue", "client", ".."}, ".."},
             {{"issue", "client", "dev-1", "--file-name", "x"}, "--file-name"},
             {{"issue", "server"}, "name"},
             {{"issue", "server", "broker.local", "--count", "2"}, "--count"},
             {{"issue", "server", "broker.local", "--san-dns", "x.example"}, "--san-dns"},
             {{"issue", "client", "dev-1", "--force=yes"}, "--force"},
             {{"issue", "client", "dev-1", "--out"}, "--out"},
         }) {
        std::vector<std::string> args = c.args;
        if (std::find(args.begin(), args.end(), "--out") == args.end()) {
            args.push_back("--out");
            args.push_back(out());
        }
        CliResult r = ca(args);
        EXPECT_EQ(r.code, cli::kExitUsage) << r;
        EXPECT_TRUE(contains(r.err, c.names)) << c.names << " in " << r.err;
    }
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out_));
}

TEST_F(CaCliTest, IssueJsonOutput) {
    init();
    CliResult r = ca({"issue", "client", "dev-1", "dev-2", "--out", out(), "--json"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    json j = json::parse(r.out);
    ASSERT_TRUE(j.is_array());
    ASSERT_EQ(j.size(), 2u);
    for (const auto& item : j) {
        std::string name = item.at("name").get<std::string>();
        EXPECT_EQ(item.at("serial"), cert(name).serial_hex());
        EXPECT_EQ(fs::path(item.at("key_file").get<std::string>()), out(name + ".key"));
        EXPECT_EQ(fs::path(item.at("cert_file").get<std::string>()), out(name + ".crt"));
        EXPECT_EQ(fs::path(item.at("chain_file").get<std::string>()), out(name + ".chain.pem"));
        EXPECT_EQ(item.at("profile"), "client");
        EXPECT_EQ(item.at("status"), "valid");
        EXPECT_EQ(item.at("fingerprint"), cert(name).fingerprint_sha256());
    }
}

// ---------------------------------------------------------------- issue server

TEST_F(CaCliTest, IssueServerTypesEveryName) {
    init();
    CliResult r = ca({"issue", "server", "broker.local", "10.0.0.5", "::1", "*.example.com",
                      "spiffe://x/y", "ops@example.com", "--out", out()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_EQ(mode_of(out("broker.local.key")), 0600u);
    Certificate c = cert("broker.local");
    EXPECT_EQ(c.common_name(), "broker.local");
    EXPECT_EQ(san_strings(c), (std::vector<std::string>{"DNS:broker.local", "IP:10.0.0.5", "IP:::1",
                                                        "DNS:*.example.com", "URI:spiffe://x/y",
                                                        "email:ops@example.com"}));
    EXPECT_EQ(c.extended_key_usage(), std::vector<std::string>{"serverAuth"});
    EXPECT_FALSE(c.is_ca());
    EXPECT_TRUE(c.basic_constraints().critical);
    EXPECT_EQ(c.key_usage(), std::vector<std::string>{"digitalSignature"});
    EXPECT_TRUE(c.matches_key(PrivateKey::load(out("broker.local.key"))));
    ASSERT_EQ(index().size(), 1u);
    EXPECT_EQ(index()[0].profile, "server");
}

TEST_F(CaCliTest, IssueServerWildcardAndFileName) {
    init();
    CliResult r = ca({"issue", "server", "*.example.com", "example.com", "--out", out()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    for (const char* ext : {".key", ".crt", ".chain.pem"})
        EXPECT_TRUE(fs::exists(out(std::string("_wildcard.example.com") + ext))) << ext;
    EXPECT_EQ(mode_of(out("_wildcard.example.com.key")), 0600u);
    EXPECT_EQ(cert("_wildcard.example.com").common_name(), "*.example.com");

    r = ca({"issue", "server", "10.0.0.7", "--out", out(), "--file-name", "mqtt"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_EQ(san_strings(cert("mqtt")), std::vector<std::string>{"IP:10.0.0.7"});
}

TEST_F(CaCliTest, IssueServerRefusesAnInvalidName) {
    init();
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"issue", "server", "broker.local", "bad name!", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "bad name!")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out_));
}

// ---------------------------------------------------------------- sign

// A CSR made with OpenSSL directly, asking for extensions a device must not get to choose.
std::string greedy_csr_pem(const PrivateKey& key, const std::string& cn, const std::string& san) {
    X509ReqPtr req(X509_REQ_new());
    X509_REQ_set_version(req.get(), 0);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                              {NID_ext_key_usage, "serverAuth"},
                              {NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"},
                              {NID_subject_alt_name, san.c_str()}}) {
        X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, nullptr, nid, value);
        EXPECT_NE(ext, nullptr) << OBJ_nid2sn(nid);
        if (ext) sk_X509_EXTENSION_push(exts, ext);
    }
    X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_set_pubkey(req.get(), key.get());
    EXPECT_GT(X509_REQ_sign(req.get(), key.get(), EVP_sha256()), 0);
    BioPtr bio = memory_bio();
    PEM_write_bio_X509_REQ(bio.get(), req.get());
    return bio_contents(bio.get());
}

TEST_F(CaCliTest, SignIssuesForTheRequestsKeyAndNames) {
    init();
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    CertificateRequest csr =
        CertificateRequest::create(key, "dev-7", {{SubjectAltName::Type::Dns, "dev-7.devices"}});
    fs::path csr_path = tmp_ / "dev-7.csr";
    write(csr_path, csr.to_pem());

    CliResult r = ca({"sign", csr_path.string(), "--profile", "client", "--allow", "dev-*"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    Certificate c = Certificate::load(tmp_ / "dev-7.crt");
    EXPECT_TRUE(c.matches_key(key));
    EXPECT_TRUE(c.signed_by(root()));
    EXPECT_EQ(c.common_name(), "dev-7");
    EXPECT_EQ(san_strings(c), std::vector<std::string>{"DNS:dev-7.devices"});
    EXPECT_EQ(c.extended_key_usage(), std::vector<std::string>{"clientAuth"});
    EXPECT_EQ(read_file(tmp_ / "dev-7.chain.pem"), read_file(tmp_ / "dev-7.crt"));
    ASSERT_EQ(index().size(), 1u);
    EXPECT_EQ(index()[0].name, "dev-7");
    EXPECT_EQ(index()[0].fingerprint, c.fingerprint_sha256());

    // Existing output is refused, --force replaces it.
    Snapshot before = snapshot(dir_);
    r = ca({"sign", csr_path.string(), "--profile", "client", "--allow", "dev-*"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "dev-7.crt")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    r = ca({"sign", csr_path.string(), "--profile", "client", "--allow", "dev-*", "--force"});
    EXPECT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_EQ(index().size(), 2u);
}

TEST_F(CaCliTest, SignServerProfileWithOnlyACommonNameAddsItAsSan) {
    init();
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    fs::path csr_path = tmp_ / "broker.csr";
    write(csr_path, CertificateRequest::create(key, "broker.example", {}).to_pem());
    fs::path cert_path = tmp_ / "issued" / "broker.pem";
    fs::create_directories(cert_path.parent_path());
    CliResult r = ca({"sign", csr_path.string(), "--profile", "server", "--allow", "*.example",
                      "--out", cert_path.string(), "--json"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    json j = json::parse(r.out);
    EXPECT_EQ(fs::path(j.at("cert_file").get<std::string>()), cert_path);
    Certificate c = Certificate::load(cert_path);
    EXPECT_EQ(j.at("serial"), c.serial_hex());
    EXPECT_EQ(san_strings(c), std::vector<std::string>{"DNS:broker.example"});
    EXPECT_EQ(c.extended_key_usage(), std::vector<std::string>{"serverAuth"});
    EXPECT_TRUE(fs::exists(tmp_ / "issued" / "broker.chain.pem"));
}

TEST_F(CaCliTest, SignTakesOnlyNamesFromTheRequest) {
    init();
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    fs::path csr_path = tmp_ / "greedy.csr";
    write(csr_path, greedy_csr_pem(key, "dev-9", "DNS:dev-9.devices"));
    // The request really asks for CA:TRUE and serverAuth.
    CertificateRequest parsed = CertificateRequest::load(csr_path);
    ASSERT_TRUE(parsed.signature_valid());
    ASSERT_EQ(parsed.subject_alt_names().size(), 1u);

    CliResult r = ca({"sign", csr_path.string(), "--profile", "client", "--allow", "dev-*"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    Certificate c = Certificate::load(tmp_ / "greedy.crt");
    BasicConstraints bc = c.basic_constraints();
    EXPECT_TRUE(bc.present);
    EXPECT_TRUE(bc.critical);
    EXPECT_FALSE(bc.ca);
    EXPECT_EQ(c.extended_key_usage(), std::vector<std::string>{"clientAuth"});
    EXPECT_EQ(c.key_usage(), std::vector<std::string>{"digitalSignature"});
    EXPECT_EQ(san_strings(c), std::vector<std::string>{"DNS:dev-9.devices"});
    EXPECT_TRUE(c.matches_key(key));
}

TEST_F(CaCliTest, SignRefusesNamesOutsideAllow) {
    init();
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    fs::path san_csr = tmp_ / "san.csr", cn_csr = tmp_ / "cn.csr";
    write(san_csr, CertificateRequest::create(key, "dev-8",
                                              {{SubjectAltName::Type::Dns, "dev-8.devices"},
                                               {SubjectAltName::Type::Dns, "evil.example"}})
                       .to_pem());
    write(cn_csr, CertificateRequest::create(key, "admin", {}).to_pem());
    Snapshot before = snapshot(dir_);

    CliResult r = ca({"sign", san_csr.string(), "--profile", "client", "--allow", "dev-*"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "evil.example")) << r.err;
    EXPECT_TRUE(contains(r.err, "not allowed")) << r.err;

    r = ca({"sign", cn_csr.string(), "--profile", "client", "--allow", "dev-*", "--allow",
            "*.devices"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "admin")) << r.err;

    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(tmp_ / "san.crt"));
    EXPECT_FALSE(fs::exists(tmp_ / "cn.crt"));
}

TEST_F(CaCliTest, SignUsageErrors) {
    init();
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    fs::path csr_path = tmp_ / "dev.csr";
    write(csr_path, CertificateRequest::create(key, "dev-1", {}).to_pem());
    Snapshot before = snapshot(dir_);
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
             {"sign", csr_path.string(), "--profile", "client"},
             {"sign", csr_path.string(), "--allow", "*"},
             {"sign", csr_path.string(), "--profile", "ca", "--allow", "*"},
             {"sign", "--profile", "client", "--allow", "*"},
             {"sign", csr_path.string(), csr_path.string(), "--profile", "client", "--allow", "*"},
             {"sign", csr_path.string(), "--profile", "client", "--allow", "*", "--days", "0"},
         }) {
        CliResult r = ca(args);
        EXPECT_EQ(r.code, cli::kExitUsage) << r;
    }
    CliResult r = ca({"sign", csr_path.string(), "--profile", "client"});
    EXPECT_TRUE(contains(r.err, "--allow")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(tmp_ / "dev.crt"));
}

TEST_F(CaCliTest, SignRefusesTamperedAndGarbageRequests) {
    init();
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    std::string der = CertificateRequest::create(key, "dev-1", {}).to_der();
    der.back() = static_cast<char>(der.back() ^ 0x01);  // the last byte is in the signature
    CertificateRequest tampered = CertificateRequest::parse(der, "tampered");
    ASSERT_FALSE(tampered.signature_valid());
    fs::path bad = tmp_ / "tampered.csr", garbage = tmp_ / "garbage.csr";
    write(bad, tampered.to_pem());
    write(garbage, "-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all\n");
    Snapshot before = snapshot(dir_);

    CliResult r = ca({"sign", bad.string(), "--profile", "client", "--allow", "*"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "signature does not verify")) << r.err;
    EXPECT_TRUE(contains(r.err, "tampered.csr")) << r.err;

    r = ca({"sign", garbage.string(), "--profile", "client", "--allow", "*"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "garbage.csr")) << r.err;

    r = ca({"sign", (tmp_ / "missing.csr").string(), "--profile", "client", "--allow", "*"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "missing.csr")) << r.err;

    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(tmp_ / "tampered.crt"));
    EXPECT_FALSE(fs::exists(tmp_ / "garbage.crt"));
}

// ---------------------------------------------------------------- revoke and crl

TEST_F(CaCliTest, RevokeBySerialWritesACrl) {
    init();
    issue_client({"dev-1", "dev-2"});
    std::string serial = cert("dev-1").serial_hex();
    CliResult r = ca({"revoke", serial, "--reason", "keyCompromise"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(contains(r.out, "dev-1")) << r.out;
    EXPECT_TRUE(contains(r.out, "crl.pem")) << r.out;

    Crl crl = Crl::load(dir_ / "crl.pem");
    EXPECT_TRUE(crl.signed_by(root()));
    EXPECT_EQ(crl.issuer(), root().subject());
    EXPECT_EQ(crl.number(), 1);
    ASSERT_EQ(crl.revoked().size(), 1u);
    EXPECT_EQ(crl.revoked()[0].serial_hex, serial);
    EXPECT_EQ(crl.revoked()[0].reason, RevocationReason::KeyCompromise);
    EXPECT_TRUE(near(crl.next_update(), SystemClock::now() + Days(kDefaultCrlDays)));

    std::vector<IndexEntry> entries = index();
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_TRUE(entries[0].revoked_at.has_value());
    EXPECT_EQ(entries[0].reason, RevocationReason::KeyCompromise);
    EXPECT_FALSE(entries[1].revoked_at.has_value());
}

TEST_F(CaCliTest, RevokeRefusalsChangeNothing) {
    init();
    issue_client({"dev-1"});
    std::string serial = cert("dev-1").serial_hex();
    ASSERT_EQ(ca({"revoke", serial}).code, cli::kExitOk);
    Snapshot before = snapshot(dir_);

    CliResult r = ca({"revoke", serial});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "already revoked")) << r.err;
    EXPECT_TRUE(contains(r.err, serial)) << r.err;

    r = ca({"revoke", out("dev-1.crt").string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "already revoked")) << r.err;

    r = ca({"revoke", "ABCDEF0123"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "ABCDEF0123")) << r.err;
    EXPECT_TRUE(contains(r.err, "not issued by this CA")) << r.err;

    r = ca({"revoke", serial, "--reason", "bogus"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "--reason bogus")) << r.err;

    r = ca({"revoke"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    r = ca({"revoke", serial, "--crl-days", "0"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;

    EXPECT_EQ(snapshot(dir_), before);
}

TEST_F(CaCliTest, RevokeByFileAndByColonSeparatedLowercaseSerial) {
    init();
    issue_client({"dev-1", "dev-2"});
    CliResult r = ca({"revoke", out("dev-1.crt").string()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;

    std::string hex = cert("dev-2").serial_hex();
    std::string typed;
    for (size_t i = 0; i < hex.size(); i += 2) {
        if (!typed.empty()) typed += ':';
        typed += hex.substr(i, 2);
    }
    for (char& ch : typed) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    r = ca({"revoke", typed, "--reason", "superseded", "--crl-days", "5"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;

    Crl crl = Crl::load(dir_ / "crl.pem");
    EXPECT_EQ(crl.number(), 2);
    std::set<std::string> revoked;
    for (const auto& rc : crl.revoked()) revoked.insert(rc.serial_hex);
    EXPECT_EQ(revoked, (std::set<std::string>{cert("dev-1").serial_hex(), hex}));
    EXPECT_TRUE(near(crl.next_update(), SystemClock::now() + Days(5)));
}

TEST_F(CaCliTest, RevokeRefusesACertificateThatIsNotThisCas) {
    init();
    issue_client({"dev-1"});
    // A certificate of another CA, with a name this CA also issued.
    test::TempDir other;
    ASSERT_EQ(brokertls_ca({"init", "--dir", (other / "ca").string()}).code, cli::kExitOk);
    Snapshot before = snapshot(dir_);
    CliResult r = brokertls_ca({"issue", "client", "dev-1", "--dir", (other / "ca").string(),
                                "--out", other.path().string()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    r = ca({"revoke", (other / "dev-1.crt").string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "not issued by this CA")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
}

// Serials whose first octet is below 0x10 print with a leading zero ("0A1B..", as openssl x509
// -serial does). Every way of naming such a certificate must find it.
TEST_F(CaCliTest, SerialWithLeadingZeroDigitIsFoundEveryWay) {
    init();
    const std::string serial = "0A1B2C3D4E5F60718293A4B5C6D7E8F9";
    TimePoint now = SystemClock::now();
    Certificate c = sign_directly("low-serial", now - 1h, now + Days(30), serial);
    ASSERT_EQ(c.serial_hex(), serial);
    add_to_index(c, "low-serial");
    fs::path file = tmp_ / "low-serial.crt";
    write(file, c.to_pem());

    for (std::string typed : {serial, std::string("a1b2c3d4e5f60718293a4b5c6d7e8f9"),
                              std::string("0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9"),
                              std::string("0x0A1B2C3D4E5F60718293A4B5C6D7E8F9")}) {
        CliResult r = ca({"show", typed, "--json"});
        ASSERT_EQ(r.code, cli::kExitOk) << typed << ": " << r;
        EXPECT_EQ(json::parse(r.out).at("status"), "valid") << typed;
    }
    CliResult r = ca({"show", file.string(), "--json"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_EQ(json::parse(r.out).at("status"), "valid");
    r = ca({"verify", file.string()});
    EXPECT_EQ(r.code, cli::kExitOk) << r;

    r = ca({"revoke", file.string()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    ASSERT_EQ(Crl::load(dir_ / "crl.pem").revoked().size(), 1u);
    EXPECT_EQ(Crl::load(dir_ / "crl.pem").revoked()[0].serial_hex, serial);
    r = ca({"revoke", "a1b2c3d4e5f60718293a4b5c6d7e8f9"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "already revoked")) << r.err;
}

TEST_F(CaCliTest, EveryIssuedSerialRoundTrips) {
    init();
    // About one serial in eight starts with a zero digit; 40 make missing one unlikely.
    issue_client({}, {"--count", "40", "--prefix", "d"});
    for (const IndexEntry& e : index()) {
        std::string lower = e.serial;
        for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        CliResult r = ca({"show", lower, "--json"});
        ASSERT_EQ(r.code, cli::kExitOk) << e.serial << ": " << r;
        EXPECT_EQ(json::parse(r.out).at("serial"), e.serial);
        EXPECT_EQ(json::parse(r.out).at("status"), "valid") << e.serial;
        r = ca({"verify", out(e.name + ".crt").string()});
        EXPECT_EQ(r.code, cli::kExitOk) << e.serial << ": " << r;
    }
}

TEST_F(CaCliTest, CrlDaysAndNumber) {
    init();
    CliResult r = ca({"crl", "--days", "7", "--json"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    json j = json::parse(r.out);
    EXPECT_EQ(j.at("number"), 1);
    EXPECT_EQ(j.at("revoked"), 0);
    Crl first = Crl::load(dir_ / "crl.pem");
    EXPECT_EQ(first.number(), 1);
    EXPECT_TRUE(first.signed_by(root()));
    EXPECT_TRUE(near(first.next_update(), SystemClock::now() + Days(7)));
    EXPECT_TRUE(near(first.this_update(), SystemClock::now()));
    EXPECT_EQ(j.at("next_update"), to_iso8601(first.next_update()));

    fs::path copy = tmp_ / "copy.crl";
    r = ca({"crl", "--out", copy.string()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    Crl second = Crl::load(dir_ / "crl.pem");
    EXPECT_EQ(second.number(), 2);
    EXPECT_TRUE(near(second.next_update(), SystemClock::now() + Days(kDefaultCrlDays)));
    EXPECT_EQ(read_file(copy), read_file(dir_ / "crl.pem"));
    EXPECT_EQ(read_file(dir_ / "crlnumber"), "2\n");

    Snapshot before = snapshot(dir_);
    for (const char* days : {"0", "x", "36501"}) {
        r = ca({"crl", "--days", days});
        EXPECT_EQ(r.code, cli::kExitUsage) << r;
    }
    EXPECT_EQ(ca({"crl", "extra"}).code, cli::kExitUsage);
    EXPECT_EQ(snapshot(dir_), before);
}

TEST_F(CaCliTest, CorruptCrlNumberStopsCrlAndRevokeWithoutChanges) {
    init();
    issue_client({"dev-1"});
    write(dir_ / "crlnumber", "twelve\n");
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"crl"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "crlnumber")) << r.err;
    r = ca({"revoke", out("dev-1.crt").string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "crlnumber")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(index()[0].revoked_at.has_value());
}

// ---------------------------------------------------------------- list, show, verify

TEST(NormalizeSerialTest, TypedSerialsBecomeIndexHexElseNullopt) {
    EXPECT_EQ(normalize_serial("0a:1B"), "0A1B");
    EXPECT_EQ(normalize_serial("0x0A1B"), "0A1B");
    EXPECT_EQ(normalize_serial("A1B"), "0A1B");
    EXPECT_EQ(normalize_serial("000"), "0");
    EXPECT_EQ(normalize_serial(""), std::nullopt);
    EXPECT_EQ(normalize_serial("0x"), std::nullopt);
    EXPECT_EQ(normalize_serial("dev-1.crt"), std::nullopt);
    EXPECT_EQ(normalize_serial("0A 1B"), std::nullopt);
}

// CertificateAuthority::verify() judges a chain: problem is nullopt only for a valid, indexed,
// unrevoked certificate of this CA, and names the reason otherwise.
TEST_F(CaCliTest, VerifyResultHasAProblemUnlessValidIndexedAndNotRevoked) {
    init();
    issue_client({"good", "gone"});
    ASSERT_EQ(ca({"revoke", out("gone.crt").string()}).code, cli::kExitOk);
    Certificate stranger = sign_directly("stranger", SystemClock::now() - std::chrono::hours(1),
                                         SystemClock::now() + std::chrono::hours(24));
    CertificateAuthority authority(dir_, {}, false, DirectoryLock::Mode::Shared,
                                   SystemClock::now());

    VerifyResult good = authority.verify({cert("good")});
    EXPECT_TRUE(good.ok());
    EXPECT_EQ(good.problem, std::nullopt);
    ASSERT_TRUE(good.entry);
    EXPECT_EQ(good.entry->name, "good");

    VerifyResult gone = authority.verify({cert("gone")});
    EXPECT_FALSE(gone.ok());
    ASSERT_TRUE(gone.problem);
    EXPECT_TRUE(gone.problem->starts_with("revoked on ")) << *gone.problem;
    EXPECT_TRUE(contains(*gone.problem, "(unspecified)")) << *gone.problem;

    EXPECT_EQ(authority.verify({stranger}).problem, "chains to this CA but is not in its index");
    EXPECT_EQ(authority.verify({}).problem, "no certificate");
    EXPECT_FALSE(VerifyResult{}.ok());  // fail closed
}

// Every date the CA writes comes from the `now` it is given, never from the system clock: run
// in 2030, it dates the root, the intermediate, leaves, signed requests, revocations and CRLs
// then (backdated a minute where they start), and judges chains then.
TEST(CertificateAuthorityTime, EveryDateComesFromTheCallersNow) {
    using namespace std::chrono_literals;
    test::TempDir tmp;
    const fs::path dir = tmp / "ca";
    const TimePoint t0 = from_iso8601("2030-01-01T00:00:00Z");
    auto open = [&](TimePoint now) {
        return CertificateAuthority(dir, {}, true, DirectoryLock::Mode::Exclusive, now);
    };

    CertificateAuthority::init_root(dir, {}, t0);
    Certificate root = Certificate::load(dir / "root.crt");
    EXPECT_EQ(root.not_before(), t0 - 1min);
    EXPECT_EQ(root.not_after(), t0 + Days(kDefaultRootDays));
    CaInitOptions intermediate;
    intermediate.name = "Intermediate";
    intermediate.days = 400;
    CertificateAuthority::add_intermediate(dir, intermediate, t0 + 1h);
    Certificate issuing = Certificate::load(dir / "intermediate.crt");
    EXPECT_EQ(issuing.not_before(), t0 + 1h - 1min);
    EXPECT_EQ(issuing.not_after(), t0 + 1h + Days(400));

    const TimePoint t_issue = t0 + Days(1);
    auto issued =
        open(t_issue).issue({{CertificateProfile::Client, "dev-1", "", {}, 30, KeyType::EcP256}},
                            tmp / "out", Overwrite::Refuse);
    Certificate leaf = Certificate::load(issued[0].cert);
    EXPECT_EQ(leaf.not_before(), t_issue - 1min);
    EXPECT_EQ(leaf.not_after(), t_issue + Days(30));
    EXPECT_EQ(issued[0].entry.not_after, t_issue + Days(30));
    // So is the end: 400 days from t_issue outlive the intermediate (400 days from t0 + 1h).
    EXPECT_THROW(
        open(t_issue).issue({{CertificateProfile::Client, "dev-9", "", {}, 400, KeyType::EcP256}},
                            tmp / "out", Overwrite::Refuse),
        Error);

    const TimePoint t_sign = t0 + Days(2);
    PrivateKey requester = PrivateKey::generate(KeyType::EcP256);
    auto csr = CertificateRequest::create(requester, "dev-2", {});
    open(t_sign).sign(csr, "dev-2.csr", CertificateProfile::Client, 10, {"dev-*"},
                      tmp / "out" / "dev-2.crt", Overwrite::Refuse);
    Certificate signed_leaf = Certificate::load(tmp / "out" / "dev-2.crt");
    EXPECT_EQ(signed_leaf.not_before(), t_sign - 1min);
    EXPECT_EQ(signed_leaf.not_after(), t_sign + Days(10));

    auto verify_at = [&](TimePoint now) {
        return CertificateAuthority(dir, {}, false, DirectoryLock::Mode::Shared, now)
            .verify({leaf});
    };
    EXPECT_EQ(verify_at(t_issue).problem, std::nullopt);
    EXPECT_EQ(verify_at(t_issue - 1h).problem, "certificate is not yet valid");
    EXPECT_EQ(verify_at(t_issue + Days(31)).problem, "certificate has expired");

    const TimePoint t_revoke = t0 + Days(3);
    IndexEntry revoked =
        open(t_revoke).revoke(leaf.serial_hex(), RevocationReason::KeyCompromise, 7);
    EXPECT_EQ(revoked.revoked_at, t_revoke);
    Crl crl = Crl::load(dir / "crl.pem");
    EXPECT_EQ(crl.this_update(), t_revoke - 1min);
    EXPECT_EQ(crl.next_update(), t_revoke + Days(7));
    ASSERT_EQ(crl.revoked().size(), 1u);
    EXPECT_EQ(crl.revoked()[0].revoked_at, t_revoke);

    const TimePoint t_crl = t0 + Days(4);
    Crl next = open(t_crl).write_crl(30);
    EXPECT_EQ(next.this_update(), t_crl - 1min);
    EXPECT_EQ(next.next_update(), t_crl + Days(30));
    EXPECT_EQ(next.revoked()[0].revoked_at, t_revoke);
}

TEST_F(CaCliTest, ListFiltersByStatus) {
    init();
    issue_client({"alpha", "beta", "gamma"});
    ASSERT_EQ(ca({"revoke", out("beta.crt").string(), "--reason", "superseded"}).code,
              cli::kExitOk);
    TimePoint now = SystemClock::now();
    add_to_index(sign_directly("old", now - Days(30), now - Days(1)), "old");

    auto names = [&](std::vector<std::string> args) {
        args.insert(args.begin(), "list");
        args.push_back("--json");
        CliResult r = ca(args);
        EXPECT_EQ(r.code, cli::kExitOk) << r;
        std::vector<std::string> out;
        for (const auto& e : json::parse(r.out)) out.push_back(e.at("name").get<std::string>());
        return out;
    };
    EXPECT_EQ(names({}), (std::vector<std::string>{"alpha", "beta", "gamma", "old"}));
    EXPECT_EQ(names({"--status", "valid"}), (std::vector<std::string>{"alpha", "gamma"}));
    EXPECT_EQ(names({"--status", "revoked"}), std::vector<std::string>{"beta"});
    EXPECT_EQ(names({"--status", "expired"}), std::vector<std::string>{"old"});

    CliResult r = ca({"list", "--status", "revoked", "--json"});
    json beta = json::parse(r.out).at(0);
    EXPECT_EQ(beta.at("status"), "revoked");
    EXPECT_EQ(beta.at("revocation_reason"), "superseded");
    EXPECT_TRUE(beta.contains("revoked_at"));
    EXPECT_EQ(beta.at("serial"), cert("beta").serial_hex());
    EXPECT_EQ(beta.at("fingerprint"), cert("beta").fingerprint_sha256());

    r = ca({"list"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(contains(r.out, "SERIAL")) << r.out;
    EXPECT_EQ(count_of(r.out, "\n"), 5u) << r.out;
    EXPECT_TRUE(contains(r.out, cert("gamma").serial_hex())) << r.out;

    r = ca({"list", "--status", "bogus"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "--status bogus")) << r.err;
    EXPECT_EQ(ca({"list", "extra"}).code, cli::kExitUsage);
}

TEST_F(CaCliTest, ListOfAnEmptyCaIsAnEmptyArray) {
    init();
    CliResult r = ca({"list", "--json"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_EQ(json::parse(r.out), json::array());
}

TEST_F(CaCliTest, ShowBySerialAndByFile) {
    init();
    issue_client({"dev-1"}, {"--san-dns", "dev-1.devices"});
    Certificate c = cert("dev-1");
    for (const std::string& what : {c.serial_hex(), out("dev-1.crt").string()}) {
        CliResult r = ca({"show", what, "--json"});
        ASSERT_EQ(r.code, cli::kExitOk) << r;
        json j = json::parse(r.out);
        EXPECT_EQ(j.at("subject"), "CN=dev-1");
        EXPECT_EQ(j.at("issuer"), root().subject());
        EXPECT_EQ(j.at("serial"), c.serial_hex());
        EXPECT_EQ(j.at("sans"), json::array({"DNS:dev-1.devices"}));
        EXPECT_EQ(j.at("key"), "ecdsa-p256");
        EXPECT_EQ(j.at("key_usage"), json::array({"digitalSignature"}));
        EXPECT_EQ(j.at("extended_key_usage"), json::array({"clientAuth"}));
        EXPECT_EQ(j.at("basic_constraints"), "critical, CA:FALSE");
        EXPECT_EQ(j.at("fingerprint"), c.fingerprint_sha256());
        EXPECT_EQ(j.at("not_after"), to_iso8601(c.not_after()));
        EXPECT_EQ(j.at("status"), "valid");
        EXPECT_FALSE(j.contains("revoked_at"));
    }
    CliResult r = ca({"show", c.serial_hex()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(contains(r.out, "CN=dev-1")) << r.out;
    EXPECT_TRUE(contains(r.out, c.fingerprint_sha256())) << r.out;

    ASSERT_EQ(ca({"revoke", c.serial_hex()}).code, cli::kExitOk);
    r = ca({"show", c.serial_hex(), "--json"});
    json j = json::parse(r.out);
    EXPECT_EQ(j.at("status"), "revoked");
    EXPECT_EQ(j.at("revocation_reason"), "unspecified");

    r = ca({"show", root().serial_hex(), "--json"});
    EXPECT_EQ(r.code, cli::kExitError) << r;  // the root is not in certs/
    r = ca({"show", (dir_ / "root.crt").string(), "--json"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_EQ(json::parse(r.out).at("status"), "not issued by this CA");
    EXPECT_TRUE(contains(json::parse(r.out).at("basic_constraints").get<std::string>(), "CA:TRUE"));

    r = ca({"show", "DEADBEEF"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "DEADBEEF")) << r.err;
    r = ca({"show", (tmp_ / "no-such.crt").string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "no-such.crt")) << r.err;
    EXPECT_EQ(ca({"show"}).code, cli::kExitUsage);
}

TEST_F(CaCliTest, VerifyAcceptsOnlyValidIndexedCertificatesOfThisCa) {
    init();
    issue_client({"good", "gone"});
    ASSERT_EQ(ca({"revoke", out("gone.crt").string()}).code, cli::kExitOk);

    CliResult r = ca({"verify", out("good.crt").string()});
    EXPECT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(contains(r.out, "OK")) << r.out;
    r = ca({"verify", out("good.chain.pem").string(), "--json"});
    EXPECT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_EQ(json::parse(r.out).at("ok"), true);

    r = ca({"verify", out("gone.crt").string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "revoked")) << r.err;
    EXPECT_TRUE(contains(r.err, "gone.crt")) << r.err;
    r = ca({"verify", out("gone.crt").string(), "--json"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    json j = json::parse(r.out);
    EXPECT_EQ(j.at("ok"), false);
    EXPECT_TRUE(contains(j.at("reason").get<std::string>(), "revoked")) << j;

    // Another CA's certificate.
    test::TempDir other;
    ASSERT_EQ(brokertls_ca({"init", "--dir", (other / "ca").string()}).code, cli::kExitOk);
    ASSERT_EQ(brokertls_ca({"issue", "client", "stranger", "--dir", (other / "ca").string(),
                            "--out", other.path().string()})
                  .code,
              cli::kExitOk);
    r = ca({"verify", (other / "stranger.crt").string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "stranger.crt")) << r.err;

    // Signed with this CA's key, but never recorded.
    TimePoint now = SystemClock::now();
    fs::path unrecorded = tmp_ / "unrecorded.crt";
    write(unrecorded, sign_directly("ghost", now - 1h, now + Days(10)).to_pem());
    r = ca({"verify", unrecorded.string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "not in its index")) << r.err;

    // Recorded, but expired.
    Certificate old = sign_directly("old", now - Days(30), now - Days(1));
    add_to_index(old, "old");
    fs::path old_file = tmp_ / "old.crt";
    write(old_file, old.to_pem());
    r = ca({"verify", old_file.string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "expired")) << r.err;

    fs::path garbage = tmp_ / "garbage.crt";
    write(garbage, "hello");
    r = ca({"verify", garbage.string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "garbage.crt")) << r.err;
    EXPECT_EQ(ca({"verify"}).code, cli::kExitUsage);
}

// ---------------------------------------------------------------- export-p12

struct ParsedP12 {
    bool ok = false;
    PkeyPtr key;
    std::optional<Certificate> cert;
    std::vector<Certificate> ca;
};

ParsedP12 parse_p12(const std::string& data, const std::string& password) {
    ParsedP12 out;
    BioPtr bio = memory_bio(data);
    Pkcs12Ptr p12(d2i_PKCS12_bio(bio.get(), nullptr));
    if (!p12) return out;
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    STACK_OF(X509)* ca = nullptr;
    out.ok = PKCS12_parse(p12.get(), password.c_str(), &key, &cert, &ca) == 1;
    ERR_clear_error();
    out.key.reset(key);
    if (cert) out.cert.emplace(X509Ptr(cert));
    for (int i = 0; ca && i < sk_X509_num(ca); ++i) {
        X509* c = sk_X509_value(ca, i);
        X509_up_ref(c);
        out.ca.emplace_back(X509Ptr(c));
    }
    sk_X509_pop_free(ca, X509_free);
    return out;
}

TEST_F(CaCliTest, ExportP12RoundTripsThroughOpenSsl) {
    init();
    issue_client({"dev-1"});
    fs::path pw = tmp_ / "p12pw";
    write(pw, "export-pass\n");
    CliResult r =
        ca({"export-p12", "dev-1", "--in", out(), "--password-file", pw.string(), "--json"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    fs::path p12 = out("dev-1.p12");
    EXPECT_EQ(fs::path(json::parse(r.out).at("file").get<std::string>()), p12);
    EXPECT_EQ(mode_of(p12), 0600u);

    ParsedP12 parsed = parse_p12(read_file(p12), "export-pass");
    ASSERT_TRUE(parsed.ok);
    ASSERT_TRUE(parsed.cert.has_value());
    EXPECT_EQ(parsed.cert->fingerprint_sha256(), cert("dev-1").fingerprint_sha256());
    ASSERT_TRUE(parsed.key);
    EXPECT_EQ(EVP_PKEY_eq(parsed.key.get(), PrivateKey::load(out("dev-1.key")).get()), 1);
    EXPECT_EQ(X509_check_private_key(parsed.cert->get(), parsed.key.get()), 1);
    ASSERT_EQ(parsed.ca.size(), 1u);
    EXPECT_EQ(parsed.ca[0].fingerprint_sha256(), root().fingerprint_sha256());

    EXPECT_FALSE(parse_p12(read_file(p12), "wrong-pass").ok);
}

TEST_F(CaCliTest, ExportP12Refusals) {
    init();
    issue_client({"dev-1"});
    fs::path pw = tmp_ / "p12pw";
    write(pw, "export-pass");

    CliResult r = ca({"export-p12", "dev-1", "--in", out()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "--password-file")) << r.err;
    EXPECT_FALSE(fs::exists(out("dev-1.p12")));
    r = ca({"export-p12", "--in", out(), "--password-file", pw.string()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    r = ca({"export-p12", "dev-1", "--in", out(), "--password", "inline-secret"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;

    r = ca({"export-p12", "nobody", "--in", out(), "--password-file", pw.string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "nobody.key")) << r.err;

    ASSERT_EQ(ca({"export-p12", "dev-1", "--in", out(), "--password-file", pw.string()}).code,
              cli::kExitOk);
    std::string first = read_file(out("dev-1.p12"));
    r = ca({"export-p12", "dev-1", "--in", out(), "--password-file", pw.string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "dev-1.p12")) << r.err;
    EXPECT_TRUE(contains(r.err, "already exists")) << r.err;
    EXPECT_EQ(read_file(out("dev-1.p12")), first);

    EnvVar var("BROKERTLS_TEST_P12_PW", "other-pass");
    r = ca({"export-p12", "dev-1", "--in", out(), "--password-env", "BROKERTLS_TEST_P12_PW",
            "--force"});
    EXPECT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(parse_p12(read_file(out("dev-1.p12")), "other-pass").ok);
    EXPECT_EQ(mode_of(out("dev-1.p12")), 0600u);

    // A key that does not belong to the certificate.
    fs::copy_file(out("dev-1.crt"), out("mixed.crt"));
    write_file_atomic(out("mixed.key"), PrivateKey::generate(KeyType::EcP256).to_pem(), 0600);
    r = ca({"export-p12", "mixed", "--in", out(), "--password-file", pw.string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "does not match")) << r.err;
    EXPECT_FALSE(fs::exists(out("mixed.p12")));
}

TEST_F(CaCliTest, ExportP12CarriesTheIntermediate) {
    init();
    init({"--intermediate"});
    issue_client({"dev-1"});
    fs::path pw = tmp_ / "p12pw";
    write(pw, "pw");
    fs::path p12 = tmp_ / "bundle.p12";
    CliResult r = ca({"export-p12", "dev-1", "--in", out(), "--out", p12.string(),
                      "--password-file", pw.string()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    ParsedP12 parsed = parse_p12(read_file(p12), "pw");
    ASSERT_TRUE(parsed.ok);
    std::set<std::string> ca_prints;
    for (const auto& c : parsed.ca) ca_prints.insert(c.fingerprint_sha256());
    EXPECT_EQ(ca_prints, (std::set<std::string>{
                             root().fingerprint_sha256(),
                             Certificate::load(dir_ / "intermediate.crt").fingerprint_sha256()}));
}

// ---------------------------------------------------------------- a damaged CA directory

TEST_F(CaCliTest, GarbageRootCertificateIsNamed) {
    init();
    issue_client({"dev-1"});
    write(dir_ / "root.crt", "this is not a certificate\n");
    Snapshot before = snapshot(dir_);
    for (std::vector<std::string> args :
         std::vector<std::vector<std::string>>{{"list"},
                                               {"issue", "client", "dev-2", "--out", out()},
                                               {"verify", out("dev-1.crt").string()},
                                               {"crl"}}) {
        CliResult r = ca(args);
        EXPECT_EQ(r.code, cli::kExitError) << r;
        EXPECT_TRUE(contains(r.err, "root.crt")) << r.err;
    }
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out("dev-2.crt")));
}

TEST_F(CaCliTest, RootKeyOfAnotherCaIsRefused) {
    init();
    test::TempDir other;
    ASSERT_EQ(brokertls_ca({"init", "--dir", (other / "ca").string()}).code, cli::kExitOk);
    fs::copy_file(other / "ca" / "root.key", dir_ / "root.key",
                  fs::copy_options::overwrite_existing);
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"issue", "client", "dev-1", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "root.key")) << r.err;
    EXPECT_TRUE(contains(r.err, "does not match")) << r.err;
    r = ca({"crl"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "does not match")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out_));
}

TEST_F(CaCliTest, MissingDirectoryIsAnErrorAndIsNotCreated) {
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
             {"list"}, {"issue", "client", "dev-1", "--out", out()}, {"crl"}, {"show", "AB"}}) {
        CliResult r = ca(args);
        EXPECT_EQ(r.code, cli::kExitError) << r;
        EXPECT_TRUE(contains(r.err, dir_.string())) << r.err;
        EXPECT_TRUE(contains(r.err, "no such CA directory")) << r.err;
    }
    EXPECT_FALSE(fs::exists(dir_));
    EXPECT_FALSE(fs::exists(out_));

    // A directory that is not a CA.
    fs::create_directories(dir_);
    CliResult r = ca({"list"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "root.crt missing")) << r.err;
}

TEST_F(CaCliTest, CorruptIndexLineIsNamed) {
    init();
    issue_client({"a", "b", "c"});
    std::string text = read_file(dir_ / "index.jsonl");
    size_t first_end = text.find('\n');
    size_t second_end = text.find('\n', first_end + 1);
    text.replace(first_end + 1, second_end - first_end - 1, "{\"serial\": \"AB\", truncated");
    write(dir_ / "index.jsonl", text);
    Snapshot before = snapshot(dir_);

    CliResult r = ca({"list"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "index.jsonl:2")) << r.err;
    r = ca({"verify", out("c.crt").string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "index.jsonl")) << r.err;
    r = ca({"revoke", out("c.crt").string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "index.jsonl")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
}

TEST_F(CaCliTest, BusyLockTimesOut) {
    init();
    DirectoryLock held(dir_ / ".lock", DirectoryLock::Mode::Exclusive, 1s);
    CliResult r = ca({"list", "--lock-timeout", "0"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "holds the lock")) << r.err;
    r = ca({"issue", "client", "dev-1", "--out", out(), "--lock-timeout", "0"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_FALSE(fs::exists(out_));
    EXPECT_EQ(ca({"list", "--lock-timeout", "forever"}).code, cli::kExitUsage);
}

TEST_F(CaCliTest, DirectoryDefaultsToEnvironment) {
    EnvVar var("BROKERTLS_CA_DIR", dir_.string());
    CliResult r = brokertls_ca({"init"});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(fs::exists(dir_ / "root.crt"));
    EXPECT_EQ(brokertls_ca({"list"}).code, cli::kExitOk);
}

// ---------------------------------------------------------------- failures change nothing

// A CSR for a key brokertls would never generate (weak RSA, other curves, other algorithms).
std::string csr_pem_for(EVP_PKEY* key, const std::string& cn) {
    X509ReqPtr req(X509_REQ_new());
    X509_REQ_set_version(req.get(), 0);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_REQ_set_pubkey(req.get(), key);
    bool has_digest = !EVP_PKEY_is_a(key, "ED25519") && !EVP_PKEY_is_a(key, "ED448");
    EXPECT_GT(X509_REQ_sign(req.get(), key, has_digest ? EVP_sha256() : nullptr), 0);
    BioPtr bio = memory_bio();
    PEM_write_bio_X509_REQ(bio.get(), req.get());
    return bio_contents(bio.get());
}

TEST_F(CaCliTest, IssueWithAnUnwritableIndexWritesNothing) {
    init();
    issue_client({"dev-0"});
    // An index that cannot be appended to: the certificate would be one the CA cannot revoke.
    fs::remove(dir_ / "index.jsonl");
    fs::create_directory(dir_ / "index.jsonl");
    Snapshot ca_before = snapshot(dir_);
    Snapshot out_before = snapshot(out_);
    CliResult r = ca({"issue", "client", "dev-1", "dev-2", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, (dir_ / "index.jsonl").string())) << r.err;
    EXPECT_EQ(snapshot(dir_), ca_before);
    EXPECT_EQ(snapshot(out_), out_before);

    // A fresh output directory is not even created.
    fs::path fresh = tmp_ / "fresh";
    r = ca({"issue", "server", "broker.local", "--out", fresh.string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_FALSE(fs::exists(fresh));
    EXPECT_EQ(snapshot(dir_), ca_before);
}

TEST_F(CaCliTest, SignWithAnUnwritableIndexWritesNothing) {
    init();
    fs::path csr_path = tmp_ / "dev-7.csr";
    write(csr_path,
          CertificateRequest::create(PrivateKey::generate(KeyType::EcP256), "dev-7", {}).to_pem());
    fs::remove(dir_ / "index.jsonl");
    fs::create_directory(dir_ / "index.jsonl");
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"sign", csr_path.string(), "--profile", "client", "--allow", "dev-*"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "index.jsonl")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(tmp_ / "dev-7.crt"));
    EXPECT_FALSE(fs::exists(tmp_ / "dev-7.chain.pem"));
}

TEST_F(CaCliTest, IssueIntoAnUnwritableOutputChangesNothing) {
    init();
    write(tmp_ / "file", "not a directory\n");
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"issue", "client", "dev-1", "--out", (tmp_ / "file" / "sub").string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_TRUE(index().empty());
}

TEST_F(CaCliTest, FailedCrlOutChangesNothing) {
    init();
    issue_client({"a"});
    ASSERT_EQ(ca({"revoke", out("a.crt").string()}).code, cli::kExitOk);
    Snapshot before = snapshot(dir_);
    CliResult r = ca({"crl", "--out", (tmp_ / "missing" / "crl.pem").string()});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "missing")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);  // neither crl.pem nor crlnumber moved
    EXPECT_EQ(read_file(dir_ / "crlnumber"), "1\n");

    // --out naming an existing directory writes crl.pem into it.
    fs::create_directory(tmp_ / "publish");
    r = ca({"crl", "--out", (tmp_ / "publish").string()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_EQ(read_file(tmp_ / "publish" / "crl.pem"), read_file(dir_ / "crl.pem"));
    EXPECT_EQ(read_file(dir_ / "crlnumber"), "2\n");
}

TEST_F(CaCliTest, MissingIndexWithCertificatesIsRefused) {
    init();
    issue_client({"a", "b"});
    ASSERT_EQ(ca({"revoke", out("a.crt").string()}).code, cli::kExitOk);
    fs::remove(dir_ / "index.jsonl");
    Snapshot before = snapshot(dir_);
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
             {"crl"}, {"list"}, {"issue", "client", "c", "--out", out()}, {"revoke", "0A"}}) {
        CliResult r = ca(args);
        EXPECT_EQ(r.code, cli::kExitError) << args[0] << ": " << r;
        EXPECT_TRUE(contains(r.err, (dir_ / "index.jsonl").string())) << r.err;
        EXPECT_TRUE(contains(r.err, "missing")) << r.err;
        EXPECT_TRUE(contains(r.err, "2 certificates")) << r.err;
        EXPECT_TRUE(contains(r.err, "backup")) << r.err;
    }
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out("c.crt")));
}

TEST_F(CaCliTest, SignRefusesWeakOrUnknownKeys) {
    init();
    struct Case {
        PkeyPtr key;
        std::string named;
    };
    std::vector<Case> cases;
    cases.push_back({PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024})),
                     "RSA key of 1024 bits"});
    cases.push_back({PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1")), "secp256k1"});
    cases.push_back({PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521")), "secp521r1"});
    cases.push_back({PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448")), "ED448"});
    Snapshot before = snapshot(dir_);
    for (const auto& c : cases) {
        ASSERT_TRUE(c.key) << c.named;
        fs::path csr_path = tmp_ / "weak.csr";
        write(csr_path, csr_pem_for(c.key.get(), "dev-1"));
        CliResult r = ca({"sign", csr_path.string(), "--profile", "client", "--allow", "*"});
        EXPECT_EQ(r.code, cli::kExitError) << c.named << ": " << r;
        EXPECT_TRUE(contains(r.err, "weak.csr")) << r.err;
        EXPECT_TRUE(contains(r.err, c.named)) << r.err;
        EXPECT_FALSE(fs::exists(tmp_ / "weak.crt"));
    }
    EXPECT_EQ(snapshot(dir_), before);
    // The key types brokertls generates pass, RSA above 2048 too.
    for (KeyType type : {KeyType::Rsa2048, KeyType::EcP384, KeyType::Ed25519}) {
        fs::path csr_path = tmp_ / "ok.csr";
        write(csr_path,
              CertificateRequest::create(PrivateKey::generate(type), "dev-2", {}).to_pem());
        CliResult r =
            ca({"sign", csr_path.string(), "--profile", "client", "--allow", "*", "--force"});
        EXPECT_EQ(r.code, cli::kExitOk) << key_type_name(type) << ": " << r;
    }
}

TEST_F(CaCliTest, ExportP12RefusesPathsInTheName) {
    init();
    issue_client({"dev-1"});
    fs::path pw = tmp_ / "p12pw";
    write(pw, "pw");
    fs::create_directories(out_ / "sub");
    fs::copy_file(out("dev-1.key"), out_ / "sub" / "x.key");
    fs::copy_file(out("dev-1.crt"), out_ / "sub" / "x.crt");
    Snapshot before = snapshot(out_);
    for (const std::string& name :
         std::vector<std::string>{"../out/dev-1", "sub/x", "..", ".", (out_ / "dev-1").string(),
                                  std::string(300, 'a')}) {
        CliResult r = ca({"export-p12", name, "--in", out(), "--password-file", pw.string()});
        EXPECT_EQ(r.code, cli::kExitUsage) << name << ": " << r;
        EXPECT_TRUE(contains(r.err, "certificate name")) << r.err;
    }
    EXPECT_EQ(snapshot(out_), before);
}

TEST_F(CaCliTest, ReadableCaKeyIsWarnedAbout) {
    init();
    CliResult r = ca({"list"});
    EXPECT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_FALSE(contains(r.err, "readable")) << r.err;
    fs::permissions(dir_ / "root.key", fs::perms(0640));
    r = ca({"issue", "client", "dev-1", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(contains(r.err, (dir_ / "root.key").string())) << r.err;
    EXPECT_TRUE(contains(r.err, "0640")) << r.err;
    EXPECT_TRUE(contains(r.err, "chmod 600")) << r.err;
    EXPECT_EQ(mode_of(dir_ / "root.key"), 0640u);  // a warning, not a fix behind the back
}

TEST_F(CaCliTest, CorruptIndexFieldIsNamed) {
    init();
    issue_client({"a", "b"});
    std::string text = read_file(dir_ / "index.jsonl");
    std::string good = text;
    struct Case {
        std::string field, bad_value, says;
    };
    for (const Case& c : std::vector<Case>{{"serial", "\"zz\"", "hex"},
                                           {"fingerprint", "\"abc\"", "not a SHA-256"},
                                           {"not_after", "\"soon\"", "not_after"},
                                           {"sans", "[1]", "sans"},
                                           {"name", "7", "name"}}) {
        json line = json::parse(good.substr(good.find('\n') + 1));
        line[c.field] = json::parse(c.bad_value);
        write(dir_ / "index.jsonl", good.substr(0, good.find('\n') + 1) + line.dump() + "\n");
        CliResult r = ca({"list"});
        EXPECT_EQ(r.code, cli::kExitError) << c.field << ": " << r;
        EXPECT_TRUE(contains(r.err, "index.jsonl:2")) << r.err;
        EXPECT_TRUE(contains(r.err, "field '" + c.field + "'")) << r.err;
        EXPECT_TRUE(contains(r.err, c.says)) << r.err;
    }
    // An unknown revocation reason is corruption too, not "unspecified".
    std::string serial = json::parse(good.substr(0, good.find('\n'))).at("serial");
    write(dir_ / "index.jsonl",
          good +
              json{{"revoke", serial}, {"at", "2030-01-01T00:00:00Z"}, {"reason", "bogus"}}.dump() +
              "\n");
    CliResult r = ca({"list"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "index.jsonl:3")) << r.err;
    EXPECT_TRUE(contains(r.err, "field 'reason'")) << r.err;
}

TEST_F(CaCliTest, TooLongNameIsRefusedBeforeTouchingTheFilesystem) {
    init();
    Snapshot before = snapshot(dir_);
    std::string long_name(201, 'n');
    CliResult r = ca({"issue", "client", long_name, "--out", out()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "too long")) << r.err;
    r = ca({"issue", "server", "broker.local", "--file-name", long_name, "--out", out()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "too long")) << r.err;
    // A CN holds at most 64 characters (RFC 5280): refused before anything is written, too.
    r = ca({"issue", "client", std::string(65, 'n'), "--out", out()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "too long")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out_));
    issue_client({std::string(64, 'n')});
    issue_client({std::string(63, 'm') + "\u00e9"});  // 64 characters in 65 bytes
}

TEST_F(CaCliTest, BadSerialIsNamed) {
    init();
    issue_client({"a"});
    Snapshot before = snapshot(dir_);
    for (const char* command : {"revoke", "show"}) {
        for (std::string bad : {"zz-not-hex", "0x", "12:xy"}) {
            CliResult r = ca({command, bad});
            EXPECT_EQ(r.code, cli::kExitError) << command << " " << bad << ": " << r;
            EXPECT_TRUE(contains(r.err, "'" + bad + "'")) << r.err;
            EXPECT_TRUE(contains(r.err, "serial")) << r.err;
        }
    }
    EXPECT_EQ(snapshot(dir_), before);
}

TEST_F(CaCliTest, ClientNamesFollowTheIdentityRules) {
    init();
    Snapshot before = snapshot(dir_);
    for (const std::string& bad : std::vector<std::string>{"dev+1", "dev#1", "tab\there",
                                                           std::string("nul\0x", 5), "\xff\xfe"}) {
        CliResult r = ca({"issue", "client", bad, "--out", out()});
        EXPECT_EQ(r.code, cli::kExitUsage) << printable(bad) << ": " << r;
        EXPECT_TRUE(contains(r.err, printable(bad))) << r.err;
        EXPECT_TRUE(contains(r.err, "identity")) << r.err;
    }
    // In a fleet, one bad name stops the batch before anything is signed.
    fs::path names = tmp_ / "names";
    write(names, "ok-1\nbad+2\n");
    CliResult r = ca({"issue", "client", "--names-file", names.string(), "--out", out()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "bad+2")) << r.err;
    // '/' is refused unless allowed; then only '/' is allowed, and the files use '_'.
    r = ca({"issue", "client", "site/dev-1", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "--allow-slash")) << r.err;
    EXPECT_EQ(snapshot(dir_), before);
    EXPECT_FALSE(fs::exists(out_));
    r = ca({"issue", "client", "site/dev+1", "--allow-slash", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    issue_client({"site/dev-1"}, {"--allow-slash"});
    EXPECT_EQ(cert("site_dev-1").common_name(), "site/dev-1");
    // Server names keep their DNS/IP rules ('/' in a URI is fine).
    r = ca({"issue", "server", "spiffe://x/y", "--out", out()});
    EXPECT_EQ(r.code, cli::kExitOk) << r;

    // sign --profile client checks the CSR's CN the same way.
    fs::path csr_path = tmp_ / "slash.csr";
    write(csr_path,
          CertificateRequest::create(PrivateKey::generate(KeyType::EcP256), "dev/1", {}).to_pem());
    r = ca({"sign", csr_path.string(), "--profile", "client", "--allow", "*"});
    EXPECT_EQ(r.code, cli::kExitError) << r;
    EXPECT_TRUE(contains(r.err, "dev/1")) << r.err;
    EXPECT_FALSE(fs::exists(tmp_ / "slash.crt"));
    r = ca({"sign", csr_path.string(), "--profile", "client", "--allow", "*", "--allow-slash"});
    EXPECT_EQ(r.code, cli::kExitOk) << r;
}

TEST_F(CaCliTest, LargeBatchShowsProgressOnStderr) {
    init();
    CliResult r = ca({"issue", "client", "--count", "600", "--prefix", "d-", "--out", out()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(contains(r.err, "600/600")) << r.err;
    r = ca({"issue", "client", "--count", "5", "--prefix", "e-", "--out", out()});
    ASSERT_EQ(r.code, cli::kExitOk) << r;
    EXPECT_TRUE(r.err.empty()) << r.err;
}

// ---------------------------------------------------------------- help

TEST_F(CaCliTest, HelpForEveryCommand) {
    for (const char* command :
         {"init", "issue", "sign", "revoke", "crl", "list", "show", "verify", "export-p12"}) {
        CliResult r = brokertls_ca({command, "--help"});
        EXPECT_EQ(r.code, cli::kExitOk) << command << ": " << r;
        EXPECT_TRUE(contains(r.out, std::string("Usage: brokertls-ca ") + command))
            << command << ": " << r.out;
        EXPECT_TRUE(r.err.empty()) << r.err;
    }
    for (const char* top : {"--help", "-h", "help"}) {
        CliResult r = brokertls_ca({top});
        EXPECT_EQ(r.code, cli::kExitOk) << r;
        EXPECT_TRUE(contains(r.out, "Commands:")) << r.out;
    }
    CliResult r = brokertls_ca({});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.out, "Commands:")) << r.out;

    r = brokertls_ca({"frobnicate"});
    EXPECT_EQ(r.code, cli::kExitUsage) << r;
    EXPECT_TRUE(contains(r.err, "frobnicate")) << r.err;
}

// Every option a command's --help documents is accepted by that command.
TEST_F(CaCliTest, HelpListsOnlyAcceptedOptions) {
    init();
    for (const char* command :
         {"init", "issue", "sign", "revoke", "crl", "list", "show", "verify", "export-p12"}) {
        std::string help = brokertls_ca({command, "--help"}).out;
        std::set<std::string> options;
        for (size_t at = help.find("--"); at != std::string::npos; at = help.find("--", at + 2)) {
            size_t end = at + 2;
            while (end < help.size() &&
                   (std::isalnum(static_cast<unsigned char>(help[end])) || help[end] == '-'))
                ++end;
            if (end > at + 2) options.insert(help.substr(at, end - at));
        }
        for (const auto& option : options) {
            // "--help" makes the command print help and exit 0 whatever else is given, so an
            // unknown option shows up as a usage error before it.
            CliResult r = brokertls_ca({command, option, "1", "--help"});
            EXPECT_EQ(r.code, cli::kExitOk) << command << " " << option << ": " << r;
        }
    }
}

}  // namespace
}  // namespace brokertls
