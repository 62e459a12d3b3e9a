// TSIG key files for the rfc2136 dns-01 solver, as BIND's tsig-keygen writes them.

#include <gtest/gtest.h>

#include <fstream>

#include "challenges/dns_tsig_key.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

const std::filesystem::path kFile = "/etc/brokertls/acme.key";

// `tsig-keygen -a hmac-sha256 acme-key` and `tsig-keygen -a hmac-sha512 acme-key` output.
const char* kSha256 = R"(key "acme-key" {
	algorithm hmac-sha256;
	secret "mCK0WmNjKhVmhrGiZoVhRLHMX1D5WXCDr5v/EpkzDCA=";
};
)";
const char* kSha512 = R"(key "acme-key" {
	algorithm hmac-sha512;
	secret "RqQfEVtsg8fiW+wUODc86hqa6LrWcmIaFi4kuijJlnTI0PTFctmSwIIXRjyQsfpOuKAxWmP3JQ+8UD6Vz6k2pw==";
};
)";

std::string key_error(const std::string& text) {
    return test::error_of([&] { parse_tsig_key(text, kFile); }, ErrorKind::Input);
}

TEST(DnsTsigKey, ReadsTsigKeygenSha256) {
    TsigKey key = parse_tsig_key(kSha256, kFile);
    EXPECT_EQ(key.name, "acme-key.");
    EXPECT_EQ(key.algorithm, "hmac-sha256");
    EXPECT_EQ(key.secret, "mCK0WmNjKhVmhrGiZoVhRLHMX1D5WXCDr5v/EpkzDCA=");
}

TEST(DnsTsigKey, ReadsTsigKeygenSha512) {
    TsigKey key = parse_tsig_key(kSha512, kFile);
    EXPECT_EQ(key.name, "acme-key.");
    EXPECT_EQ(key.algorithm, "hmac-sha512");
    EXPECT_EQ(key.secret.size(), 88u);
}

TEST(DnsTsigKey, AcceptsCommentsUnquotedNamesAndCase) {
    TsigKey key = parse_tsig_key(R"(# made for brokertls
// second comment style
/* a block
   comment */ KEY Acme.Key. { Algorithm HMAC-SHA256; /* inline */ secret
"mCK0WmNjKhVmhrGiZoVhRLHMX1D5WXCDr5v/EpkzDCA="; }; # trailing
)",
                                 kFile);
    EXPECT_EQ(key.name, "acme.key.");
    EXPECT_EQ(key.algorithm, "hmac-sha256");
}

TEST(DnsTsigKey, LoadsFromFile) {
    test::TempDir dir;
    std::ofstream(dir / "k.key") << kSha256;
    EXPECT_EQ(load_tsig_key(dir / "k.key").algorithm, "hmac-sha256");
    std::string missing =
        test::error_of([&] { load_tsig_key(dir / "none.key"); }, ErrorKind::Input);
    EXPECT_NE(missing.find((dir / "none.key").string()), std::string::npos) << missing;
    EXPECT_NE(missing.find("cannot read"), std::string::npos) << missing;
}

TEST(DnsTsigKey, RefusesWeakAlgorithmsNamingFileAndAlgorithm) {
    for (std::string alg : {"hmac-md5", "hmac-md5.sig-alg.reg.int", "hmac-sha1", "hmac-sha224"}) {
        std::string text =
            "key \"k\" { algorithm " + alg + "; secret \"bwvOVlmAh90/Li9iP4aiiA==\"; };";
        std::string message = key_error(text);
        EXPECT_EQ(message.rfind(kFile.string() + ": ", 0), 0u) << message;
        EXPECT_NE(message.find(alg), std::string::npos) << message;
        EXPECT_NE(message.find("too weak"), std::string::npos) << message;
        EXPECT_EQ(message.find("bwvOVlmAh90"), std::string::npos) << message;
    }
}

TEST(DnsTsigKey, Sha384IsUsableOrClearlyUnsupported) {
    // ldns 1.8.3 lists hmac-sha384 but cannot compute it (a typo in its digest table).
    std::string text = R"(key "k" { algorithm hmac-sha384;
        secret "39X19/0b7+eNzTkMCFHuMLBgrfyZh+5TvQlNBtllKGJGcjRH0nEwTGkbeFi6yFgp"; };)";
    try {
        EXPECT_EQ(parse_tsig_key(text, kFile).algorithm, "hmac-sha384");
    } catch (const Error& e) {
        std::string message = e.what();
        EXPECT_NE(message.find("hmac-sha384"), std::string::npos) << message;
        EXPECT_NE(message.find("not supported"), std::string::npos) << message;
    }
}

TEST(DnsTsigKey, RefusesUnknownAlgorithm) {
    std::string message =
        key_error(R"(key "k" { algorithm gss-tsig; secret "bwvOVlmAh90/Li9iP4aiiA=="; };)");
    EXPECT_NE(message.find("unknown TSIG algorithm 'gss-tsig'"), std::string::npos) << message;
}

TEST(DnsTsigKey, MissingPartsAreNamed) {
    EXPECT_NE(key_error(R"(key "k" { algorithm hmac-sha256; };)").find("key \"k\": no secret"),
              std::string::npos);
    EXPECT_NE(key_error(R"(key "k" { secret "bwvOVlmAh90/Li9iP4aiiA=="; };)")
                  .find("key \"k\": no algorithm"),
              std::string::npos);
    EXPECT_NE(key_error("").find("no key statement"), std::string::npos);
    EXPECT_NE(key_error("# only a comment\n").find("no key statement"), std::string::npos);
}

TEST(DnsTsigKey, SecretMustBeBase64AndIsNeverQuoted) {
    std::string message = key_error(R"(key "k" { algorithm hmac-sha256; secret "not*base64!"; };)");
    EXPECT_NE(message.find("not base64"), std::string::npos) << message;
    EXPECT_EQ(message.find("not*base64"), std::string::npos) << message;
    // A syntax error right after the secret does not echo what follows it either.
    message = key_error(
        "key \"k\" { algorithm hmac-sha256;\n secret mCK0WmNjKhVmhrGi ZoVhRLHMX1D5WXCDr5v; };");
    EXPECT_NE(message.find("line 2: expected ';' after the secret"), std::string::npos) << message;
    EXPECT_EQ(message.find("mCK0Wm"), std::string::npos) << message;
    EXPECT_EQ(message.find("ZoVhRL"), std::string::npos) << message;
}

TEST(DnsTsigKey, GarbageIsRefusedWithALine) {
    std::string message = key_error("\n\nthis is not a key file\n");
    EXPECT_NE(message.find("line 3: expected a key statement, found 'this'"), std::string::npos)
        << message;
    message = key_error(R"(key "k" { algorithm hmac-sha256; secret "abc=")");
    EXPECT_NE(message.find("expected ';' after the secret, found the end"), std::string::npos)
        << message;
    message = key_error("key \"k\" { /* never closed");
    EXPECT_NE(message.find("unterminated comment"), std::string::npos) << message;
    message = key_error(R"(key "k" { algorithm hmac-sha256; port 53; };)");
    EXPECT_NE(message.find("unknown option 'port'"), std::string::npos) << message;
}

TEST(DnsTsigKey, ExactlyOneKey) {
    std::string message = key_error(std::string(kSha256) + kSha512);
    EXPECT_NE(message.find("2 keys; exactly one key is expected"), std::string::npos) << message;
}

}  // namespace
}  // namespace brokertls
