#pragma once

#include <string>
#include <string_view>

namespace brokertls {

// SHA-256 of `data` as 64 lowercase hex digits (stable file and folder names).
std::string sha256_hex(std::string_view data);

}  // namespace brokertls
