#include "gateway/mqtt_connect.hpp"

#include <gtest/gtest.h>

using namespace brokertls::mqtt;
using namespace std::string_literals;

namespace {

constexpr std::size_t kMax = 16 * 1024;

std::string u16(std::size_t n) {
    return {static_cast<char>(n >> 8), static_cast<char>(n & 0xff)};
}
std::string str(const std::string& s) {
    return u16(s.size()) + s;
}
// A CONNECT from its variable header and payload, with a one-byte remaining length.
std::string packet(const std::string& body) {
    return "\x10"s + static_cast<char>(body.size()) + body;
}
// MQTT 3.1.1, clean session, keep alive 60, client id "dev-1", username "someone", password "pw".
std::string v311(unsigned char flags = 0xc2,
                 const std::string& payload = str("dev-1") + str("someone") + str("pw")) {
    return packet(str("MQTT") + "\x04"s + static_cast<char>(flags) + u16(60) + payload);
}
// MQTT 5.0 with the given properties (length < 128).
std::string v5(const std::string& properties, unsigned char flags = 0x02,
               const std::string& payload = str("dev-1")) {
    return packet(str("MQTT") + "\x05"s + static_cast<char>(flags) + u16(30) +
                  static_cast<char>(properties.size()) + properties + payload);
}
RewriteRules rules(std::optional<std::string> username, bool pass_password = false,
                   std::optional<std::string> required_client_id = std::nullopt,
                   std::size_t max_size = kMax) {
    RewriteRules r;
    r.username = std::move(username);
    r.pass_password = pass_password;
    r.required_client_id = std::move(required_client_id);
    r.max_size = max_size;
    return r;
}
std::string problem(const std::string& bytes) {
    auto parsed = parse_connect(bytes, kMax);
    return parsed.problem.value_or("(accepted)");
}

}  // namespace

TEST(MqttConnect, Parses311) {
    auto parsed = parse_connect(v311(), kMax);
    ASSERT_FALSE(parsed.problem) << *parsed.problem;
    const auto& c = parsed.connect;
    EXPECT_EQ(c.version, 4);
    EXPECT_TRUE(c.clean_start);
    EXPECT_EQ(c.keep_alive, 60);
    EXPECT_EQ(c.client_id, "dev-1");
    EXPECT_EQ(c.username, "someone");
    EXPECT_EQ(c.password, "pw");
    EXPECT_FALSE(c.will);
    EXPECT_EQ(encode_connect(c), v311());
}

TEST(MqttConnect, Parses5WithPropertiesAndWill) {
    std::string props = "\x11\x00\x00\x0e\x10"s + "\x21\x00\x0a"s + "\x26"s + str("k") + str("v") +
                        "\x26"s + str("k") + str("w");
    std::string will_props = "\x18\x00\x00\x00\x05"s + "\x01\x01"s + "\x08"s + str("reply/x");
    std::string payload = str("dev-1") + static_cast<char>(will_props.size()) + will_props +
                          str("last/will") + str("bye\0"s) + str("u");
    // will, will QoS 1, will retain, username
    std::string bytes = v5(props, 0x02 | 0x04 | 0x08 | 0x20 | 0x80, payload);
    auto parsed = parse_connect(bytes, kMax);
    ASSERT_FALSE(parsed.problem) << *parsed.problem;
    const auto& c = parsed.connect;
    EXPECT_EQ(c.version, 5);
    EXPECT_EQ(c.properties, props);
    EXPECT_TRUE(c.will);
    EXPECT_EQ(c.will_qos, 1);
    EXPECT_TRUE(c.will_retain);
    EXPECT_EQ(c.will_properties, will_props);
    EXPECT_EQ(c.will_topic, "last/will");
    EXPECT_EQ(c.will_payload, "bye\0"s);
    EXPECT_EQ(c.username, "u");
    EXPECT_FALSE(c.password);
    EXPECT_EQ(encode_connect(c), bytes);
}

TEST(MqttConnect, FixedHeaderAndRemainingLength) {
    EXPECT_EQ(problem("\x20\x02\x00\x00"s), "the first packet is not a CONNECT");
    EXPECT_EQ(problem("\x12" + v311().substr(1)), "the first packet is not a CONNECT");  // flags
    EXPECT_EQ(problem("\x10\x80\x80\x80\x80\x01"s), "remaining length: longer than 4 bytes");
    EXPECT_EQ(problem("\x10\x80\x00"s), "remaining length: not in its shortest form");
    EXPECT_EQ(problem(v311().substr(0, 10)), "the packet is incomplete");
    EXPECT_EQ(problem(v311() + "x"), "bytes after the CONNECT packet");

    EXPECT_EQ(connect_packet_size("", kMax).size, 0u);
    EXPECT_EQ(connect_packet_size("\x10", kMax).size, 0u);
    EXPECT_EQ(connect_packet_size("\x10\xff\xff", kMax).size, 0u);  // more length bytes to come
    EXPECT_FALSE(connect_packet_size("\x10\xff\xff", kMax).problem);
    EXPECT_EQ(connect_packet_size("\x10\x05", kMax).size, 7u);
    EXPECT_EQ(connect_packet_size("\x10\x80\x01", kMax).size, 131u);
    // The cap holds from the fixed header on: nothing more is read.
    auto big = connect_packet_size("\x10\xff\xff\xff\x7f"s, kMax);
    EXPECT_EQ(big.problem, "the CONNECT is 268435460 bytes, more than the 16384 allowed");
    EXPECT_EQ(problem(v311()).substr(0, 10), "(accepted)");
    EXPECT_TRUE(parse_connect(v311(), v311().size() - 1).problem);
}

