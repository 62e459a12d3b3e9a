// brokertls-service's authentication pieces: ACMEMS's header, the /v1 request HMAC with its
// replay window, and address ranges.

#include <gtest/gtest.h>

#include "brokertls/crypto/digest.hpp"
#include "service/auth.hpp"
#include "service/request_limiter.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;

TEST(AcmemsHeader, BothSpellingsOfItsReadmeParse) {
    for (const char* h :
         {"hmac name=sha256, hash=47D5066525a214c7", "hmac name=sha256 hash=47d5066525a214c7",
          "HMAC  name=SHA256,hash=47d5066525a214c7"}) {
        auto parsed = parse_acmems_authentication(h);
        ASSERT_TRUE(parsed) << h;
        EXPECT_EQ(parsed->digest, "SHA256");
        EXPECT_EQ(parsed->hash, "47d5066525a214c7");
    }
}

TEST(AcmemsHeader, OpenSsl3DigestNamesAreTheSameDigests) {
    // `openssl dgst -sha256 -hmac KEY FILE` prints "HMAC-SHA2-256(FILE)= ..." since OpenSSL 3.
    auto parsed = parse_acmems_authentication("hmac name=sha2-256, hash=ab");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->digest, "SHA256");
    EXPECT_EQ(parse_acmems_authentication("hmac name=sha2-512, hash=ab")->digest, "SHA512");
}

TEST(AcmemsHeader, AnythingElseIsRefused) {
    for (const char* h :
         {"", "hmac", "hmac ", "basic name=sha256, hash=ab", "hmac name=md5, hash=ab",
          "hmac name=sha1, hash=ab", "hmac name=sha256", "hmac name=sha256, hash=xyz",
          "hmac name=sha256, hash=ab, extra=1", "hmac name=sha256, name=sha512, hash=ab",
          "hmac name=\"sha256\", hash=ab", "hmacname=sha256, hash=ab", "hmac =sha256"})
        EXPECT_FALSE(parse_acmems_authentication(h)) << h;
    EXPECT_FALSE(parse_acmems_authentication("hmac name=sha256, hash=" + std::string(2000, 'a')));
}

