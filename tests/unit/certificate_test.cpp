// Certificates: signing for each profile and reading every property back.

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
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

TimePoint whole_seconds_now() {
    return std::chrono::floor<seconds>(SystemClock::now());
}

bool is_lower_hex(const std::string& s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_upper_hex(const std::string& s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); });
}

CertificateSpec spec_for(CertificateProfile profile, std::string cn, TimePoint now) {
    CertificateSpec spec;
    spec.profile = profile;
    spec.common_name = std::move(cn);
    spec.not_before = now - Days(1);
    spec.not_after = now + Days(30);
    return spec;
}

// A root CA (P-256), an intermediate (P-384) under it, and helpers to issue leaves.
class CertificateTest : public ::testing::Test {
  protected:
    CertificateTest()
        : now_(whole_seconds_now()),
          root_key_(PrivateKey::generate(KeyType::EcP256)),
          root_(make_root()),
          intermediate_key_(PrivateKey::generate(KeyType::EcP384)),
          intermediate_(make_intermediate()) {}

    Certificate make_root() {
        CertificateSpec spec = spec_for(CertificateProfile::RootCa, "Test Root", now_);
        spec.organization = "Example";
        spec.not_after = now_ + Days(3650);
        return sign_certificate(spec, root_key_.get(), root_key_, nullptr);
    }

    Certificate make_intermediate() {
        CertificateSpec spec =
            spec_for(CertificateProfile::IntermediateCa, "Test Intermediate", now_);
        spec.organization = "Example";
        return sign_certificate(spec, intermediate_key_.get(), root_key_, &root_);
    }

    Certificate issue(const CertificateSpec& spec, const PrivateKey& subject_key) {
        return sign_certificate(spec, subject_key.get(), intermediate_key_, &intermediate_);
    }

    TimePoint now_;
    PrivateKey root_key_;
    Certificate root_;
    PrivateKey intermediate_key_;
    Certificate intermediate_;
};

TEST_F(CertificateTest, RootCaProfile) {
    EXPECT_EQ(root_.subject(), "CN=Test Root,O=Example");
    EXPECT_EQ(root_.issuer(), root_.subject());
    EXPECT_EQ(root_.common_name(), "Test Root");
    EXPECT_TRUE(root_.is_self_signed());
    EXPECT_TRUE(root_.signed_by(root_));
    EXPECT_TRUE(root_.is_ca());

    BasicConstraints bc = root_.basic_constraints();
    EXPECT_TRUE(bc.present);
    EXPECT_TRUE(bc.critical);
    EXPECT_TRUE(bc.ca);
    EXPECT_EQ(bc.path_length, -1);

    std::vector<std::string> ku = root_.key_usage();
    EXPECT_NE(std::find(ku.begin(), ku.end(), "keyCertSign"), ku.end());
    EXPECT_NE(std::find(ku.begin(), ku.end(), "cRLSign"), ku.end());
    EXPECT_EQ(std::find(ku.begin(), ku.end(), "keyEncipherment"), ku.end());
    EXPECT_FALSE(root_.has_extended_key_usage());
    EXPECT_TRUE(root_.extended_key_usage().empty());

    EXPECT_EQ(root_.key_algorithm(), "ecdsa-p256");
    EXPECT_TRUE(root_.matches_key(root_key_));
    EXPECT_FALSE(root_.matches_key(intermediate_key_));
}

TEST_F(CertificateTest, IntermediateCaProfile) {
    EXPECT_EQ(intermediate_.subject(), "CN=Test Intermediate,O=Example");
    EXPECT_EQ(intermediate_.issuer(), root_.subject());
    EXPECT_FALSE(intermediate_.is_self_signed());
    EXPECT_TRUE(intermediate_.signed_by(root_));
    EXPECT_FALSE(intermediate_.signed_by(intermediate_));

    BasicConstraints bc = intermediate_.basic_constraints();
    EXPECT_TRUE(bc.present);
    EXPECT_TRUE(bc.critical);
    EXPECT_TRUE(bc.ca);
    EXPECT_EQ(bc.path_length, 0);

    std::vector<std::string> ku = intermediate_.key_usage();
    EXPECT_NE(std::find(ku.begin(), ku.end(), "keyCertSign"), ku.end());
    EXPECT_NE(std::find(ku.begin(), ku.end(), "cRLSign"), ku.end());
    EXPECT_FALSE(intermediate_.has_extended_key_usage());
    EXPECT_EQ(intermediate_.key_algorithm(), "ecdsa-p384");
    EXPECT_TRUE(intermediate_.matches_key(intermediate_key_));
}