TEST(MqttConnect, ProtocolNameAndLevel) {
    EXPECT_EQ(problem(packet(str("MQTX") + "\x04\x02"s + u16(0) + str("a"))),
              "protocol name is not \"MQTT\"");
    EXPECT_EQ(problem(packet(str("MQIsdp") + "\x03\x02"s + u16(0) + str("a"))),
              "MQTT 3.1 (MQIsdp) is not supported; use 3.1.1 or 5.0");
    EXPECT_EQ(problem(packet(str("MQTT") + "\x06\x02"s + u16(0) + str("a"))),
              "protocol level 6 is not 4 (3.1.1) or 5 (5.0)");
    EXPECT_EQ(problem(packet("\x00\x10MQTT"s)), "protocol name: the packet ends inside it");
}

TEST(MqttConnect, ConnectFlags) {
    EXPECT_EQ(problem(v311(0x03, str("a"))), "the reserved connect flag is set");
    EXPECT_EQ(problem(v311(0x0a, str("a"))), "will QoS or will retain set without the will flag");
    EXPECT_EQ(problem(v311(0x22, str("a"))), "will QoS or will retain set without the will flag");
    EXPECT_EQ(problem(v311(0x1e, str("a") + str("t") + str("p"))), "will QoS 3");
    EXPECT_EQ(problem(v311(0x42, str("a") + str("pw"))),
              "a password without a username (MQTT 3.1.1 3.1.2.9)");
    // 5.0 allows a password alone.
    EXPECT_EQ(problem(v5("", 0x42, str("a") + str("pw"))), "(accepted)");
    // Flags promising fields that are not there, or fields nobody announced.
    EXPECT_EQ(problem(v311(0xc2, str("a") + str("u"))), "password: the packet ends inside it");
    EXPECT_EQ(problem(v311(0x02, str("a") + str("u"))), "bytes after the CONNECT payload");
    EXPECT_EQ(problem(v311(0x06, str("a") + str("t"))), "will payload: the packet ends inside it");
}

TEST(MqttConnect, Strings) {
    EXPECT_EQ(problem(v311(0x82, str("a") + str("bad\xff"))), "username: not valid MQTT UTF-8");
    EXPECT_EQ(problem(v311(0x02, str("a\0b"s))), "client id: not valid MQTT UTF-8");
    EXPECT_EQ(problem(v311(0x02, str("a\x01"))), "client id: not valid MQTT UTF-8");
    EXPECT_EQ(problem(v311(0x02, str("\xc0\xaf"))), "client id: not valid MQTT UTF-8");
    EXPECT_EQ(problem(v311(0x02, str("\xed\xa0\x80"))), "client id: not valid MQTT UTF-8");
    EXPECT_EQ(problem(v311(0x06, str("a") + str("t/#") + str("p"))),
              "will topic: not a topic name");
    EXPECT_EQ(problem(v311(0x06, str("a") + str("") + str("p"))), "will topic: not a topic name");
    EXPECT_EQ(problem(v311(0x02, u16(10) + "abc")), "client id: the packet ends inside it");
    // An empty client id is MQTT's "assign me one"; binary passwords are any bytes.
    EXPECT_EQ(problem(v311(0x02, str(""))), "(accepted)");
    EXPECT_EQ(problem(v311(0xc2, str("a") + str("u") + str("\0\xff"s))), "(accepted)");
    EXPECT_EQ(problem(v311(0x02, str("gerät-東京"))), "(accepted)");
}

