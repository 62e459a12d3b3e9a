#include "brokertls/trust/identity.hpp"

#include <gtest/gtest.h>

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
