#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <cctype>

#include "acme/http.hpp"

namespace brokertls {

namespace {

bool same_name(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    for (const auto& [key, value] : headers)
        if (same_name(key, name)) return value;
    return std::nullopt;
}

std::vector<std::string> HttpResponse::header_values(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [key, value] : headers)
        if (same_name(key, name)) out.push_back(value);
    return out;
}

std::vector<std::string> HttpResponse::links(std::string_view rel) const {
    // Link: <https://ca/cert/1/1>;rel="alternate", <https://ca/dir>;rel="index"
    std::vector<std::string> out;
    for (const auto& value : header_values("link")) {
        size_t pos = 0;
        while ((pos = value.find('<', pos)) != std::string::npos) {
            size_t end = value.find('>', pos);
            if (end == std::string::npos) break;
            std::string target = value.substr(pos + 1, end - pos - 1);
            size_t next = value.find('<', end);
            std::string params =
                value.substr(end + 1, next == std::string::npos ? next : next - end - 1);
            pos = end;
            // rel="a b" may name several relations; compare each case-insensitively.
            auto at = params.find("rel=");
            if (at == std::string::npos) continue;
            std::string rels = params.substr(at + 4);
            rels = rels.substr(0, rels.find_first_of(";,"));
            rels.erase(std::remove(rels.begin(), rels.end(), '"'), rels.end());
            size_t start = 0;
            while (start < rels.size()) {
                size_t space = rels.find(' ', start);
                std::string_view one(rels.data() + start,
                                     (space == std::string::npos ? rels.size() : space) - start);
                if (same_name(one, rel)) {
                    out.push_back(target);
                    break;
                }
                if (space == std::string::npos) break;
                start = space + 1;
            }
        }
    }
    return out;
}

std::optional<TimePoint> parse_retry_after(std::string_view value, TimePoint now) {
    std::string text(value);
    text.erase(0, text.find_first_not_of(" \t"));
    text.erase(text.find_last_not_of(" \t") + 1);
    if (text.empty()) return std::nullopt;
    if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
        if (text.size() > 9) return std::nullopt;  // more than 30 years: not a real delay
        return now + std::chrono::seconds(std::stol(text));
    }
    // libcurl already parses every HTTP date form (IMF-fixdate, RFC 850, asctime).
    time_t when = curl_getdate(text.c_str(), nullptr);
    if (when == -1) return std::nullopt;
    // A date past what a TimePoint holds (year 2262) is no real delay either (and would
    // overflow from_time_t).
    if (when > SystemClock::to_time_t(now + std::chrono::hours(24 * 365 * 30))) return std::nullopt;
    return std::max(now, SystemClock::from_time_t(when));
}

}  // namespace brokertls
