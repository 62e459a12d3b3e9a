// Subject alternative names: telling their kind from how they are written, validation, globs and
// the OpenSSL GENERAL_NAMES conversions.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "brokertls/crypto/names.hpp"
#include "brokertls/error.hpp"

namespace brokertls {
namespace {

using Type = SubjectAltName::Type;

template <class Fn>
std::string usage_error_of(Fn&& fn) {
    try {
        fn();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Usage) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no brokertls::Error thrown";
    return "";
}

TEST(NamesClassifyTest, DnsNames) {
    EXPECT_EQ(classify_name("broker.local"), (SubjectAltName{Type::Dns, "broker.local"}));
    EXPECT_EQ(classify_name("*.example.com"), (SubjectAltName{Type::Dns, "*.example.com"}));
    EXPECT_EQ(classify_name("localhost"), (SubjectAltName{Type::Dns, "localhost"}));
    EXPECT_EQ(classify_name("mqtt-1.site_a.example"),
              (SubjectAltName{Type::Dns, "mqtt-1.site_a.example"}));
}

TEST(NamesClassifyTest, DnsNamesAreLowercased) {
    EXPECT_EQ(classify_name("Broker.LOCAL"), (SubjectAltName{Type::Dns, "broker.local"}));
}

TEST(NamesClassifyTest, Ipv4) {
    EXPECT_EQ(classify_name("10.0.0.5"), (SubjectAltName{Type::Ip, "10.0.0.5"}));
    EXPECT_EQ(classify_name("127.0.0.1"), (SubjectAltName{Type::Ip, "127.0.0.1"}));
}

TEST(NamesClassifyTest, Ipv6CanonicalForm) {
    EXPECT_EQ(classify_name("::1"), (SubjectAltName{Type::Ip, "::1"}));
    EXPECT_EQ(classify_name("::0001"), (SubjectAltName{Type::Ip, "::1"}));
    EXPECT_EQ(classify_name("0:0:0:0:0:0:0:1"), (SubjectAltName{Type::Ip, "::1"}));
    EXPECT_EQ(classify_name("2001:DB8:0:0::10"), (SubjectAltName{Type::Ip, "2001:db8::10"}));
}

TEST(NamesClassifyTest, Uri) {
    EXPECT_EQ(classify_name("spiffe://x/y"), (SubjectAltName{Type::Uri, "spiffe://x/y"}));
    EXPECT_EQ(classify_name("https://broker.example/a"),
              (SubjectAltName{Type::Uri, "https://broker.example/a"}));
}

TEST(NamesClassifyTest, Email) {
    EXPECT_EQ(classify_name("ops@example.com"), (SubjectAltName{Type::Email, "ops@example.com"}));
}

TEST(NamesClassifyTest, InvalidNamesThrowUsageNamingTheInput) {
    for (std::string bad : {"", "bad name", "-leading.example", "a..b", "x@", "@example.com",
                            "a@b@c", "fe80::1%eth0", "under score!", "://nothing"}) {
        std::string msg = usage_error_of([&] { classify_name(bad); });
        EXPECT_EQ(msg.rfind(bad + ": ", 0), 0u) << "input '" << bad << "': " << msg;
    }
}

TEST(NamesClassifyTest, InvalidNameMessage) {
    EXPECT_EQ(usage_error_of([] { classify_name("bad name"); }),
              "bad name: not a DNS name, IP address, URI or email address");
    EXPECT_EQ(usage_error_of([] { classify_name("x@"); }), "x@: not a valid email name");
}

TEST(NamesMakeSanTest, AcceptsMatchingTypes) {
    EXPECT_EQ(make_san(Type::Dns, "Broker.Local"), (SubjectAltName{Type::Dns, "broker.local"}));
    EXPECT_EQ(make_san(Type::Ip, "::0001"), (SubjectAltName{Type::Ip, "::1"}));
    EXPECT_EQ(make_san(Type::Ip, "192.168.1.1"), (SubjectAltName{Type::Ip, "192.168.1.1"}));
    EXPECT_EQ(make_san(Type::Uri, "spiffe://x/y"), (SubjectAltName{Type::Uri, "spiffe://x/y"}));
    EXPECT_EQ(make_san(Type::Email, "a@b.example"), (SubjectAltName{Type::Email, "a@b.example"}));
}

TEST(NamesMakeSanTest, RejectsMismatchedTypes) {
    EXPECT_EQ(usage_error_of([] { make_san(Type::Ip, "broker.local"); }),
              "broker.local: not a valid IP name");
    EXPECT_EQ(usage_error_of([] { make_san(Type::Dns, "10.0.0.1:8883"); }),
              "10.0.0.1:8883: not a valid DNS name");
    EXPECT_EQ(usage_error_of([] { make_san(Type::Uri, "broker.local"); }),
              "broker.local: not a valid URI name");
    EXPECT_EQ(usage_error_of([] { make_san(Type::Email, "broker.local"); }),
              "broker.local: not a valid email name");
    EXPECT_EQ(usage_error_of([] { make_san(Type::Ip, "256.1.1.1"); }),
              "256.1.1.1: not a valid IP name");
    std::string msg = usage_error_of([] { make_san(Type::Other, "anything"); });
    EXPECT_EQ(msg.rfind("anything: ", 0), 0u) << msg;
}

TEST(NamesMakeSanTest, ToString) {
    EXPECT_EQ((SubjectAltName{Type::Dns, "broker.local"}).to_string(), "DNS:broker.local");
    EXPECT_EQ((SubjectAltName{Type::Ip, "10.0.0.5"}).to_string(), "IP:10.0.0.5");
    EXPECT_EQ((SubjectAltName{Type::Uri, "spiffe://x"}).to_string(), "URI:spiffe://x");
    EXPECT_EQ((SubjectAltName{Type::Email, "a@b"}).to_string(), "email:a@b");
}

TEST(NamesDnsTest, LabelLength) {
    std::string label63(63, 'a');
    std::string label64(64, 'a');
    EXPECT_TRUE(is_valid_dns_name(label63 + ".example"));
    EXPECT_FALSE(is_valid_dns_name(label64 + ".example"));
    EXPECT_TRUE(is_valid_dns_name("example." + label63));
    EXPECT_FALSE(is_valid_dns_name("example." + label64));
}

TEST(NamesDnsTest, TotalLength) {
    // 4 labels of 63 plus 3 dots: 255 characters, over the 253 limit.
    std::string label(63, 'a');
    std::string name = label + "." + label + "." + label + "." + label;
    EXPECT_FALSE(is_valid_dns_name(name));
    // 3 labels of 63 and one of 61: 253 characters exactly.
    EXPECT_TRUE(is_valid_dns_name(label + "." + label + "." + label + "." + std::string(61, 'b')));
}

TEST(NamesDnsTest, Hyphens) {
    EXPECT_FALSE(is_valid_dns_name("-broker.local"));
    EXPECT_FALSE(is_valid_dns_name("broker-.local"));
    EXPECT_FALSE(is_valid_dns_name("broker.-local"));
    EXPECT_TRUE(is_valid_dns_name("bro-ker.local"));
}

TEST(NamesDnsTest, EmptyLabels) {
    EXPECT_FALSE(is_valid_dns_name(""));
    EXPECT_FALSE(is_valid_dns_name("."));
    EXPECT_FALSE(is_valid_dns_name(".broker.local"));
    EXPECT_FALSE(is_valid_dns_name("broker..local"));
    EXPECT_TRUE(is_valid_dns_name("broker.local."));  // one trailing root dot is fine
    EXPECT_FALSE(is_valid_dns_name("broker.local.."));
}

TEST(NamesDnsTest, Characters) {
    EXPECT_FALSE(is_valid_dns_name("bro ker.local"));
    EXPECT_FALSE(is_valid_dns_name("broker.local:1883"));
    EXPECT_FALSE(is_valid_dns_name("brö.local"));
    EXPECT_FALSE(is_valid_dns_name("a/b"));
}

TEST(NamesDnsTest, Wildcards) {
    EXPECT_TRUE(is_valid_dns_name("*.example.com"));
    EXPECT_FALSE(is_valid_dns_name("*.example.com", /*allow_wildcard=*/false));
    EXPECT_FALSE(is_valid_dns_name("*"));
    EXPECT_FALSE(is_valid_dns_name("*."));
    EXPECT_FALSE(is_valid_dns_name("a.*.example.com"));
    EXPECT_FALSE(is_valid_dns_name("*.*.example.com"));
    EXPECT_FALSE(is_valid_dns_name("b*.example.com"));
}

TEST(NamesGlobTest, Star) {
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_TRUE(glob_match("*", "anything"));
    EXPECT_TRUE(glob_match("*.example.com", "broker.example.com"));
    EXPECT_TRUE(glob_match("*.example.com", "a.b.example.com"));
    EXPECT_FALSE(glob_match("*.example.com", "example.com"));
    EXPECT_TRUE(glob_match("dev-*", "dev-"));
    EXPECT_TRUE(glob_match("dev-*-01", "dev-eu-west-01"));
    EXPECT_TRUE(glob_match("a**b", "ab"));
}

TEST(NamesGlobTest, QuestionMark) {
    EXPECT_TRUE(glob_match("dev-?", "dev-1"));
    EXPECT_FALSE(glob_match("dev-?", "dev-"));
    EXPECT_FALSE(glob_match("dev-?", "dev-12"));
    EXPECT_TRUE(glob_match("??", "ab"));
    EXPECT_FALSE(glob_match("?", ""));
}

TEST(NamesGlobTest, CaseInsensitive) {
    EXPECT_TRUE(glob_match("*.Example.COM", "broker.example.com"));
    EXPECT_TRUE(glob_match("broker.example.com", "BROKER.EXAMPLE.COM"));
}

TEST(NamesGlobTest, NoMatch) {
    EXPECT_FALSE(glob_match("broker", "broker2"));
    EXPECT_FALSE(glob_match("broker2", "broker"));
    EXPECT_FALSE(glob_match("*.example.com", "broker.example.org"));
    EXPECT_FALSE(glob_match("", "x"));
    EXPECT_TRUE(glob_match("", ""));
}

TEST(NamesGlobTest, PathologicalPatternFinishesQuickly) {
    // A naive recursive matcher takes exponential time here.
    std::string text(20000, 'a');
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(glob_match("a*a*a*a*a*a*a*a*b", text));
    EXPECT_TRUE(glob_match("a*a*a*a*a*a*a*a*", text));
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST(NamesGeneralNamesTest, RoundTripEveryType) {
    std::vector<SubjectAltName> sans = {
        {Type::Dns, "broker.local"}, {Type::Dns, "*.example.com"}, {Type::Ip, "10.0.0.5"},
        {Type::Ip, "2001:db8::1"},   {Type::Uri, "spiffe://x/y"},  {Type::Email, "ops@example.com"},
    };
    GeneralNamesPtr names = to_general_names(sans);
    ASSERT_NE(names, nullptr);
    EXPECT_EQ(sk_GENERAL_NAME_num(names.get()), 6);
    EXPECT_EQ(from_general_names(names.get()), sans);
}

TEST(NamesGeneralNamesTest, OtherTypeCannotBeEncoded) {
    EXPECT_THROW(to_general_names({{Type::Other, "x"}}), Error);
}

TEST(NamesGeneralNamesTest, NullIsEmpty) {
    EXPECT_TRUE(from_general_names(nullptr).empty());
}

TEST(NamesX509NameTest, StringAndCommonName) {
    X509NamePtr name(X509_NAME_new());
    ASSERT_EQ(
        X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("Example"), -1, -1, 0),
        1);
    ASSERT_EQ(
        X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("dev-1"), -1, -1, 0),
        1);
    EXPECT_EQ(name_to_string(name.get()), "CN=dev-1,O=Example");
    EXPECT_EQ(common_name_of(name.get()), "dev-1");
    X509NamePtr empty(X509_NAME_new());
    EXPECT_EQ(common_name_of(empty.get()), "");
}

}  // namespace
}  // namespace brokertls
