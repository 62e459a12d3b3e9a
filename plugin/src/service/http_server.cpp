#include "service/http_server.hpp"

namespace brokertls {

std::optional<std::string_view> ServerRequest::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return std::string_view(v);
    return std::nullopt;
}

std::string_view ServerRequest::path() const {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
}

}  // namespace brokertls
