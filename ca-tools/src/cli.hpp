#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace brokertls::cli {

// Exit codes: 0 ok, 1 usage error, 2 input or state error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitError = 2;

// Runs `brokertls-ca ARGS...` (argv without the program name), printing to `out` and `err`.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace brokertls::cli