TEST(MqttConnect, Utf8Rules) {
    EXPECT_TRUE(valid_mqtt_utf8("dev-1"));
    EXPECT_TRUE(valid_mqtt_utf8("\xf0\x9f\x98\x80"));  // U+1F600
    EXPECT_FALSE(valid_mqtt_utf8("\x7f"));
    EXPECT_FALSE(valid_mqtt_utf8("\xc2\x85"));          // U+0085
    EXPECT_FALSE(valid_mqtt_utf8("\xef\xbf\xbe"));      // U+FFFE
    EXPECT_FALSE(valid_mqtt_utf8("\xe0\x80\xaf"));      // overlong
    EXPECT_FALSE(valid_mqtt_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(valid_mqtt_utf8("\xe4\xb8"));          // truncated
    EXPECT_FALSE(valid_mqtt_utf8("\x80"));
}

TEST(MqttConnect, Properties5) {
    EXPECT_EQ(problem(v5("\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02"s)),
              "properties: session expiry interval given twice");
    EXPECT_EQ(problem(v5("\x21\x00\x00"s)), "receive maximum: must not be 0");
    EXPECT_EQ(problem(v5("\x27\x00\x00\x00\x00"s)), "maximum packet size: must not be 0");
    EXPECT_EQ(problem(v5("\x17\x02"s)), "request problem information: must be 0 or 1");
    EXPECT_EQ(problem(v5("\x01\x01"s)), "properties: property 1 is not allowed");  // a will one
    EXPECT_EQ(problem(v5("\x16"s + str("data"))),
              "properties: authentication data without an authentication method");
    EXPECT_EQ(problem(v5("\x15"s + str("SCRAM") + "\x16"s + str("data"))), "(accepted)");
    EXPECT_EQ(problem(v5("\x11\x00\x00"s)), "session expiry interval: the packet ends inside it");
    EXPECT_EQ(problem(v5("\x26"s + str("k") + str("\x01"))), "user property: not valid MQTT UTF-8");
    // A property length beyond the packet.
    std::string bytes = packet(str("MQTT") + "\x05\x02"s + u16(0) + "\x40"s + str("a"));
    EXPECT_EQ(problem(bytes), "properties: the packet ends inside it");
    // Will properties: checked the same way, with their own list.
    std::string will = "\x11\x00\x00\x00\x01"s;  // session expiry: not a will property
    EXPECT_EQ(problem(v5("", 0x06,
                         str("a") + static_cast<char>(will.size()) + will + str("t") + str("p"))),
              "will properties: property 17 is not allowed");
    std::string response = "\x08"s + str("reply/+");
    EXPECT_EQ(
        problem(v5("", 0x06,
                   str("a") + static_cast<char>(response.size()) + response + str("t") + str("p"))),
        "response topic: not a topic name");
}

TEST(MqttConnect, RewriteReplacesTheUsernameAndDropsThePassword) {
    auto out = rewrite_connect(v311(), rules("dev-7"));
    ASSERT_FALSE(out.problem) << *out.problem;
    auto c = parse_connect(out.packet, kMax).connect;
    EXPECT_EQ(c.username, "dev-7");
    EXPECT_FALSE(c.password);
    EXPECT_EQ(c.client_id, "dev-1");
    EXPECT_EQ(c.keep_alive, 60);

    out = rewrite_connect(v311(), rules("dev-7", true));
    c = parse_connect(out.packet, kMax).connect;
    EXPECT_EQ(c.username, "dev-7");
    EXPECT_EQ(c.password, "pw");

    // No identity: the client's username is dropped, and in 3.1.1 its password with it.
    out = rewrite_connect(v311(), rules(std::nullopt, true));
    c = parse_connect(out.packet, kMax).connect;
    EXPECT_FALSE(c.username);
    EXPECT_FALSE(c.password);

    // A client that sent no username gets one all the same (flags and lengths follow).
    out = rewrite_connect(v5("\x21\x00\x0a"s, 0x02, str("dev-1")), rules("a-much-longer-identity"));
    ASSERT_FALSE(out.problem) << *out.problem;
    c = parse_connect(out.packet, kMax).connect;
    EXPECT_EQ(c.username, "a-much-longer-identity");
    EXPECT_EQ(c.properties, "\x21\x00\x0a"s);
}

TEST(MqttConnect, RewriteChecksTheClientIdAndRefusesBadPackets) {
    auto out = rewrite_connect(v311(), rules("dev-1", false, "dev-1"));
    EXPECT_FALSE(out.problem);
    out = rewrite_connect(v311(), rules("dev-2", false, "dev-2"));
    EXPECT_EQ(out.problem, "the client id is not the identity 'dev-2'");
    EXPECT_TRUE(out.packet.empty());
    // The broker must not settle on another identity through an AUTH exchange.
    out = rewrite_connect(v5("\x15"s + str("SCRAM-SHA-1"), 0x82, str("dev-1") + str("u")),
                          rules("dev-1"));
    EXPECT_EQ(out.problem, "enhanced authentication (an authentication method) is not allowed");
    EXPECT_TRUE(
        parse_connect(v5("\x15"s + str("SCRAM-SHA-1")), kMax).connect.enhanced_authentication);
    out = rewrite_connect(v311(0x03, str("a")), rules("dev-1"));
    EXPECT_EQ(out.problem, "the reserved connect flag is set");
    out = rewrite_connect(v311(), rules("dev-1", false, std::nullopt, 20));
    EXPECT_EQ(out.problem, "the CONNECT is 32 bytes, more than the 20 allowed");
}

TEST(MqttConnect, LongPacketsUseMultiByteLengths) {
    Connect c;
    c.client_id = "dev-1";
    c.username = "u";
    c.password = std::string(300, 'p');
    std::string bytes = encode_connect(c);
    EXPECT_EQ(bytes.substr(0, 3), "\x10\xc2\x02"s);  // 322 = 0x42 + 2 * 128
    auto parsed = parse_connect(bytes, kMax);
    ASSERT_FALSE(parsed.problem) << *parsed.problem;
    EXPECT_EQ(parsed.connect.password, c.password);
    EXPECT_EQ(connect_packet_size(bytes.substr(0, 3), kMax).size, bytes.size());
}
