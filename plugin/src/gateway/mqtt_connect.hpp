#pragma once
// The first packet a client sends brokertls-gateway: an MQTT CONNECT (3.1.1 or 5.0), parsed
// strictly because it is untrusted input, and encoded again with the username the gateway
// decides. Nothing is read past the sizes the packet declares, and every declared size is
// checked against what is there; a CONNECT larger than the cap is refused from its fixed header.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "brokertls/error.hpp"

namespace brokertls::mqtt {

struct Connect {
    int version = 4;  // protocol level: 4 = MQTT 3.1.1, 5 = MQTT 5.0
    bool clean_start = true;
    std::uint16_t keep_alive = 0;
    std::string properties;  // 5.0: the CONNECT properties as sent (checked), without length
    bool enhanced_authentication = false;  // 5.0: the properties name an authentication method
    std::string client_id;
    bool will = false;
    int will_qos = 0;
    bool will_retain = false;
    std::string will_properties;  // 5.0, as sent (checked), without length
    std::string will_topic;
    std::string will_payload;
    std::optional<std::string> username;
    std::optional<std::string> password;
};

// How long the packet at the start of `data` is: `size` (fixed header included) once the fixed
// header is complete, 0 while more bytes are needed; `problem` when it is no CONNECT or declares
// more than `max_size` bytes.
struct PacketSize {
    std::size_t size = 0;
    Problem problem;
};
PacketSize connect_packet_size(std::string_view data, std::size_t max_size);

// One whole CONNECT packet, fixed header included, nothing after it.
struct ParsedConnect {
    Connect connect;
    Problem problem;
};
ParsedConnect parse_connect(std::string_view packet, std::size_t max_size);

// The packet for `connect`; it must satisfy what parse_connect checks.
std::string encode_connect(const Connect& connect);

// What the broker is told instead of what the client chose.
struct RewriteRules {
    std::optional<std::string> username;  // the mapped identity; nullopt = no username
    bool pass_password = false;
    std::optional<std::string> required_client_id;  // the client id must be this
    std::size_t max_size = 16 * 1024;
};
struct Rewritten {
    std::string packet;
    Problem problem;
};
// Parses `packet` and encodes it again under `rules`: the client's username is always replaced
// or dropped; its password goes on only when allowed (and, in 3.1.1, only with a username). A
// 5.0 CONNECT asking for enhanced authentication is refused.
Rewritten rewrite_connect(std::string_view packet, const RewriteRules& rules);

// Well-formed UTF-8 (no overlong forms, no surrogates) without U+0000, the C0 and C1 control
// characters or U+FFFE/U+FFFF: what an MQTT string must be (MQTT 5.0 1.5.4).
bool valid_mqtt_utf8(std::string_view text);

}  // namespace brokertls::mqtt