TEST_F(CertificateTest, ClientProfileWithEcKey) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    Certificate cert = issue(spec_for(CertificateProfile::Client, "dev-1", now_), key);
    EXPECT_EQ(cert.subject(), "CN=dev-1");
    EXPECT_EQ(cert.common_name(), "dev-1");
    EXPECT_EQ(cert.issuer(), intermediate_.subject());
    EXPECT_TRUE(cert.has_extended_key_usage());
    EXPECT_EQ(cert.extended_key_usage(), std::vector<std::string>{"clientAuth"});
    EXPECT_EQ(cert.key_usage(), std::vector<std::string>{"digitalSignature"});

    BasicConstraints bc = cert.basic_constraints();
    EXPECT_TRUE(bc.present);
    EXPECT_TRUE(bc.critical);
    EXPECT_FALSE(bc.ca);
    EXPECT_FALSE(cert.is_ca());

    EXPECT_TRUE(cert.signed_by(intermediate_));
    EXPECT_FALSE(cert.signed_by(root_));
    EXPECT_FALSE(cert.is_self_signed());
    EXPECT_TRUE(cert.matches_key(key));
    EXPECT_FALSE(cert.matches_key(intermediate_key_));
    EXPECT_EQ(cert.key_algorithm(), "ecdsa-p256");
}

TEST_F(CertificateTest, ServerProfileWithRsaKey) {
    PrivateKey key = PrivateKey::generate(KeyType::Rsa2048);
    CertificateSpec spec = spec_for(CertificateProfile::Server, "broker.local", now_);
    spec.subject_alt_names = {{Type::Dns, "broker.local"}};
    Certificate cert = issue(spec, key);
    EXPECT_EQ(cert.extended_key_usage(), std::vector<std::string>{"serverAuth"});
    EXPECT_EQ(cert.key_usage(), (std::vector<std::string>{"digitalSignature", "keyEncipherment"}));
    EXPECT_FALSE(cert.is_ca());
    EXPECT_TRUE(cert.basic_constraints().critical);
    EXPECT_EQ(cert.key_algorithm(), "rsa2048");
    EXPECT_TRUE(cert.matches_key(key));
    EXPECT_TRUE(cert.signed_by(intermediate_));
}

TEST_F(CertificateTest, ServerProfileWithEcKeyHasNoKeyEncipherment) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP384);
    Certificate cert = issue(spec_for(CertificateProfile::Server, "broker.local", now_), key);
    EXPECT_EQ(cert.extended_key_usage(), std::vector<std::string>{"serverAuth"});
    EXPECT_EQ(cert.key_usage(), std::vector<std::string>{"digitalSignature"});
    EXPECT_EQ(cert.key_algorithm(), "ecdsa-p384");
}

TEST_F(CertificateTest, ClientProfileWithRsaKeyHasKeyEncipherment) {
    PrivateKey key = PrivateKey::generate(KeyType::Rsa2048);
    Certificate cert = issue(spec_for(CertificateProfile::Client, "dev-rsa", now_), key);
    EXPECT_EQ(cert.extended_key_usage(), std::vector<std::string>{"clientAuth"});
    EXPECT_EQ(cert.key_usage(), (std::vector<std::string>{"digitalSignature", "keyEncipherment"}));
}

TEST(CertificateEd25519Test, Ed25519CaAndLeaf) {
    TimePoint now = whole_seconds_now();
    PrivateKey ca_key = PrivateKey::generate(KeyType::Ed25519);
    Certificate ca = sign_certificate(spec_for(CertificateProfile::RootCa, "Ed Root", now),
                                      ca_key.get(), ca_key, nullptr);
    PrivateKey leaf_key = PrivateKey::generate(KeyType::Ed25519);
    Certificate leaf = sign_certificate(spec_for(CertificateProfile::Client, "ed-dev", now),
                                        leaf_key.get(), ca_key, &ca);
    EXPECT_EQ(ca.key_algorithm(), "ed25519");
    EXPECT_EQ(leaf.key_algorithm(), "ed25519");
    EXPECT_TRUE(ca.is_self_signed());
    EXPECT_TRUE(leaf.signed_by(ca));
    EXPECT_TRUE(leaf.matches_key(leaf_key));
    EXPECT_EQ(leaf.key_usage(), std::vector<std::string>{"digitalSignature"});
}

