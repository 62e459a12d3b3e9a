// EST's codecs (service/est.hpp): request paths, the base64 PKCS#10 body, the certs-only
// PKCS#7 answer and the re-enrollment rule. Requests made by `openssl req` and answers read by
// `openssl pkcs7` check us against an independent implementation.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>

#include <chrono>
#include <string>
#include <vector>

#include "brokertls/crypto/signing.hpp"
#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "service/est.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using test::error_of;
using test::run;
using Type = SubjectAltName::Type;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// One line of base64, no breaks.
std::string base64(std::string_view data) {
    std::string out((data.size() + 2) / 3 * 4 + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(data.data()),
                            static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string openssl_ok(const std::vector<std::string>& args, const std::string& input = "") {
    std::vector<std::string> argv{"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    test::RunResult r = run(argv, input);
    EXPECT_EQ(r.exit_code, 0) << test::describe(r);
    return r.out;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (std::size_t at = text.find(from); at != std::string::npos;
         at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

// A root CA, an intermediate under it, and leaves issued by the intermediate.
class EstPki : public ::testing::Test {
  protected:
    EstPki()
        : root_key_(PrivateKey::generate(KeyType::EcP256)),
          root_(sign_certificate(spec(CertificateProfile::RootCa, "EST Root"), root_key_.get(),
                                 root_key_, nullptr)),
          inter_key_(PrivateKey::generate(KeyType::EcP256)),
          inter_(sign_certificate(spec(CertificateProfile::IntermediateCa, "EST Intermediate"),
                                  inter_key_.get(), root_key_, &root_)),
          leaf_key_(PrivateKey::generate(KeyType::EcP256)) {}

    static CertificateSpec spec(CertificateProfile profile, std::string cn,
                                std::vector<SubjectAltName> sans = {}) {
        auto now = std::chrono::floor<std::chrono::seconds>(SystemClock::now());
        CertificateSpec s;
        s.profile = profile;
        s.common_name = std::move(cn);
        s.subject_alt_names = std::move(sans);
        s.not_before = now - Days(1);
        s.not_after = now + Days(30);
        return s;
    }

    Certificate leaf(const std::string& cn, const std::vector<SubjectAltName>& sans) {
        return sign_certificate(spec(CertificateProfile::Client, cn, sans), leaf_key_.get(),
                                inter_key_, &inter_);
    }

    PrivateKey root_key_;
    Certificate root_;
    PrivateKey inter_key_;
    Certificate inter_;
    PrivateKey leaf_key_;
};

TEST(EstPath, TheOperationsWithAndWithoutALabel) {
    using P = EstPath;
    EXPECT_EQ(parse_est_path("/.well-known/est/cacerts"), (P{"", "cacerts"}));
    EXPECT_EQ(parse_est_path("/.well-known/est/simpleenroll"), (P{"", "simpleenroll"}));
    EXPECT_EQ(parse_est_path("/.well-known/est/simplereenroll"), (P{"", "simplereenroll"}));
    EXPECT_EQ(parse_est_path("/.well-known/est/broker-ca_2.v1/simpleenroll"),
              (P{"broker-ca_2.v1", "simpleenroll"}));
    // Operations we do not serve still come back, so the caller can answer 404/501.
    EXPECT_EQ(parse_est_path("/.well-known/est/csrattrs"), (P{"", "csrattrs"}));
    EXPECT_EQ(parse_est_path("/.well-known/est/lab/serverkeygen"), (P{"lab", "serverkeygen"}));
    EXPECT_EQ(parse_est_path("/.well-known/est/fullcmc"), (P{"", "fullcmc"}));
    EXPECT_EQ(parse_est_path("/.well-known/est/" + std::string(64, 'a') + "/cacerts"),
              (P{std::string(64, 'a'), "cacerts"}));
}

TEST(EstPath, AnythingElseIsNoEstPath) {
    for (const std::string& path :
         std::vector<std::string>{"",
                                  "/",
                                  "/.well-known/est",
                                  "/.well-known/est/",
                                  "/.well-known/est//cacerts",
                                  "/.well-known/est/cacerts/",
                                  "/.well-known/est/a/b/cacerts",
                                  "/.well-known/EST/cacerts",
                                  "/.well-known/est/cacerts?x=1",
                                  "/.well-known/est/cacerts#x",
                                  "/.well-known/est/%61/cacerts",
                                  "/.well-known/est/a b/cacerts",
                                  "/.well-known/est/../cacerts",
                                  "/.well-known/est/./cacerts",
                                  "/.well-known/est/..",
                                  "/.well-known/est/lab\xC3\xA9/cacerts",
                                  ".well-known/est/cacerts",
                                  "/x/.well-known/est/cacerts",
                                  "//.well-known/est/cacerts",
                                  "/.well-known/est/" + std::string(65, 'a') + "/cacerts",
                                  "/.well-known/est/" + std::string(65, 'a'),
                                  std::string("/.well-known/est/cacerts") + '\0'})
        EXPECT_FALSE(parse_est_path(path)) << path;
}

TEST_F(EstPki, ARequestOfOpensslReqParsesWithAndWithoutLineBreaks) {
    test::TempDir dir;
    openssl_ok({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", (dir / "key.pem").string(), "-subj", "/CN=dev-1", "-addext",
                "subjectAltName=DNS:dev-1.mqtt.example,IP:10.0.0.5", "-outform", "DER", "-out",
                (dir / "req.der").string()});
    std::string der = read_file(dir / "req.der");
    // What `openssl base64` writes: 64 characters a line, LF.
    std::string wrapped = openssl_ok({"base64", "-in", (dir / "req.der").string()});
    ASSERT_TRUE(contains(wrapped, "\n"));
    std::string one_line = openssl_ok({"base64", "-A", "-in", (dir / "req.der").string()});
    ASSERT_FALSE(contains(one_line, "\n"));
    for (const std::string& body :
         {wrapped, one_line, replace_all(wrapped, "\n", "\r\n"), "\r\n  " + one_line + "\r\n",
          replace_all(wrapped, "\n", " \t")}) {
        CertificateRequest csr = parse_est_csr(body);
        EXPECT_EQ(csr.to_der(), der);
        EXPECT_EQ(csr.common_name(), "dev-1");
        EXPECT_EQ(csr.subject_alt_names(),
                  (std::vector<SubjectAltName>{{Type::Dns, "dev-1.mqtt.example"},
                                               {Type::Ip, "10.0.0.5"}}));
        EXPECT_TRUE(csr.signature_valid());
    }
}

TEST_F(EstPki, OurOwnRequestRoundTrips) {
    CertificateRequest made =
        CertificateRequest::create(leaf_key_, "dev-2", {{Type::Dns, "dev-2.mqtt.example"}});
    CertificateRequest parsed = parse_est_csr(base64(made.to_der()));
    EXPECT_EQ(parsed.to_der(), made.to_der());
    EXPECT_EQ(parsed.subject(), "CN=dev-2");
}

TEST_F(EstPki, MalformedBodiesAreRefusedWithTheReason) {
    std::string der = CertificateRequest::create(leaf_key_, "dev-3", {}).to_der();
    std::string good = base64(der);
    auto refused = [](const std::string& body) {
        return error_of([&] { parse_est_csr(body); }, ErrorKind::Input);
    };
    EXPECT_EQ(refused(""), "EST request: empty body");
    EXPECT_EQ(refused(" \r\n"), "EST request: empty body");
    EXPECT_TRUE(contains(refused(CertificateRequest::parse(der, "x").to_pem()), "PEM armour"));
    EXPECT_EQ(refused("*" + good.substr(1)), "EST request: character 0x2A is not base64");
    // The URL-safe alphabet is another encoding.
    EXPECT_EQ(refused(good.substr(0, 4) + "_" + good.substr(5)),
              "EST request: character 0x5F is not base64");
    EXPECT_EQ(refused("\xC3\xA9" + good.substr(2)), "EST request: character 0xC3 is not base64");
    EXPECT_EQ(refused(std::string("QUFB\0QUFB", 9)), "EST request: character 0x00 is not base64");
    EXPECT_TRUE(contains(refused(good.substr(1)), "not a multiple of 4"));
    EXPECT_TRUE(contains(refused(good + "QQ"), "not a multiple of 4"));
    EXPECT_TRUE(contains(refused("QQ==" + good), "padding inside"));
    EXPECT_TRUE(contains(refused("Q==="), "padding inside"));
    EXPECT_TRUE(contains(refused("===="), "padding inside"));
    EXPECT_TRUE(contains(refused("QQ=A"), "padding inside"));
    // "QR==" decodes to the same byte as "QQ==": only the canonical form is base64.
    EXPECT_TRUE(contains(refused("QR=="), "non-zero bits"));
    EXPECT_TRUE(contains(refused("QUI="), "not a DER PKCS#10"));
    EXPECT_TRUE(contains(refused("QUJ="), "non-zero bits"));
    EXPECT_EQ(refused(base64(der + std::string("\0\0\0", 3))),
              "EST request: 3 bytes of trailing data after the DER request");
    EXPECT_EQ(refused(base64("hello, world")),
              "EST request: not a DER PKCS#10 certificate request");
    EXPECT_EQ(refused(base64(root_.to_der())),
              "EST request: not a DER PKCS#10 certificate request");
}

TEST_F(EstPki, TheSizeCapIsOnTheDecodedRequest) {
    // At the cap the size passes and the DER check speaks; one byte more is refused as such.
    EXPECT_EQ(
        error_of([] { parse_est_csr(base64(std::string(kEstMaxCsrSize, 'x'))); }, ErrorKind::Input),
        "EST request: not a DER PKCS#10 certificate request");
    EXPECT_EQ(error_of([] { parse_est_csr(base64(std::string(kEstMaxCsrSize + 1, 'x'))); },
                       ErrorKind::Input),
              "EST request: larger than 16384 bytes");
    EXPECT_EQ(error_of([] { parse_est_csr(std::string(10 * 1024 * 1024, 'A')); }, ErrorKind::Input),
              "EST request: larger than 16384 bytes");
}

TEST_F(EstPki, CertsOnlyListsOurCertificatesInOrderForOpensslPkcs7) {
    Certificate dev = leaf("dev-1", {{Type::Dns, "dev-1.mqtt.example"}});
    test::TempDir dir;
    for (const std::vector<Certificate>& certs :
         {std::vector<Certificate>{dev, inter_, root_}, std::vector<Certificate>{root_, dev},
          std::vector<Certificate>{root_}}) {
        std::string answer = est_certs_only(certs);
        write_file_unsynced(dir / "answer.b64", answer);
        openssl_ok({"base64", "-d", "-in", (dir / "answer.b64").string(), "-out",
                    (dir / "answer.der").string()});
        std::string pems = openssl_ok(
            {"pkcs7", "-inform", "DER", "-in", (dir / "answer.der").string(), "-print_certs"});
        std::vector<Certificate> listed = Certificate::parse_chain(pems, "openssl pkcs7");
        ASSERT_EQ(listed.size(), certs.size()) << pems;
        for (std::size_t i = 0; i < certs.size(); ++i)
            EXPECT_EQ(listed[i].fingerprint_sha256(), certs[i].fingerprint_sha256()) << i;

        // Degenerate: no signers, no content (RFC 5652 §5.2).
        std::string der = read_file(dir / "answer.der");
        const auto* p = reinterpret_cast<const unsigned char*>(der.data());
        std::unique_ptr<PKCS7, OpenSslDeleter<PKCS7_free>> p7(
            d2i_PKCS7(nullptr, &p, static_cast<long>(der.size())));
        ASSERT_TRUE(p7);
        ASSERT_TRUE(PKCS7_type_is_signed(p7.get()));
        EXPECT_EQ(sk_PKCS7_SIGNER_INFO_num(PKCS7_get_signer_info(p7.get())), 0);
        EXPECT_TRUE(PKCS7_type_is_data(p7->d.sign->contents));
        EXPECT_EQ(p7->d.sign->contents->d.data, nullptr);
    }
}

TEST_F(EstPki, CertsOnlyIsBase64InLinesOf64WithCrlf) {
    std::string answer = est_certs_only({leaf("dev-1", {}), inter_, root_});
    ASSERT_TRUE(answer.ends_with("\r\n"));
    std::size_t lines = 0;
    for (std::size_t at = 0; at < answer.size(); ++lines) {
        std::size_t end = answer.find("\r\n", at);
        ASSERT_NE(end, std::string::npos);
        EXPECT_LE(end - at, 64u);
        if (end + 2 < answer.size()) {
            EXPECT_EQ(end - at, 64u);
        }
        at = end + 2;
    }
    EXPECT_GT(lines, 1u);
    // Our own parser's grammar accepts it too (it is the same base64).
    EXPECT_TRUE(
        contains(error_of([&] { parse_est_csr(answer); }, ErrorKind::Input), "not a DER PKCS#10"));
}

TEST(EstCertsOnly, NoCertificatesIsAUsageError) {
    EXPECT_EQ(error_of([] { est_certs_only({}); }, ErrorKind::Usage),
              "EST certs-only: no certificates");
}

TEST_F(EstPki, ReenrollWithTheSameNamesIsFine) {
    Certificate current =
        leaf("dev-1", {{Type::Dns, "dev-1.mqtt.example"}, {Type::Ip, "10.0.0.5"}});
    // A new key, and the names in another order.
    PrivateKey new_key = PrivateKey::generate(KeyType::EcP256);
    CertificateRequest csr = CertificateRequest::create(
        new_key, "dev-1", {{Type::Ip, "10.0.0.5"}, {Type::Dns, "dev-1.mqtt.example"}});
    EXPECT_EQ(reenroll_problem(csr, current), std::nullopt);
    EXPECT_EQ(reenroll_problem(CertificateRequest::create(new_key, "dev-2", {}), leaf("dev-2", {})),
              std::nullopt);
}

TEST_F(EstPki, ReenrollWithOtherNamesIsRefused) {
    Certificate current = leaf("dev-1", {{Type::Dns, "dev-1.mqtt.example"}});
    auto problem = [&](const std::string& cn, const std::vector<SubjectAltName>& sans) {
        return reenroll_problem(CertificateRequest::create(leaf_key_, cn, sans), current);
    };
    EXPECT_EQ(problem("dev-2", {{Type::Dns, "dev-1.mqtt.example"}}),
              "re-enrollment request subject \"CN=dev-2\" is not the current certificate's "
              "\"CN=dev-1\" (RFC 7030 §4.2.2)");
    // X509_NAME_cmp would call these equal; as identities they are not.
    EXPECT_TRUE(contains(problem("Dev-1", {{Type::Dns, "dev-1.mqtt.example"}}).value_or(""),
                         "subject \"CN=Dev-1\""));
    EXPECT_EQ(problem("dev-1", {{Type::Dns, "dev-2.mqtt.example"}}),
              "re-enrollment request subjectAltName [DNS:dev-2.mqtt.example] is not the "
              "current certificate's [DNS:dev-1.mqtt.example] (RFC 7030 §4.2.2)");
    EXPECT_TRUE(contains(problem("dev-1", {}).value_or(""), "subjectAltName [] is not"));
    EXPECT_TRUE(contains(
        problem("dev-1", {{Type::Dns, "dev-1.mqtt.example"}, {Type::Dns, "admin.mqtt.example"}})
            .value_or(""),
        "subjectAltName [DNS:admin.mqtt.example, DNS:dev-1.mqtt.example] is not"));
}

}  // namespace
}  // namespace brokertls
