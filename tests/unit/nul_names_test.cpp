// Names with an embedded NUL ("admin\0.mqtt.example"): their ASN.1 length says 20 bytes, C
// string functions see "admin". Every reader of names refuses them, and every writer of names
// passes explicit lengths, so no name is ever cut short at a NUL.

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>

#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/store/files.hpp"
#include "cli.hpp"
#include "expect_error.hpp"
#include "pki.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;
using test::error_of;

const std::string kNulCn = "admin\0.mqtt.example"s;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

Certificate self_signed(const PrivateKey& key) {
    CertificateSpec spec{CertificateProfile::Client,
                         "dev.mqtt.example",
                         "",
                         {},
                         SystemClock::now() - Days(1),
                         SystemClock::now() + Days(30),
                         ""};
    return sign_certificate(spec, key.get(), key, nullptr);
}

TEST(NulNames, CsrWithNulInCommonNameIsRefusedAtParse) {
    auto key = PrivateKey::generate(KeyType::EcP256);
    std::string pem = test::raw::csr_pem(key, kNulCn);
    std::string err =
        error_of([&] { CertificateRequest::parse(pem, "req.csr"); }, ErrorKind::Input);
    EXPECT_TRUE(contains(err, "req.csr: CSR subject CN: contains a NUL byte")) << err;
}

TEST(NulNames, CsrWithNulInDnsSanIsRefusedAtParse) {
    auto key = PrivateKey::generate(KeyType::EcP256);
    std::string pem = test::raw::csr_pem(key, "dev.mqtt.example", kNulCn);
    std::string err =
        error_of([&] { CertificateRequest::parse(pem, "req.csr"); }, ErrorKind::Input);
    EXPECT_TRUE(contains(err, "req.csr: CSR subjectAltName DNS: contains a NUL byte")) << err;
}

TEST(NulNames, SigningACommonNameWithNulIsRefusedNotCutShort) {
    auto key = PrivateKey::generate(KeyType::EcP256);
    CertificateSpec spec{
        CertificateProfile::Client,    kNulCn, "", {}, SystemClock::now() - Days(1),
        SystemClock::now() + Days(30), ""};
    std::string err =
        error_of([&] { sign_certificate(spec, key.get(), key, nullptr); }, ErrorKind::Usage);
    EXPECT_TRUE(contains(err, "cannot be used as a common name: contains a NUL byte")) << err;
    spec.common_name = "dev.mqtt.example";
    spec.organization = "Example\0 Corp"s;
    err = error_of([&] { sign_certificate(spec, key.get(), key, nullptr); }, ErrorKind::Usage);
    EXPECT_TRUE(contains(err, "cannot be used as an organization name: contains a NUL byte"))
        << err;
}

TEST(NulNames, CertificateNamesWithNulAreRefused) {
    auto key = PrivateKey::generate(KeyType::EcP256);
    Certificate cn = test::raw::with_names(self_signed(key), key, kNulCn);
    std::string err = error_of([&] { (void)cn.common_name(); }, ErrorKind::Input);
    EXPECT_TRUE(contains(err, "certificate subject CN: contains a NUL byte")) << err;

    Certificate san = test::raw::with_names(self_signed(key), key, std::nullopt, kNulCn);
    EXPECT_EQ(san.common_name(), "dev.mqtt.example");
    err = error_of([&] { (void)san.subject_alt_names(); }, ErrorKind::Input);
    EXPECT_TRUE(contains(err, "certificate subjectAltName DNS: contains a NUL byte")) << err;
}

TEST(NulNames, WritersRefuseNulInsteadOfCuttingTheName) {
    auto key = PrivateKey::generate(KeyType::EcP256);
    std::string err =
        error_of([&] { CertificateRequest::create(key, kNulCn, {}); }, ErrorKind::Usage);
    EXPECT_TRUE(contains(err, "contains a NUL byte")) << err;
    for (auto type :
         {SubjectAltName::Type::Dns, SubjectAltName::Type::Uri, SubjectAltName::Type::Email}) {
        std::string value = type == SubjectAltName::Type::Uri     ? "spiffe://a\0b"s
                            : type == SubjectAltName::Type::Email ? "a\0b@example.com"s
                                                                  : kNulCn;
        EXPECT_THROW(make_san(type, value), Error) << SubjectAltName{type, ""}.to_string();
    }
    // A name that is fine goes through the explicit-length encoder unchanged.
    auto csr = CertificateRequest::create(key, "dev-1", {classify_name("spiffe://fleet/dev-1")});
    auto parsed = CertificateRequest::parse(csr.to_pem(), "csr");
    EXPECT_EQ(parsed.common_name(), "dev-1");
    ASSERT_EQ(parsed.subject_alt_names().size(), 1u);
    EXPECT_EQ(parsed.subject_alt_names()[0].value, "spiffe://fleet/dev-1");
}

class NulNamesCli : public ::testing::Test {
  protected:
    void SetUp() override {
        ::unsetenv("BROKERTLS_CA_PASSPHRASE");
        ::unsetenv("BROKERTLS_CA_DIR");
        ASSERT_EQ(run({"init"}), cli::kExitOk) << err_;
    }
    int run(std::vector<std::string> args) {
        args.insert(args.begin() + 1, {"--dir", (tmp_ / "ca").string()});
        std::ostringstream out, err;
        int code = cli::run(args, out, err);
        err_ = err.str();
        return code;
    }
    // Every file name under the test directory.
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        for (const auto& e : fs::recursive_directory_iterator(tmp_.path()))
            out.push_back(fs::relative(e.path(), tmp_.path()).string() + " " +
                          (e.is_regular_file() ? read_file(e.path()) : ""));
        std::sort(out.begin(), out.end());
        return out;
    }
    void expect_refused(const std::string& csr_pem) {
        fs::path csr = tmp_ / "admin.csr";
        write_file_atomic(csr, csr_pem);
        auto before = files();
        int code = run({"sign", csr.string(), "--profile", "client", "--allow", "*.mqtt.example"});
        EXPECT_EQ(code, cli::kExitError) << err_;
        EXPECT_TRUE(contains(err_, "admin.csr")) << err_;
        EXPECT_TRUE(contains(err_, "contains a NUL byte")) << err_;
        EXPECT_EQ(files(), before) << "a refused sign changed files";
        EXPECT_FALSE(fs::exists(tmp_ / "admin.crt"));
    }

    test::TempDir tmp_;
    std::string err_;
};

TEST_F(NulNamesCli, SignRefusesANulCommonName) {
    expect_refused(test::raw::csr_pem(PrivateKey::generate(KeyType::EcP256), kNulCn));
}

TEST_F(NulNamesCli, SignRefusesANulDnsSan) {
    expect_refused(
        test::raw::csr_pem(PrivateKey::generate(KeyType::EcP256), "dev.mqtt.example", kNulCn));
}

}  // namespace
}  // namespace brokertls
