#include "gateway/mqtt_connect.hpp"

#include <set>

namespace brokertls::mqtt {

namespace {

constexpr unsigned char kConnect = 0x10;  // packet type 1, flags 0 (reserved, must be 0)

// A refusal inside the parser; parse_connect turns it into its Problem.
struct Refused {
    std::string why;
};

[[noreturn]] void refuse(std::string why) {
    throw Refused{std::move(why)};
}

// A Variable Byte Integer (MQTT 5.0 1.5.5): at most 4 bytes, in its shortest form. Returns the
// value and how many bytes it took, or nullopt when `data` ends inside it.
struct VarInt {
    std::uint32_t value = 0;
    std::size_t length = 0;
};
std::optional<VarInt> read_varint(std::string_view data, const char* what) {
    VarInt v;
    for (std::size_t i = 0; i < 4; ++i) {
        if (i >= data.size()) return std::nullopt;
        auto byte = static_cast<unsigned char>(data[i]);
        v.value |= static_cast<std::uint32_t>(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            if (i > 0 && byte == 0) refuse(std::string(what) + ": not in its shortest form");
            v.length = i + 1;
            return v;
        }
    }
    refuse(std::string(what) + ": longer than 4 bytes");
}

void append_varint(std::string& out, std::uint32_t value) {
    do {
        auto byte = static_cast<unsigned char>(value & 0x7f);
        value >>= 7;
        if (value) byte |= 0x80;
        out.push_back(static_cast<char>(byte));
    } while (value);
}

void append_u16(std::string& out, std::size_t value) {
    if (value > 0xffff)
        fail(ErrorKind::Usage, "MQTT CONNECT", "a field is longer than 65535 bytes");
    out.push_back(static_cast<char>(value >> 8));
    out.push_back(static_cast<char>(value & 0xff));
}

void append_binary(std::string& out, std::string_view data) {
    append_u16(out, data.size());
    out.append(data);
}

// Reads a packet's fields in order; every read is checked against what is left.
class Reader {
  public:
    explicit Reader(std::string_view data) : data_(data) {}
    bool done() const { return data_.empty(); }
    std::size_t left() const { return data_.size(); }

    std::string_view bytes(std::size_t n, const char* what) {
        if (n > data_.size()) refuse(std::string(what) + ": the packet ends inside it");
        auto out = data_.substr(0, n);
        data_.remove_prefix(n);
        return out;
    }
    unsigned char byte(const char* what) { return static_cast<unsigned char>(bytes(1, what)[0]); }
    std::uint16_t u16(const char* what) {
        auto b = bytes(2, what);
        return static_cast<std::uint16_t>((static_cast<unsigned char>(b[0]) << 8) |
                                          static_cast<unsigned char>(b[1]));
    }
    std::uint32_t u32(const char* what) {
        auto b = bytes(4, what);
        std::uint32_t v = 0;
        for (char c : b) v = (v << 8) | static_cast<unsigned char>(c);
        return v;
    }
    std::uint32_t varint(const char* what) {
        auto v = read_varint(data_, what);
        if (!v) refuse(std::string(what) + ": the packet ends inside it");
        data_.remove_prefix(v->length);
        return v->value;
    }
    std::string_view binary(const char* what) { return bytes(u16(what), what); }
    std::string_view string(const char* what) {
        auto s = binary(what);
        if (!valid_mqtt_utf8(s)) refuse(std::string(what) + ": not valid MQTT UTF-8");
        return s;
    }

