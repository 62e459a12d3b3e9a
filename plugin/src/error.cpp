#include "brokertls/error.hpp"

#include <openssl/err.h>

namespace brokertls {

void fail(ErrorKind kind, std::string_view subject, std::string_view reason) {
    std::string message(subject);
    message += ": ";
    message += reason;
    throw Error(kind, message);
}

std::string openssl_reason() {
    unsigned long last = 0;
    while (unsigned long code = ERR_get_error()) last = code;
    if (last == 0) return "";
    const char* reason = ERR_reason_error_string(last);
    return reason ? reason : "unknown OpenSSL error";
}

}  // namespace brokertls
