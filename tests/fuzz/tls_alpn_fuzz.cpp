// What the tls-alpn-01 responder itself reads (the ClientHello is OpenSSL's to parse): the ALPN
// protocol list and the SNI a client sends, and the identifier an ACME authorization names,
// which becomes the SNI a challenge certificate is held under. The first byte picks which.
#include "brokertls/error.hpp"
#include "challenges/socket_server.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    if (size < 1) return 0;
    std::string input = fuzz::text(data + 1, size - 1);
    try {
        switch (data[0] % 4) {
            case 0:
                (void)offers_acme_tls_1(input);
                break;
            case 1:
                (void)tls_alpn_name_key(input);
                break;
            case 2:
                (void)tls_alpn_sni_for("ip", input);
                break;
            default:
                (void)tls_alpn_sni_for("dns", input);
                break;
        }
    } catch (const Error&) {
    }
    return 0;
}
