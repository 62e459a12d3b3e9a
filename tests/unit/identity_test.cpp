#include "brokertls/identity.hpp"

#include <gtest/gtest.h>
#include <mosquitto.h>

using namespace brokertls;
using namespace std::string_literals;

TEST(Identity, AcceptsOrdinaryNamesAndUtf8) {
    EXPECT_FALSE(identity_problem("dev-1"));
    EXPECT_FALSE(identity_problem("dev.1@example.com"));
    EXPECT_FALSE(identity_problem("gerät-ü-東京"));
    EXPECT_FALSE(identity_problem("CN=dev-1,O=Example"));
}

TEST(Identity, RefusesNulControlAndTopicCharacters) {
    EXPECT_EQ(*identity_problem("admin\0.mqtt.example"s), "contains a NUL byte at offset 5");
    EXPECT_TRUE(identity_problem("dev\n1"));
    EXPECT_TRUE(identity_problem("dev\x7f"));
    EXPECT_TRUE(identity_problem("dev\xc2\x85"));  // U+0085, a C1 control
    EXPECT_TRUE(identity_problem("dev-1/x"));
    EXPECT_TRUE(identity_problem("dev+"));
    EXPECT_TRUE(identity_problem("dev#"));
    EXPECT_TRUE(identity_problem(""));
    EXPECT_TRUE(identity_problem(std::string(65536, 'a')));
    EXPECT_FALSE(identity_problem("spiffe://example/dev-1", IdentityRules{.allow_slash = true}));
}

TEST(Identity, RefusesInvalidUtf8) {
    EXPECT_TRUE(identity_problem("\xff"));
    EXPECT_TRUE(identity_problem("\xc0\xaf"));          // overlong '/'
    EXPECT_TRUE(identity_problem("\xed\xa0\x80"));      // surrogate U+D800
    EXPECT_TRUE(identity_problem("\xf4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_TRUE(identity_problem("\xe4\xb8"));          // truncated
    EXPECT_TRUE(identity_problem("\xef\xbf\xbf"));      // U+FFFF noncharacter
}

TEST(Identity, PrintableEscapesWhatATerminalWouldRun) {
    EXPECT_EQ(printable("dev-1"), "dev-1");
    EXPECT_EQ(printable("a\nb"), "a\\x0ab");
    EXPECT_EQ(printable("\x1b[31mred"), "\\x1b[31mred");
    EXPECT_EQ(printable("admin\0x"s), "admin\\x00x");
    EXPECT_EQ(printable("back\\slash"), "back\\\\slash");
    EXPECT_EQ(printable("gerät"), "gerät");
    EXPECT_EQ(printable("\xff"), "\\xff");
}

// Mosquitto 2.0.16+ refuses in mosquitto_set_username() what mosquitto_validate_utf8() refuses
// (2.1.2's libcommon/utf8_common.c has the same rules as Debian's 2.0.11 library linked here).
// An identity brokertls accepts must never be one the broker then refuses, or the client would
// go on under the username it sent (the adapter refuses the connection then, but that is the
// last line). Every code point, and every byte sequence of one and two bytes, is checked.
TEST(Identity, EveryAcceptedIdentityIsAUsernameMosquittoAccepts) {
    auto check = [](const std::string& s) {
        if (!identity_problem(s)) {
            ASSERT_EQ(mosquitto_validate_utf8(s.data(), static_cast<int>(s.size())), 0)
                << printable(s);
        }
    };
    auto utf8 = [](char32_t cp) {
        std::string s;
        if (cp < 0x80) {
            s += char(cp);
        } else if (cp < 0x800) {
            s += char(0xc0 | (cp >> 6));
            s += char(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            s += char(0xe0 | (cp >> 12));
            s += char(0x80 | ((cp >> 6) & 0x3f));
            s += char(0x80 | (cp & 0x3f));
        } else {
            s += char(0xf0 | (cp >> 18));
            s += char(0x80 | ((cp >> 12) & 0x3f));
            s += char(0x80 | ((cp >> 6) & 0x3f));
            s += char(0x80 | (cp & 0x3f));
        }
        return s;
    };
    int accepted = 0;
    for (char32_t cp = 0; cp <= 0x10ffff; ++cp) {
        std::string s = "dev-" + utf8(cp) + "-1";
        check(s);
        if (HasFatalFailure()) return;
        accepted += !identity_problem(s);
    }
    for (int a = 0; a < 256; ++a) {
        check(std::string(1, char(a)));
        for (int b = 0; b < 256; ++b) check(std::string{char(a), char(b)});
        if (HasFatalFailure()) return;
    }
    // The check is not vacuous: most code points are accepted (not controls, surrogates,
    // noncharacters, '/', '+', '#').
    EXPECT_GT(accepted, 1'000'000);
}
