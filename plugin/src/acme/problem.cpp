#include "acme/problem.hpp"

#include <cctype>

#include "wire.hpp"

namespace brokertls {

namespace {

constexpr std::string_view kAcmePrefix = "urn:ietf:params:acme:error:";

std::string strip_prefix(const std::string& type) {
    return type.rfind(kAcmePrefix, 0) == 0 ? type.substr(kAcmePrefix.size()) : type;
}

// A short printable excerpt of an answer that is not a problem document (an HTML error page
// from a proxy, say), so the operator sees what came back without a wall of markup.
std::string excerpt(const std::string& body) {
    constexpr size_t kMax = 120;
    std::string out;
    for (char c : body.substr(0, kMax)) {
        unsigned char u = static_cast<unsigned char>(c);
        out += (std::isprint(u) ? c : ' ');
    }
    auto first = out.find_first_not_of(' ');
    if (first == std::string::npos) return "";
    out = out.substr(first);
    if (body.size() > kMax) out += "...";
    return out;
}

ErrorKind kind_for(long status) {
    // 5xx answers are the CA's trouble; refusals (4xx, or a problem inside an order or a
    // challenge) are about what we asked.
    return status >= 500 ? ErrorKind::Io : ErrorKind::State;
}

}  // namespace

std::string AcmeProblem::short_type() const {
    return strip_prefix(type);
}

std::string AcmeProblem::to_string() const {
    std::string out = type.empty() ? std::string("error") : short_type();
    if (!detail.empty()) out += ": " + detail;
    if (status != 0) out += " (HTTP " + std::to_string(status) + ")";
    for (const auto& sub : subproblems) {
        out += "; ";
        if (!sub.identifier.empty()) out += sub.identifier + ": ";
        out += strip_prefix(sub.type);
        if (!sub.detail.empty()) out += ": " + sub.detail;
    }
    if (retry_after) out += "; retry after " + to_iso8601(*retry_after);
    return out;
}

AcmeError::AcmeError(const std::string& context, AcmeProblem problem)
    : Error(kind_for(problem.status), context + ": " + problem.to_string()),
      problem_(std::move(problem)) {}

AcmeProblem parse_problem(const HttpResponse& response, TimePoint now) {
    AcmeProblem problem;
    auto parsed = nlohmann::json::parse(response.body, nullptr, false);
    if (parsed.is_object() && (parsed.contains("type") || parsed.contains("detail"))) {
        try {
            problem = acme_wire::problem_from_json(parsed, response.status);
        } catch (const Error&) {
            problem = AcmeProblem{};
            problem.detail = "malformed problem document: " + excerpt(response.body);
        }
    } else {
        std::string text = excerpt(response.body);
        problem.detail = text.empty() ? "empty answer" : "unexpected answer: " + text;
    }
    problem.status = response.status;
    if (auto value = response.header("retry-after"))
        problem.retry_after = parse_retry_after(*value, now);
    return problem;
}

}  // namespace brokertls
