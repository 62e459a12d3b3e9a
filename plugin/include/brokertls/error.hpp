#pragma once
// The one error convention of brokertls. Every message names the thing (a file, a field, a
// serial) and the reason, e.g. "ca/ca.key: not a PEM private key"; messages are kept word for
// word, as tests and operators grep them.
//
//  - A function that cannot do its job throws Error{kind, "subject: reason"}, through
//    fail(kind, subject, reason).
//  - A function whose job is to judge something (a check, a validator) returns a Problem:
//    nullopt when it is fine, else the reason in words. Such functions are named *_problem,
//    or their comment says what the Problem means. A verdict that also carries data is a
//    struct with a Problem member (VerifyResult::problem).
//  - Warnings that do not stop the work are returned: a std::vector<std::string> member of the
//    result (CertificateAuthority::warnings()) or a `std::vector<std::string>& warnings`
//    parameter (load_kept_crls). Never through std::string* out-parameters.
//  - No bool + std::string& reason pairs, no std::string that means "ok" when empty. Where a
//    value may be missing (a lookup, a parse that may not match) std::optional says so; that is
//    absence, not an error.

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace brokertls {

enum class ErrorKind {
    Usage,  // the caller asked for something malformed (bad argument, unknown option)
    Input,  // a file, PEM, CSR or value we were given is wrong
    State,  // the stored state forbids it (already revoked, file exists, lock busy)
    Io,     // the operating system refused (permissions, disk full)
};

class Error : public std::runtime_error {
  public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const noexcept { return kind_; }

  private:
    ErrorKind kind_;
};

// What a check found wrong, in words; nullopt when nothing is.
using Problem = std::optional<std::string>;

// "subject: reason"
[[noreturn]] void fail(ErrorKind kind, std::string_view subject, std::string_view reason);

// The reason of the newest OpenSSL error, with the queue cleared; "" when the queue is empty.
// OpenSSL reason strings never contain key material, so they are safe to log.
std::string openssl_reason();

}  // namespace brokertls
