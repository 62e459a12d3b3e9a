#pragma once
// JSON text of documents that carry outside bytes (CA answers, hooks' output, file contents).

#include <nlohmann/json.hpp>
#include <string>

namespace brokertls {

// One line (indent -1) or indented. Bytes from a CA or a hook may not be UTF-8: they are
// replaced (U+FFFD), so a bad byte never loses the whole document or throws on the broker thread.
inline std::string json_text(const nlohmann::json& value, int indent = -1) {
    return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace brokertls
