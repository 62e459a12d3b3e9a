#pragma once
// Internal to the ACME client: reading the CA's JSON objects (orders, authorizations,
// challenges, problems) into the public structs, with errors that name the URL and the field.

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "acme/client.hpp"
#include "acme/problem.hpp"

namespace brokertls::acme_wire {

using nlohmann::json;

// The body of `response` as a JSON object; throws Error(Input) "WHAT: not a JSON object ...".
json parse_object(const HttpResponse& response, std::string_view what);

// A string member, "" when absent; throws Error(Input) when present but not a string.
std::string string_member(const json& object, const char* name, std::string_view what);
// A string member that must be present.
std::string required_string(const json& object, const char* name, std::string_view what);

AcmeProblem problem_from_json(const json& object, long status);
AcmeIdentifier identifier_from_json(const json& object, std::string_view what);
AcmeChallenge challenge_from_json(const json& object, std::string_view what);
AcmeAuthorization authorization_from_json(const json& object, const std::string& url);
AcmeOrder order_from_json(const json& object, const std::string& url);

// RFC 3339 date-time ("2025-01-02T04:00:00Z", fractions and offsets allowed).
TimePoint parse_rfc3339(const std::string& text, std::string_view what);

}  // namespace brokertls::acme_wire