TEST(CertificateRsaCaTest, RsaRootSignsEcLeaf) {
    TimePoint now = whole_seconds_now();
    PrivateKey ca_key = PrivateKey::generate(KeyType::Rsa2048);
    Certificate ca = sign_certificate(spec_for(CertificateProfile::RootCa, "RSA Root", now),
                                      ca_key.get(), ca_key, nullptr);
    std::vector<std::string> ku = ca.key_usage();
    EXPECT_NE(std::find(ku.begin(), ku.end(), "keyCertSign"), ku.end());
    EXPECT_NE(std::find(ku.begin(), ku.end(), "cRLSign"), ku.end());
    PrivateKey leaf_key = PrivateKey::generate(KeyType::EcP256);
    Certificate leaf = sign_certificate(spec_for(CertificateProfile::Server, "srv", now),
                                        leaf_key.get(), ca_key, &ca);
    EXPECT_TRUE(leaf.signed_by(ca));
    EXPECT_EQ(leaf.key_usage(), std::vector<std::string>{"digitalSignature"});
}

TEST_F(CertificateTest, GivenSerialIsUsed) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    CertificateSpec spec = spec_for(CertificateProfile::Client, "dev", now_);
    spec.serial_hex = "1234ABCDEF";
    EXPECT_EQ(issue(spec, key).serial_hex(), "1234ABCDEF");
}

TEST_F(CertificateTest, RandomSerialWhenNoneGiven) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    CertificateSpec spec = spec_for(CertificateProfile::Client, "dev", now_);
    std::string a = issue(spec, key).serial_hex();
    std::string b = issue(spec, key).serial_hex();
    EXPECT_EQ(a.size(), 32u) << a;
    EXPECT_TRUE(is_upper_hex(a)) << a;
    EXPECT_NE(a, b);
}

TEST_F(CertificateTest, MalformedSerialIsRejected) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    for (std::string bad : {"XYZ", "12zz", "-1A", "0"}) {
        CertificateSpec spec = spec_for(CertificateProfile::Client, "dev", now_);
        spec.serial_hex = bad;
        std::string msg = error_of([&] { issue(spec, key); }, ErrorKind::Input);
        EXPECT_TRUE(starts_with(msg, bad + ": ")) << msg;
    }
}

TEST(CertificateSerialTest, RandomSerialsArePositiveDistinct128BitNumbers) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        std::string serial = random_serial();
        ASSERT_EQ(serial.size(), 32u) << serial;
        ASSERT_TRUE(is_upper_hex(serial)) << serial;
        // Positive as a DER INTEGER: the top bit of the first octet is clear, and the first
        // octet is not zero (so the number really has 16 octets).
        ASSERT_LE(serial[0], '7') << serial;
        ASSERT_NE(serial.substr(0, 2), "00") << serial;
        seen.insert(serial);
    }
    EXPECT_EQ(seen.size(), 1000u);
}

TEST_F(CertificateTest, SubjectAltNamesOfEveryTypeRoundTrip) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    CertificateSpec spec = spec_for(CertificateProfile::Server, "broker", now_);
    spec.subject_alt_names = {
        {Type::Dns, "broker.local"},      {Type::Dns, "*.broker.example"},
        {Type::Ip, "10.0.0.5"},           {Type::Ip, "::1"},
        {Type::Ip, "2001:db8::42"},       {Type::Uri, "spiffe://x/y"},
        {Type::Email, "ops@example.com"},
    };
    Certificate cert = issue(spec, key);
    EXPECT_EQ(cert.subject_alt_names(), spec.subject_alt_names);
    Certificate reparsed = Certificate::parse(cert.to_der(), "der");
    EXPECT_EQ(reparsed.subject_alt_names(), spec.subject_alt_names);
}

TEST_F(CertificateTest, SubjectAltNameCriticalOnlyWithEmptySubject) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    auto san_critical = [](const Certificate& cert) {
        int idx = X509_get_ext_by_NID(cert.get(), NID_subject_alt_name, -1);
        EXPECT_GE(idx, 0);
        return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert.get(), idx)) == 1;
    };
    CertificateSpec spec = spec_for(CertificateProfile::Server, "broker", now_);
    spec.subject_alt_names = {{Type::Dns, "broker.local"}};
    EXPECT_FALSE(san_critical(issue(spec, key)));
    spec.common_name.clear();
    Certificate anonymous = issue(spec, key);
    EXPECT_EQ(anonymous.subject(), "");
    EXPECT_EQ(anonymous.common_name(), "");
    EXPECT_TRUE(san_critical(anonymous));
}

