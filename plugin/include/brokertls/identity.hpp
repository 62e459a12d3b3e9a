#pragma once
// Rules for the names brokertls hands a broker as a username, and for bytes that go into log
// lines. An identity ends up in ACL patterns (`devices/%u/#`) and in MQTT strings, so it must
// be valid UTF-8 as MQTT defines it, hold no control characters and no topic characters.

#include <string>
#include <string_view>

#include "brokertls/error.hpp"

namespace brokertls {

struct IdentityRules {
    // '/' is a topic level separator: "dev-1/x" would publish into dev-1's tree under
    // `devices/%u/#`. A profile may opt in (security_profiles.NAME.identity_allow_slash).
    bool allow_slash = false;
};

// Why `identity` cannot be a broker username, or nullopt when it can. Refused: empty, longer
// than 65535 bytes (an MQTT string), NUL, invalid UTF-8 (overlong, surrogates, > U+10FFFF),
// control characters (U+0001-U+001F, U+007F-U+009F), Unicode noncharacters, '+', '#', and '/'
// unless allowed.
Problem identity_problem(std::string_view identity, IdentityRules rules = {});

// `bytes` safe for one log line: control characters, invalid UTF-8 bytes and '\' written as
// \xNN (or \\), valid UTF-8 kept as it is.
std::string printable(std::string_view bytes);

}  // namespace brokertls
