#include <gtest/gtest.h>

#include "acme/problem.hpp"
#include "acme_fake_ca.hpp"

namespace brokertls {
namespace {

using test::json;

// Far from the wall clock, so a Retry-After resolved against the system clock shows.
const TimePoint kNow = from_iso8601("2030-06-01T12:00:00Z");

TEST(AcmeProblem, ParsesTypeDetailStatusSubproblemsAndRetryAfter) {
    json body{{"type", "urn:ietf:params:acme:error:rejectedIdentifier"},
              {"detail", "Some of the identifiers requested were rejected"},
              {"subproblems",
               {{{"type", "urn:ietf:params:acme:error:malformed"},
                 {"detail", "Invalid underscore in DNS name \"_example.org\""},
                 {"identifier", {{"type", "dns"}, {"value", "_example.org"}}}},
                {{"type", "urn:ietf:params:acme:error:rejectedIdentifier"},
                 {"detail", "This CA will not issue for \"example.net\""},
                 {"identifier", {{"type", "dns"}, {"value", "example.net"}}}}}}};
    auto p = parse_problem(test::answer(403, body, "n", {{"retry-after", "120"}}), kNow);
    EXPECT_EQ(p.type, "urn:ietf:params:acme:error:rejectedIdentifier");
    EXPECT_EQ(p.short_type(), "rejectedIdentifier");
    EXPECT_EQ(p.status, 403);
    ASSERT_EQ(p.subproblems.size(), 2u);
    EXPECT_EQ(p.subproblems[0].identifier, "_example.org");
    EXPECT_EQ(p.subproblems[0].type, "urn:ietf:params:acme:error:malformed");
    EXPECT_EQ(p.subproblems[1].detail, "This CA will not issue for \"example.net\"");
    ASSERT_TRUE(p.retry_after);
    EXPECT_EQ(*p.retry_after, kNow + std::chrono::seconds(120));

    EXPECT_EQ(p.to_string(),
              "rejectedIdentifier: Some of the identifiers requested were rejected (HTTP 403); "
              "_example.org: malformed: Invalid underscore in DNS name \"_example.org\"; "
              "example.net: rejectedIdentifier: This CA will not issue for \"example.net\"; "
              "retry after 2030-06-01T12:02:00Z");
}

TEST(AcmeProblem, NonJsonBodyGivesStatusAndShortExcerpt) {
    HttpResponse html;
    html.status = 502;
    html.body = "<html><body>\n<h1>502 Bad Gateway</h1>\n" + std::string(500, 'x') + "</html>";
    auto p = parse_problem(html, kNow);
    EXPECT_EQ(p.type, "");
    EXPECT_EQ(p.status, 502);
    AcmeError error("acme newOrder https://ca.test/order", p);
    std::string message = error.what();
    EXPECT_EQ(message.rfind("acme newOrder https://ca.test/order: error: unexpected answer: "
                            "<html><body> <h1>502 Bad Gateway</h1>",
                            0),
              0u)
        << message;
    EXPECT_NE(message.find("... (HTTP 502)"), std::string::npos) << message;
    EXPECT_LT(message.size(), 250u);
    EXPECT_EQ(error.kind(), ErrorKind::Io);

    HttpResponse empty;
    empty.status = 500;
    EXPECT_EQ(parse_problem(empty, kNow).to_string(), "error: empty answer (HTTP 500)");
}

TEST(AcmeProblem, ErrorCarriesTheProblemAndNamesTheContext) {
    auto p = parse_problem(test::problem(429, "rateLimited", "too many certificates", ""), kNow);
    AcmeError error("acme newOrder https://ca.test/order", p);
    EXPECT_EQ(std::string(error.what()),
              "acme newOrder https://ca.test/order: rateLimited: too many certificates (HTTP 429)");
    EXPECT_EQ(error.problem().short_type(), "rateLimited");
    EXPECT_EQ(error.kind(), ErrorKind::State);
}

TEST(AcmeRetryAfter, SecondsAndHttpDates) {
    TimePoint now = SystemClock::from_time_t(1'700'000'000);
    EXPECT_EQ(parse_retry_after("30", now), now + std::chrono::seconds(30));
    EXPECT_EQ(parse_retry_after(" 0 ", now), now);
    // 1700000100 = Tue, 14 Nov 2023 22:15:00 GMT
    EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:15:00 GMT", now),
              SystemClock::from_time_t(1'700'000'100));
    EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 00:00:00 GMT", now), now);  // past: now
    EXPECT_FALSE(parse_retry_after("soon", now));
    EXPECT_FALSE(parse_retry_after("", now));
    EXPECT_FALSE(parse_retry_after("-5", now));
}

TEST(AcmeHttpResponse, HeadersAndLinks) {
    HttpResponse r;
    r.headers = {{"link", "<https://ca.test/cert/1/1>;rel=\"alternate\""},
                 {"Link",
                  "<https://ca.test/dir>;rel=\"index\", <https://ca.test/cert/1/2>; "
                  "rel=\"alternate\""},
                 {"link", "<https://ca.test/x>;title=\"a,b\";rel=\"up alternate\""},
                 {"content-type", "application/pem-certificate-chain"}};
    EXPECT_EQ(r.header("Content-Type"), "application/pem-certificate-chain");
    EXPECT_FALSE(r.header("location"));
    EXPECT_EQ(r.header_values("link").size(), 3u);
    EXPECT_EQ(r.links("alternate"),
              (std::vector<std::string>{"https://ca.test/cert/1/1", "https://ca.test/cert/1/2",
                                        "https://ca.test/x"}));
    EXPECT_EQ(r.links("index"), std::vector<std::string>{"https://ca.test/dir"});
    EXPECT_TRUE(r.links("up").size() == 1u);
}

}  // namespace
}  // namespace brokertls