TEST_F(CertificateTest, NoSubjectAltNames) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    Certificate cert = issue(spec_for(CertificateProfile::Client, "dev", now_), key);
    EXPECT_TRUE(cert.subject_alt_names().empty());
}

TEST_F(CertificateTest, ValidityToTheSecond) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    CertificateSpec spec = spec_for(CertificateProfile::Client, "dev", now_);
    spec.not_before = now_ - seconds(3661);
    spec.not_after = now_ + Days(397) + seconds(17);
    Certificate cert = issue(spec, key);
    EXPECT_EQ(cert.not_before(), spec.not_before);
    EXPECT_EQ(cert.not_after(), spec.not_after);
    EXPECT_TRUE(cert.valid_at(now_));
    EXPECT_TRUE(cert.valid_at(spec.not_before));
    EXPECT_TRUE(cert.valid_at(spec.not_after));
    EXPECT_FALSE(cert.valid_at(spec.not_before - seconds(1)));
    EXPECT_FALSE(cert.valid_at(spec.not_after + seconds(1)));
}

TEST_F(CertificateTest, ValidityBeyond2049UsesGeneralizedTime) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    CertificateSpec spec = spec_for(CertificateProfile::Client, "dev", now_);
    spec.not_after = from_iso8601("2061-03-04T05:06:07Z");
    Certificate cert = issue(spec, key);
    EXPECT_EQ(to_iso8601(cert.not_after()), "2061-03-04T05:06:07Z");
}

TEST_F(CertificateTest, FingerprintIsSha256OfDer) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    Certificate cert = issue(spec_for(CertificateProfile::Client, "dev", now_), key);
    std::string fp = cert.fingerprint_sha256();
    ASSERT_EQ(fp.size(), 64u);
    EXPECT_TRUE(is_lower_hex(fp)) << fp;

    std::string der = cert.to_der();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ASSERT_EQ(EVP_Digest(der.data(), der.size(), md, &len, EVP_sha256(), nullptr), 1);
    ASSERT_EQ(len, 32u);
    char hex[65] = {};
    for (unsigned i = 0; i < len; ++i) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    EXPECT_EQ(fp, std::string(hex));
    EXPECT_NE(fp, root_.fingerprint_sha256());
}

TEST_F(CertificateTest, PemAndDerRoundTrip) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    CertificateSpec spec = spec_for(CertificateProfile::Server, "broker", now_);
    spec.subject_alt_names = {{Type::Dns, "broker.local"}};
    Certificate cert = issue(spec, key);

    std::string pem = cert.to_pem();
    EXPECT_TRUE(starts_with(pem, "-----BEGIN CERTIFICATE-----\n"));
    Certificate from_pem = Certificate::parse(pem, "cert.pem");
    EXPECT_EQ(from_pem.to_der(), cert.to_der());
    EXPECT_EQ(from_pem.fingerprint_sha256(), cert.fingerprint_sha256());

    std::string der = cert.to_der();
    EXPECT_EQ(static_cast<unsigned char>(der[0]), 0x30);
    Certificate from_der = Certificate::parse(der, "cert.der");
    EXPECT_EQ(from_der.to_pem(), pem);
    EXPECT_EQ(from_der.serial_hex(), cert.serial_hex());
    EXPECT_EQ(from_der.subject(), cert.subject());
}

TEST_F(CertificateTest, ParseTakesFirstCertificateAndSkipsOtherBlocks) {
    std::string data = intermediate_key_.to_pem() + intermediate_.to_pem() + root_.to_pem();
    EXPECT_EQ(Certificate::parse(data, "mixed.pem").fingerprint_sha256(),
              intermediate_.fingerprint_sha256());
}

TEST_F(CertificateTest, CopiesShareTheCertificate) {
    Certificate copy = intermediate_;
    EXPECT_EQ(copy.get(), intermediate_.get());
    Certificate assigned = root_;
    assigned = copy;
    EXPECT_EQ(assigned.get(), intermediate_.get());
    const Certificate& alias = assigned;
    assigned = alias;  // self-assignment keeps it alive
    EXPECT_EQ(assigned.fingerprint_sha256(), intermediate_.fingerprint_sha256());
}

