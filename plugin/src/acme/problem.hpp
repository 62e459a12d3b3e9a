#pragma once
// RFC 8555 §6.7 problem documents, turned into errors an operator can act on:
// "acme authorization https://ca/authz/7 (a.example) dns-01: unauthorized: Incorrect TXT
// record ... found at _acme-challenge.a.example".

#include <optional>
#include <string>
#include <vector>

#include "acme/http.hpp"
#include "brokertls/crypto/time.hpp"
#include "brokertls/error.hpp"

namespace brokertls {

struct AcmeProblem {
    std::string type;  // "urn:ietf:params:acme:error:badNonce", ... ("" when the body had none)
    std::string detail;
    long status = 0;  // HTTP status of the answer
    struct Sub {
        std::string type, detail, identifier;  // identifier value ("a.example.com")
    };
    std::vector<Sub> subproblems;
    std::optional<TimePoint> retry_after;  // from a Retry-After header
    // The type without "urn:ietf:params:acme:error:" ("badNonce", "rateLimited").
    std::string short_type() const;
    // One line: "rateLimited: too many certificates (HTTP 429); a.example: caa: ..."
    std::string to_string() const;
};

// The problem an error answer carries: its problem document (RFC 7807) when the body is JSON,
// otherwise a problem without type whose detail quotes a short excerpt of the body; the status
// and Retry-After come from the answer (a delay counts from `now`).
AcmeProblem parse_problem(const HttpResponse& response, TimePoint now);

// What the ACME client throws when the server answers with a problem (or garbage). The message
// is problem.to_string() prefixed by what was being done. Its kind is Io for a 5xx answer (the
// CA's trouble, worth retrying later) and State for a refusal.
class AcmeError : public Error {
  public:
    AcmeError(const std::string& context, AcmeProblem problem);
    const AcmeProblem& problem() const noexcept { return problem_; }

  private:
    AcmeProblem problem_;
};

}  // namespace brokertls