TEST(AcmemsHeader, TheOpensslDgstValueIsTheHmacOfTheBody) {
    // `printf 'body' | openssl dgst -sha256 -hmac KEY` prints this value.
    EXPECT_EQ(hmac_hex("SHA256", "key", "The quick brown fox jumps over the lazy dog"),
              "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
}

TEST(RequestHmac, SignedRequestsVerifyAndAnyChangeBreaksThem) {
    TimePoint now = from_iso8601("2030-01-01T00:00:00Z");
    std::string header = sign_request_hmac("fleet", "0123456789abcdef0123", "POST",
                                           "/v1/certificates", "{\"csr\":1}", now);
    auto auth = parse_request_hmac(header);
    ASSERT_TRUE(auth) << header;
    EXPECT_EQ(auth->key_id, "fleet");
    EXPECT_EQ(auth->timestamp, 1893456000);
    EXPECT_TRUE(request_hmac_valid(*auth, "0123456789abcdef0123", "POST", "/v1/certificates",
                                   "{\"csr\":1}"));
    EXPECT_FALSE(request_hmac_valid(*auth, "0123456789abcdef0124", "POST", "/v1/certificates",
                                    "{\"csr\":1}"));
    EXPECT_FALSE(request_hmac_valid(*auth, "0123456789abcdef0123", "PUT", "/v1/certificates",
                                    "{\"csr\":1}"));
    EXPECT_FALSE(
        request_hmac_valid(*auth, "0123456789abcdef0123", "POST", "/v1/devices", "{\"csr\":1}"));
    EXPECT_FALSE(request_hmac_valid(*auth, "0123456789abcdef0123", "POST", "/v1/certificates",
                                    "{\"csr\":2}"));
    auto later = *auth;
    later.timestamp += 1;
    EXPECT_FALSE(request_hmac_valid(later, "0123456789abcdef0123", "POST", "/v1/certificates",
                                    "{\"csr\":1}"));
}

TEST(RequestHmac, MalformedHeadersAreRefused) {
    std::string sig(64, 'a');
    for (const std::string& h : std::vector<std::string>{
             std::string("BTLS-HMAC-SHA256"),
             "BTLS-HMAC-SHA256 keyid=a, ts=1, nonce=0123456789abcdef",
             "BTLS-HMAC-SHA256 keyid=a, ts=-1, nonce=0123456789abcdef, sig=" + sig,
             "BTLS-HMAC-SHA256 keyid=a, ts=1x, nonce=0123456789abcdef, sig=" + sig,
             "BTLS-HMAC-SHA256 keyid=a, ts=1, nonce=0123, sig=" + sig,
             "BTLS-HMAC-SHA256 keyid=a, ts=1, nonce=0123456789abcdef, sig=abc", "Bearer x",
             "BTLS-HMAC-SHA256 keyid=a, ts=1, nonce=0123456789abcdef, sig=" + sig + ", x=1"})
        EXPECT_FALSE(parse_request_hmac(h)) << h;
    EXPECT_TRUE(
        parse_request_hmac("BTLS-HMAC-SHA256 keyid=a, ts=1, nonce=0123456789abcdef, sig=" + sig));
}

TEST(ReplayGuard, EachNonceOnceAndOnlyInsideTheWindow) {
    ReplayGuard guard(300s);
    TimePoint now = from_iso8601("2030-01-01T00:00:00Z");
    auto auth =
        *parse_request_hmac(sign_request_hmac("k", "0123456789abcdef", "GET", "/", "", now));
    EXPECT_FALSE(guard.admit(auth, now));
    auto again = guard.admit(auth, now + 1s);
    ASSERT_TRUE(again);
    EXPECT_NE(again->find("sent before"), std::string::npos) << *again;
    // The same nonce under another key id is another request.
    auto other = auth;
    other.key_id = "j";
    EXPECT_FALSE(guard.admit(other, now));
    auto old =
        *parse_request_hmac(sign_request_hmac("k", "0123456789abcdef", "GET", "/", "", now - 301s));
    ASSERT_TRUE(guard.admit(old, now));
    auto future =
        *parse_request_hmac(sign_request_hmac("k", "0123456789abcdef", "GET", "/", "", now + 301s));
    ASSERT_TRUE(guard.admit(future, now));
}

TEST(ReplayGuard, AFullGuardRefusesWhatItCanNoLongerRemember) {
    ReplayGuard guard(300s, 2);
    TimePoint now = from_iso8601("2030-01-01T00:00:00Z");
    auto sign = [&](TimePoint t) {
        return *parse_request_hmac(sign_request_hmac("k", "0123456789abcdef", "GET", "/", "", t));
    };
    auto first = sign(now - 10s);
    EXPECT_FALSE(guard.admit(first, now));
    EXPECT_FALSE(guard.admit(sign(now - 5s), now));
    EXPECT_FALSE(guard.admit(sign(now), now));  // forgets `first`...
    EXPECT_TRUE(guard.admit(first, now));       // ...so a request that old is refused
    EXPECT_TRUE(guard.admit(sign(now - 10s), now));
    EXPECT_FALSE(guard.admit(sign(now - 9s), now));
}

TEST(AddressRange, NetworksAndSingleAddresses) {
    auto v4 = AddressRange::parse("192.0.2.0/24");
    ASSERT_TRUE(v4);
    EXPECT_TRUE(v4->contains("192.0.2.7"));
    EXPECT_FALSE(v4->contains("192.0.3.7"));
    EXPECT_FALSE(v4->contains("::1"));
    auto odd = AddressRange::parse("198.51.100.128/28");
    EXPECT_TRUE(odd->contains("198.51.100.143"));
    EXPECT_FALSE(odd->contains("198.51.100.144"));
    auto one = AddressRange::parse("198.51.100.21");
    EXPECT_TRUE(one->contains("198.51.100.21"));
    EXPECT_FALSE(one->contains("198.51.100.22"));
    auto v6 = AddressRange::parse("2001:db8::/32");
    EXPECT_TRUE(v6->contains("2001:db8:1::5"));
    EXPECT_FALSE(v6->contains("2001:db9::5"));
    EXPECT_TRUE(AddressRange::parse("0.0.0.0/0")->contains("203.0.113.9"));
    for (const char* bad : {"", "192.0.2.0/33", "192.0.2.0/", "192.0.2.0/x", "host.example",
                            "192.0.2.0/24/1", "::1/129"})
        EXPECT_FALSE(AddressRange::parse(bad)) << bad;
}

TEST(RequestLimiter, ABurstUpToTheRateThenOneRequestPerRefill) {
    RequestLimiter limiter(60);  // one a second
    TimePoint now = from_iso8601("2030-01-01T00:00:00Z");
    for (int i = 0; i < 60; ++i) ASSERT_FALSE(limiter.admit("192.0.2.1", now)) << i;
    auto wait = limiter.admit("192.0.2.1", now);
    ASSERT_TRUE(wait);
    EXPECT_EQ(*wait, std::chrono::seconds(1));
    EXPECT_FALSE(limiter.admit("192.0.2.2", now));  // another address has its own bucket
    EXPECT_FALSE(limiter.admit("192.0.2.1", now + 1s));
    EXPECT_TRUE(limiter.admit("192.0.2.1", now + 1s));
    EXPECT_FALSE(RequestLimiter(0).admit("x", now));  // 0: no limit
}

TEST(RequestLimiter, ItsTableStaysBounded) {
    RequestLimiter limiter(1, 2);
    TimePoint now = from_iso8601("2030-01-01T00:00:00Z");
    EXPECT_FALSE(limiter.admit("a", now));
    EXPECT_FALSE(limiter.admit("b", now));
    EXPECT_TRUE(limiter.admit("c", now));         // full of keys still counting: the newcomer waits
    EXPECT_FALSE(limiter.admit("c", now + 60s));  // a and b refilled and were forgotten
}

}  // namespace
}  // namespace brokertls