TEST_F(CertificateTest, ParseChainOfTwo) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    Certificate leaf = issue(spec_for(CertificateProfile::Client, "dev", now_), key);
    std::string bundle = chain_to_pem({leaf, intermediate_});
    EXPECT_EQ(bundle, leaf.to_pem() + intermediate_.to_pem());
    std::vector<Certificate> chain = Certificate::parse_chain(bundle, "bundle.pem");
    ASSERT_EQ(chain.size(), 2u);
    EXPECT_EQ(chain[0].fingerprint_sha256(), leaf.fingerprint_sha256());
    EXPECT_EQ(chain[1].fingerprint_sha256(), intermediate_.fingerprint_sha256());
    EXPECT_TRUE(chain[0].signed_by(chain[1]));
}

TEST_F(CertificateTest, ParseChainOfOneDer) {
    std::vector<Certificate> chain = Certificate::parse_chain(root_.to_der(), "root.der");
    ASSERT_EQ(chain.size(), 1u);
    EXPECT_EQ(chain[0].fingerprint_sha256(), root_.fingerprint_sha256());
}

TEST_F(CertificateTest, LoadChainFromFile) {
    test::TempDir dir;
    auto path = dir / "chain.pem";
    write_file_atomic(path, chain_to_pem({intermediate_, root_}));
    std::vector<Certificate> chain = Certificate::load_chain(path);
    ASSERT_EQ(chain.size(), 2u);
    EXPECT_EQ(chain[1].subject(), root_.subject());
    EXPECT_EQ(Certificate::load(path).subject(), intermediate_.subject());
}

TEST_F(CertificateTest, TruncatedChainThrows) {
    std::string first = intermediate_.to_pem();
    std::string second = root_.to_pem();
    // Cut the second certificate in the middle of its base64.
    std::string bundle = first + second.substr(0, second.size() / 2);
    std::string msg =
        error_of([&] { Certificate::parse_chain(bundle, "bundle.pem"); }, ErrorKind::Input);
    EXPECT_TRUE(starts_with(msg, "bundle.pem: ")) << msg;
    EXPECT_NE(msg.find("certificate 2"), std::string::npos) << msg;

    // Cut just before the END line of the second certificate.
    bundle = first + second.substr(0, second.find("-----END"));
    msg = error_of([&] { Certificate::parse_chain(bundle, "bundle.pem"); }, ErrorKind::Input);
    EXPECT_TRUE(starts_with(msg, "bundle.pem: ")) << msg;
}

TEST_F(CertificateTest, ChainWithDamagedBase64Throws) {
    std::string first = intermediate_.to_pem();
    std::string second = root_.to_pem();
    // Drop one line from the middle of the second block: the base64 still decodes, the DER
    // inside does not.
    size_t line = second.find('\n', second.size() / 2);
    size_t next = second.find('\n', line + 1);
    second.erase(line, next - line);
    std::string msg =
        error_of([&] { Certificate::parse_chain(first + second, "bundle.pem"); }, ErrorKind::Input);
    EXPECT_TRUE(starts_with(msg, "bundle.pem: ")) << msg;
}

TEST_F(CertificateTest, ChainWithoutCertificates) {
    std::string msg = error_of([&] { Certificate::parse_chain(root_key_.to_pem(), "key.pem"); },
                               ErrorKind::Input);
    EXPECT_EQ(msg, "key.pem: no PEM certificate found");
}

