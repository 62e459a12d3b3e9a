#pragma once
// Shared by the fuzz targets: the input as text, and an HTTP answer built from fuzz bytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "acme/http.hpp"

namespace brokertls::fuzz {

inline std::string text(const uint8_t* data, size_t size) {
    return std::string(reinterpret_cast<const char*>(data), size);
}

// An HTTP answer as a transport hands it over: the first byte picks the status, then
// "name: value" lines (names lower-cased, as the libcurl transport stores them) up to an empty
// line, then the body.
inline HttpResponse http_response(std::string_view input) {
    static constexpr long kStatuses[] = {200, 201, 204, 301, 400, 403, 404, 429, 500, 503};
    HttpResponse response;
    if (input.empty()) return response;
    response.status = kStatuses[static_cast<unsigned char>(input[0]) % std::size(kStatuses)];
    input.remove_prefix(1);
    while (!input.empty()) {
        size_t end = input.find('\n');
        std::string_view line = input.substr(0, end);
        input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
        if (line.empty()) break;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string name(line.substr(0, colon));
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        response.headers.emplace_back(std::move(name), std::string(value));
    }
    response.body = std::string(input);
    return response;
}

}  // namespace brokertls::fuzz