  private:
    std::string_view data_;
};

enum class Type { Byte, Bool, U16, NonZeroU16, U32, NonZeroU32, String, Topic, Binary, Pair };
struct PropertyRule {
    unsigned char id;
    Type type;
    const char* name;
};

constexpr PropertyRule kConnectProperties[] = {
    {0x11, Type::U32, "session expiry interval"},
    {0x21, Type::NonZeroU16, "receive maximum"},
    {0x27, Type::NonZeroU32, "maximum packet size"},
    {0x22, Type::U16, "topic alias maximum"},
    {0x19, Type::Bool, "request response information"},
    {0x17, Type::Bool, "request problem information"},
    {0x26, Type::Pair, "user property"},
    {0x15, Type::String, "authentication method"},
    {0x16, Type::Binary, "authentication data"},
};
constexpr PropertyRule kWillProperties[] = {
    {0x18, Type::U32, "will delay interval"},     {0x01, Type::Bool, "payload format indicator"},
    {0x02, Type::U32, "message expiry interval"}, {0x03, Type::String, "content type"},
    {0x08, Type::Topic, "response topic"},        {0x09, Type::Binary, "correlation data"},
    {0x26, Type::Pair, "user property"},
};

bool is_topic_name(std::string_view topic) {
    return !topic.empty() && topic.find_first_of("+#") == std::string_view::npos;
}

// A 5.0 property list (after its length): each known for this packet, each but user properties
// at most once, each value of its type. Returns the list as sent and which properties it holds.
struct Properties {
    std::string_view raw;
    std::set<unsigned char> ids;
};
template <std::size_t N>
Properties read_properties(Reader& in, const PropertyRule (&rules)[N], const char* where) {
    std::uint32_t length = in.varint(where);
    std::string_view raw = in.bytes(length, where);
    Reader props(raw);
    std::set<unsigned char> seen;
    while (!props.done()) {
        unsigned char id = props.byte(where);
        const PropertyRule* rule = nullptr;
        for (const auto& r : rules)
            if (r.id == id) rule = &r;
        if (!rule)
            refuse(std::string(where) + ": property " + std::to_string(id) + " is not allowed");
        if (rule->type != Type::Pair && !seen.insert(id).second)
            refuse(std::string(where) + ": " + rule->name + " given twice");
        switch (rule->type) {
            case Type::Byte:
                props.byte(rule->name);
                break;
            case Type::Bool:
                if (props.byte(rule->name) > 1)
                    refuse(std::string(rule->name) + ": must be 0 or 1");
                break;
            case Type::U16:
                props.u16(rule->name);
                break;
            case Type::NonZeroU16:
                if (props.u16(rule->name) == 0) refuse(std::string(rule->name) + ": must not be 0");
                break;
            case Type::U32:
                props.u32(rule->name);
                break;
            case Type::NonZeroU32:
                if (props.u32(rule->name) == 0) refuse(std::string(rule->name) + ": must not be 0");
                break;
            case Type::String:
                props.string(rule->name);
                break;
            case Type::Topic:
                if (!is_topic_name(props.string(rule->name)))
                    refuse(std::string(rule->name) + ": not a topic name");
                break;
            case Type::Binary:
                props.binary(rule->name);
                break;
            case Type::Pair:
                props.string(rule->name);
                props.string(rule->name);
                break;
        }
    }
    // Authentication data means nothing without its method (MQTT 5.0 3.1.2.11.10).
    if (seen.count(0x16) && !seen.count(0x15))
        refuse(std::string(where) + ": authentication data without an authentication method");
    return {raw, std::move(seen)};
}

Connect parse(std::string_view packet, std::size_t max_size) {
    auto size = connect_packet_size(packet, max_size);
    if (size.problem) refuse(*size.problem);
    if (size.size == 0 || size.size > packet.size()) refuse("the packet is incomplete");
    if (size.size < packet.size()) refuse("bytes after the CONNECT packet");
    Reader in(packet);
    in.byte("fixed header");
    in.varint("remaining length");

    Connect c;
    auto name = in.binary("protocol name");
    c.version = in.byte("protocol level");
    if (name == "MQIsdp") refuse("MQTT 3.1 (MQIsdp) is not supported; use 3.1.1 or 5.0");
    if (name != "MQTT") refuse("protocol name is not \"MQTT\"");
    if (c.version != 4 && c.version != 5)
        refuse("protocol level " + std::to_string(c.version) + " is not 4 (3.1.1) or 5 (5.0)");
    unsigned char flags = in.byte("connect flags");
    if (flags & 0x01) refuse("the reserved connect flag is set");
    c.clean_start = flags & 0x02;
    c.will = flags & 0x04;
    c.will_qos = (flags >> 3) & 0x03;
    c.will_retain = flags & 0x20;
    bool has_password = flags & 0x40;
    bool has_username = flags & 0x80;
    if (!c.will && (c.will_qos != 0 || c.will_retain))
        refuse("will QoS or will retain set without the will flag");
    if (c.will_qos == 3) refuse("will QoS 3");
    if (c.version == 4 && has_password && !has_username)
        refuse("a password without a username (MQTT 3.1.1 3.1.2.9)");
    c.keep_alive = in.u16("keep alive");
    if (c.version == 5) {
        auto properties = read_properties(in, kConnectProperties, "properties");
        c.properties = properties.raw;
        c.enhanced_authentication = properties.ids.count(0x15) > 0;
    }

    c.client_id = in.string("client id");
    if (c.will) {
        if (c.version == 5)
            c.will_properties = read_properties(in, kWillProperties, "will properties").raw;
        c.will_topic = in.string("will topic");
        if (!is_topic_name(c.will_topic)) refuse("will topic: not a topic name");
        c.will_payload = in.binary("will payload");
    }
    if (has_username) c.username = in.string("username");
    if (has_password) c.password = in.binary("password");
    if (!in.done()) refuse("bytes after the CONNECT payload");
    return c;
}

}  // namespace

bool valid_mqtt_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        auto b = static_cast<unsigned char>(text[i]);
        std::uint32_t cp;
        std::size_t n;
        if (b < 0x80) {
            cp = b;
            n = 1;
        } else if (b >= 0xc2 && b <= 0xdf) {
            cp = b & 0x1f;
            n = 2;
        } else if (b >= 0xe0 && b <= 0xef) {
            cp = b & 0x0f;
            n = 3;
        } else if (b >= 0xf0 && b <= 0xf4) {
            cp = b & 0x07;
            n = 4;
        } else {
            return false;  // a continuation byte, an overlong lead (C0, C1) or beyond U+10FFFF
        }
        if (i + n > text.size()) return false;
        for (std::size_t k = 1; k < n; ++k) {
            auto c = static_cast<unsigned char>(text[i + k]);
            if ((c & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (c & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return false;
        if (cp >= 0xd800 && cp <= 0xdfff) return false;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xfffe || cp == 0xffff) return false;
        i += n;
    }
    return true;
}

PacketSize connect_packet_size(std::string_view data, std::size_t max_size) {
    PacketSize out;
    if (data.empty()) return out;
    if (static_cast<unsigned char>(data[0]) != kConnect) {
        out.problem = "the first packet is not a CONNECT";
        return out;
    }
    try {
        auto length = read_varint(data.substr(1), "remaining length");
        if (!length) return out;
        std::size_t total = 1 + length->length + length->value;
        if (total > max_size)
            out.problem = "the CONNECT is " + std::to_string(total) + " bytes, more than the " +
                          std::to_string(max_size) + " allowed";
        else
            out.size = total;
    } catch (const Refused& r) {
        out.problem = r.why;
    }
    return out;
}

ParsedConnect parse_connect(std::string_view packet, std::size_t max_size) {
    ParsedConnect out;
    try {
        out.connect = parse(packet, max_size);
    } catch (const Refused& r) {
        out.problem = r.why;
    }
    return out;
}

std::string encode_connect(const Connect& c) {
    std::string body;
    append_binary(body, "MQTT");
    body.push_back(static_cast<char>(c.version));
    unsigned char flags = 0;
    if (c.clean_start) flags |= 0x02;
    if (c.will)
        flags |= static_cast<unsigned char>(0x04 | (c.will_qos << 3) | (c.will_retain ? 0x20 : 0));
    if (c.password) flags |= 0x40;
    if (c.username) flags |= 0x80;
    body.push_back(static_cast<char>(flags));
    append_u16(body, c.keep_alive);
    if (c.version == 5) {
        append_varint(body, static_cast<std::uint32_t>(c.properties.size()));
        body += c.properties;
    }
    append_binary(body, c.client_id);
    if (c.will) {
        if (c.version == 5) {
            append_varint(body, static_cast<std::uint32_t>(c.will_properties.size()));
            body += c.will_properties;
        }
        append_binary(body, c.will_topic);
        append_binary(body, c.will_payload);
    }
    if (c.username) append_binary(body, *c.username);
    if (c.password) append_binary(body, *c.password);
    std::string packet(1, static_cast<char>(kConnect));
    append_varint(packet, static_cast<std::uint32_t>(body.size()));
    return packet + body;
}

Rewritten rewrite_connect(std::string_view packet, const RewriteRules& rules) {
    Rewritten out;
    auto parsed = parse_connect(packet, rules.max_size);
    if (parsed.problem) {
        out.problem = parsed.problem;
        return out;
    }
    Connect c = std::move(parsed.connect);
    // An AUTH exchange lets the broker settle on an identity of its own: the identity is the
    // certificate's alone.
    if (c.enhanced_authentication) {
        out.problem = "enhanced authentication (an authentication method) is not allowed";
        return out;
    }
    if (rules.required_client_id && c.client_id != *rules.required_client_id) {
        out.problem = "the client id is not the identity '" + *rules.required_client_id + "'";
        return out;
    }
    if (rules.username && !valid_mqtt_utf8(*rules.username)) {
        out.problem = "the identity is not valid MQTT UTF-8";
        return out;
    }
    c.username = rules.username;
    if (!rules.pass_password || (c.version == 4 && !c.username)) c.password.reset();
    out.packet = encode_connect(c);
    return out;
}

}  // namespace brokertls::mqtt