TEST(CertificateParseTest, GarbageThrowsNamingTheSource) {
    EXPECT_EQ(error_of([] { Certificate::parse("hello world", "input.crt"); }, ErrorKind::Input),
              "input.crt: not a PEM or DER certificate");
    EXPECT_EQ(error_of(
                  [] {
                      Certificate::parse(
                          "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                          "bad.pem");
                  },
                  ErrorKind::Input),
              "bad.pem: not a PEM certificate");
    EXPECT_EQ(error_of([] { Certificate::parse("", "empty.pem"); }, ErrorKind::Input),
              "empty.pem: not a PEM or DER certificate");
    std::string msg =
        error_of([] { Certificate::parse_chain("\x30\x01", "chain.der"); }, ErrorKind::Input);
    EXPECT_TRUE(starts_with(msg, "chain.der: ")) << msg;
}

TEST(CertificateParseTest, LoadMissingFileNamesIt) {
    test::TempDir dir;
    auto path = dir / "missing.pem";
    std::string msg = error_of([&] { Certificate::load(path); }, ErrorKind::Input);
    EXPECT_TRUE(starts_with(msg, path.string() + ": ")) << msg;
}

TEST_F(CertificateTest, OverlongCommonNameIsAUsageError) {
    PrivateKey key = PrivateKey::generate(KeyType::EcP256);
    std::string cn(65, 'x');
    std::string msg = error_of([&] { issue(spec_for(CertificateProfile::Client, cn, now_), key); },
                               ErrorKind::Usage);
    EXPECT_TRUE(starts_with(msg, cn + ": ")) << msg;
    // 64 characters is the limit, and fine.
    EXPECT_EQ(
        issue(spec_for(CertificateProfile::Client, std::string(64, 'y'), now_), key).common_name(),
        std::string(64, 'y'));
}

TEST(CertificateFingerprintTest, Normalize) {
    const std::string lower = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    std::string colons;
    for (size_t i = 0; i < lower.size(); i += 2) {
        if (i) colons += ':';
        colons += static_cast<char>(std::toupper(static_cast<unsigned char>(lower[i])));
        colons += static_cast<char>(std::toupper(static_cast<unsigned char>(lower[i + 1])));
    }
    EXPECT_EQ(colons.substr(0, 8), "01:23:45");
    EXPECT_EQ(normalize_fingerprint(lower), lower);
    EXPECT_EQ(normalize_fingerprint(colons), lower);
    EXPECT_EQ(normalize_fingerprint("sha256:" + lower), lower);
    EXPECT_EQ(normalize_fingerprint("SHA256:" + colons), lower);
}

TEST(CertificateFingerprintTest, NormalizeRejects) {
    const std::string lower = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    EXPECT_EQ(normalize_fingerprint(lower.substr(1)), std::nullopt);  // 63 digits
    EXPECT_EQ(normalize_fingerprint(lower + "00"), std::nullopt);     // 66 digits
    EXPECT_EQ(normalize_fingerprint(""), std::nullopt);
    EXPECT_EQ(normalize_fingerprint("sha1:" + lower), std::nullopt);
    std::string bad = lower;
    bad[10] = 'g';
    EXPECT_EQ(normalize_fingerprint(bad), std::nullopt);
    EXPECT_EQ(normalize_fingerprint(" " + lower), std::nullopt);
}

TEST_F(CertificateTest, FingerprintNormalizesToItself) {
    std::string fp = root_.fingerprint_sha256();
    EXPECT_EQ(normalize_fingerprint(fp), fp);
}

// The request's key bytes are copied as they are: for every key type, the certificate parsed
// back holds the requester's key, with the SubjectPublicKeyInfo X509_set_pubkey would give it,
// and verifies under its issuer.
TEST_F(CertificateTest, SigningForARequestCopiesItsKey) {
    auto spki = [](EVP_PKEY* key) {
        unsigned char* der = nullptr;
        int length = i2d_PUBKEY(key, &der);
        std::string out(reinterpret_cast<char*>(der), std::max(length, 0));
        OPENSSL_free(der);
        return out;
    };
    for (KeyType type : {KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048, KeyType::Ed25519}) {
        SCOPED_TRACE(std::string(key_type_name(type)));
        PrivateKey key = PrivateKey::generate(type);
        CertificateRequest csr = CertificateRequest::create(key, "device", {});
        CertificateSpec spec = spec_for(CertificateProfile::Client, "device", now_);
        Certificate signed_for_request =
            sign_certificate(spec, csr, intermediate_key_, intermediate_);
        Certificate parsed = Certificate::parse(signed_for_request.to_pem(), "signed");
        EXPECT_TRUE(parsed.matches_key(key));
        EXPECT_EQ(parsed.key_algorithm(), std::string(key_type_name(type)));
        EXPECT_TRUE(parsed.signed_by(intermediate_));
        Certificate signed_for_key = issue(spec, key);
        EXPECT_EQ(spki(X509_get0_pubkey(parsed.get())),
                  spki(X509_get0_pubkey(signed_for_key.get())));
        EXPECT_FALSE(spki(key.get()).empty());
        EXPECT_EQ(spki(X509_get0_pubkey(parsed.get())), spki(key.get()));
    }
}

}  // namespace
}  // namespace brokertls
