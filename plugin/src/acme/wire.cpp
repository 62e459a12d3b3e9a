#include "wire.hpp"

#include <cstdio>
#include <ctime>

#include "brokertls/error.hpp"

namespace brokertls::acme_wire {

json parse_object(const HttpResponse& response, std::string_view what) {
    auto parsed = json::parse(response.body, nullptr, false);
    if (!parsed.is_object())
        fail(ErrorKind::Input, what,
             "not a JSON object (HTTP " + std::to_string(response.status) + ")");
    return parsed;
}

std::string string_member(const json& object, const char* name, std::string_view what) {
    auto it = object.find(name);
    if (it == object.end() || it->is_null()) return "";
    if (!it->is_string()) fail(ErrorKind::Input, what, std::string(name) + " is not a string");
    return it->get<std::string>();
}

std::string required_string(const json& object, const char* name, std::string_view what) {
    std::string value = string_member(object, name, what);
    if (value.empty()) fail(ErrorKind::Input, what, std::string("no ") + name);
    return value;
}

AcmeProblem problem_from_json(const json& object, long status) {
    constexpr std::string_view what = "problem document";
    AcmeProblem problem;
    problem.type = string_member(object, "type", what);
    problem.detail = string_member(object, "detail", what);
    problem.status = status;
    if (auto subs = object.find("subproblems"); subs != object.end() && subs->is_array()) {
        for (const auto& sub : *subs) {
            if (!sub.is_object()) continue;
            AcmeProblem::Sub entry;
            entry.type = string_member(sub, "type", what);
            entry.detail = string_member(sub, "detail", what);
            if (auto id = sub.find("identifier"); id != sub.end() && id->is_object())
                entry.identifier = string_member(*id, "value", what);
            problem.subproblems.push_back(std::move(entry));
        }
    }
    return problem;
}

AcmeIdentifier identifier_from_json(const json& object, std::string_view what) {
    if (!object.is_object()) fail(ErrorKind::Input, what, "identifier is not an object");
    return {required_string(object, "type", what), required_string(object, "value", what)};
}

AcmeChallenge challenge_from_json(const json& object, std::string_view what) {
    if (!object.is_object()) fail(ErrorKind::Input, what, "challenge is not an object");
    AcmeChallenge challenge;
    challenge.type = required_string(object, "type", what);
    challenge.url = required_string(object, "url", what);
    challenge.token = string_member(object, "token", what);
    challenge.status = required_string(object, "status", what);
    if (auto error = object.find("error"); error != object.end() && error->is_object())
        challenge.error = problem_from_json(*error, 0);
    return challenge;
}

AcmeAuthorization authorization_from_json(const json& object, const std::string& url) {
    std::string what = "authorization " + url;
    AcmeAuthorization authz;
    authz.url = url;
    auto id = object.find("identifier");
    if (id == object.end()) fail(ErrorKind::Input, what, "no identifier");
    authz.identifier = identifier_from_json(*id, what);
    authz.status = required_string(object, "status", what);
    if (auto wildcard = object.find("wildcard"); wildcard != object.end())
        authz.wildcard = wildcard->is_boolean() && wildcard->get<bool>();
    if (auto challenges = object.find("challenges"); challenges != object.end()) {
        if (!challenges->is_array()) fail(ErrorKind::Input, what, "challenges is not an array");
        for (const auto& challenge : *challenges)
            authz.challenges.push_back(challenge_from_json(challenge, what));
    }
    return authz;
}

AcmeOrder order_from_json(const json& object, const std::string& url) {
    std::string what = "order " + url;
    AcmeOrder order;
    order.url = url;
    order.status = required_string(object, "status", what);
    if (auto ids = object.find("identifiers"); ids != object.end() && ids->is_array())
        for (const auto& id : *ids) order.identifiers.push_back(identifier_from_json(id, what));
    auto authzs = object.find("authorizations");
    if (authzs == object.end() || !authzs->is_array())
        fail(ErrorKind::Input, what, "no authorizations array");
    for (const auto& authz : *authzs) {
        if (!authz.is_string()) fail(ErrorKind::Input, what, "an authorization is not a URL");
        order.authorizations.push_back(authz.get<std::string>());
    }
    order.finalize = required_string(object, "finalize", what);
    order.certificate = string_member(object, "certificate", what);
    if (auto error = object.find("error"); error != object.end() && error->is_object())
        order.error = problem_from_json(*error, 0);
    return order;
}

TimePoint parse_rfc3339(const std::string& text, std::string_view what) {
    std::tm tm{};
    int consumed = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
        consumed == 0)
        fail(ErrorKind::Input, what, "not an RFC 3339 time: " + text);
    std::string_view rest(text.c_str() + consumed);
    std::chrono::nanoseconds fraction{0};
    if (!rest.empty() && rest.front() == '.') {
        rest.remove_prefix(1);
        long long scale = 100'000'000;
        while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
            fraction += std::chrono::nanoseconds((rest.front() - '0') * scale);
            scale /= 10;
            rest.remove_prefix(1);
        }
    }
    std::chrono::seconds offset{0};
    if (rest == "Z" || rest == "z") {
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
        int hours = 0, minutes = 0;
        if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &hours, &minutes) != 2)
            fail(ErrorKind::Input, what, "not an RFC 3339 time: " + text);
        offset = std::chrono::hours(hours) + std::chrono::minutes(minutes);
        if (rest[0] == '-') offset = -offset;
    } else {
        fail(ErrorKind::Input, what, "not an RFC 3339 time: " + text);
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t seconds = timegm(&tm);
    // A TimePoint counts nanoseconds in 64 bits (years 1678 to 2261); a CA's "9999-12-31" must
    // be refused, not overflow. The margin covers the offset (at most 99:99) and the fraction.
    constexpr long long kLimit =
        std::chrono::duration_cast<std::chrono::seconds>(SystemClock::duration::max()).count() -
        7 * 86400;
    if (seconds > kLimit || seconds < -kLimit)
        fail(ErrorKind::Input, what, "time out of range: " + text);
    return SystemClock::from_time_t(seconds) - offset +
           std::chrono::duration_cast<SystemClock::duration>(fraction);
}

}  // namespace brokertls::acme_wire
