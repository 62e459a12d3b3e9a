// brokertls-gateway's parser of the client's first packet (an MQTT CONNECT, 3.1.1 or 5.0): the
// size from the fixed header on every prefix, and the rewrite. Whatever the parser accepts (but
// enhanced authentication), its rewrite must parse again, carry the identity as username and
// keep the client id.
#include <cstdlib>
#include <string_view>

#include "gateway/mqtt_connect.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls::mqtt;
    constexpr std::size_t kMax = 4096;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    for (std::size_t n = 0; n <= input.size() && n < 8; ++n) {
        auto s = connect_packet_size(input.substr(0, n), kMax);
        if (s.size > kMax || (s.size && s.problem)) std::abort();
    }
    auto parsed = parse_connect(input, kMax);
    RewriteRules rules;
    rules.username = "dev-1";
    rules.pass_password = size % 2 == 0;
    rules.max_size = kMax;
    auto out = rewrite_connect(input, rules);
    // Refused by the parser, or for enhanced authentication: refused by the rewrite too.
    bool refused = parsed.problem || parsed.connect.enhanced_authentication;
    if (refused != out.problem.has_value()) std::abort();
    if (refused) return 0;
    auto again = parse_connect(out.packet, kMax + 64);
    if (again.problem || again.connect.username != "dev-1" ||
        again.connect.client_id != parsed.connect.client_id ||
        again.connect.version != parsed.connect.version)
        std::abort();
    return 0;
}
