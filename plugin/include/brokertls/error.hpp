#pragma once
// One error style throughout brokertls: typed exceptions whose message names the thing
// (a file, a field, a serial) and the reason, e.g. "ca/ca.key: not a PEM private key".

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

// "subject: reason"
[[noreturn]] void fail(ErrorKind kind, std::string_view subject, std::string_view reason);

// The reason of the newest OpenSSL error, with the queue cleared; "" when the queue is empty.
// OpenSSL reason strings never contain key material, so they are safe to log.
std::string openssl_reason();

}  // namespace brokertls
