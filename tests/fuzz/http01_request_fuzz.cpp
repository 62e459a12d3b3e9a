// The http-01 responder's request handling: what a client sends up to the end of the head
// (the responder answers once it has "\r\n\r\n" and refuses heads over 8 KiB, -max_len 9000).
#include "challenges/socket_server.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    std::string received = fuzz::text(data, size);
    size_t end = received.find("\r\n\r\n");
    if (end == std::string::npos) return 0;  // the responder keeps reading
    (void)parse_http01_request(std::string_view(received).substr(0, end + 4));
    return 0;
}
