// Where the rfc2136 dns-01 solver puts a name's TXT record, and how DNS servers are named.

#include <gtest/gtest.h>

#include "challenges/dns_client.hpp"
#include "challenges/dns_record_name.hpp"
#include "expect_error.hpp"

namespace brokertls {
namespace {

TEST(DnsRecordName, AcmeChallengeLabelByDefault) {
    ChallengeConfig config;
    auto r = challenge_record_name(config, "Broker.Example.com");
    EXPECT_EQ(r.name, "_acme-challenge.broker.example.com.");
    EXPECT_FALSE(r.explicit_name);
    // A wildcard is validated at its base name.
    EXPECT_EQ(challenge_record_name(config, "*.example.com").name, "_acme-challenge.example.com.");
}

TEST(DnsRecordName, ChallengeDomainsNameTheRecord) {
    ChallengeConfig config;
    config.challenge_domains["broker.example.com."] = "Broker.ACME.example.net";
    config.challenge_domains["*.fleet.example.com"] = "fleet.acme.example.net.";
    auto r = challenge_record_name(config, "BROKER.example.com");
    EXPECT_EQ(r.name, "broker.acme.example.net.");
    EXPECT_TRUE(r.explicit_name);
    EXPECT_EQ(challenge_record_name(config, "fleet.example.com").name, "fleet.acme.example.net.");
    EXPECT_EQ(challenge_record_name(config, "*.fleet.example.com").name, "fleet.acme.example.net.");
    auto other = challenge_record_name(config, "other.example.com");
    EXPECT_EQ(other.name, "_acme-challenge.other.example.com.");
    EXPECT_FALSE(other.explicit_name);
}

TEST(DnsEndpointParse, HostsPortsAndIpv6) {
    auto e = parse_dns_endpoint("127.0.0.1:5300", "dns_server");
    EXPECT_EQ(e.host, "127.0.0.1");
    EXPECT_EQ(e.port, 5300);
    EXPECT_EQ(e.text(), "127.0.0.1:5300");
    e = parse_dns_endpoint("ns1.example.com", "dns_server");
    EXPECT_EQ(e.host, "ns1.example.com");
    EXPECT_EQ(e.port, 53);
    e = parse_dns_endpoint("[::1]:5353", "dns_server");
    EXPECT_EQ(e.host, "::1");
    EXPECT_EQ(e.port, 5353);
    EXPECT_EQ(e.text(), "[::1]:5353");
    e = parse_dns_endpoint("2001:db8::53", "dns_server");
    EXPECT_EQ(e.host, "2001:db8::53");
    EXPECT_EQ(e.port, 53);
    EXPECT_EQ(parse_dns_endpoint("[::1]", "dns_server").port, 53);
}

TEST(DnsEndpointParse, RefusesMalformed) {
    for (std::string bad : {"", "host:", "host:0", "host:70000", "host:port", "[::1", "[::1]x",
                            "[nothost]:53", ":53", "a:b:c"}) {
        std::string message = test::error_of(
            [&] { parse_dns_endpoint(bad, "rfc2136: dns_server"); }, ErrorKind::Input);
        EXPECT_EQ(message.rfind("rfc2136: dns_server: '" + bad + "': ", 0), 0u) << message;
    }
}

}  // namespace
}  // namespace brokertls
