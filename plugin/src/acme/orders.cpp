// AcmeClient: orders, authorizations, challenges, polling and finalize.

#include <arpa/inet.h>

#include <algorithm>

#include "acme/client.hpp"
#include "acme/jws.hpp"
#include "brokertls/error.hpp"
#include "wire.hpp"

namespace brokertls {

using acme_wire::json;

namespace {

constexpr std::chrono::milliseconds kFirstPoll{150};
constexpr std::chrono::milliseconds kMaxPoll{2000};

std::string context(std::string_view what, const std::string& url) {
    return "acme " + std::string(what) + " " + url;
}

// RFC 8738 wants the canonical text form (RFC 5952 for IPv6).
std::string canonical_ip(const std::string& text) {
    unsigned char bytes[16];
    char out[INET6_ADDRSTRLEN];
    int family = text.find(':') == std::string::npos ? AF_INET : AF_INET6;
    if (inet_pton(family, text.c_str(), bytes) != 1 || !inet_ntop(family, bytes, out, sizeof out))
        fail(ErrorKind::Usage, text, "not an IP address");
    return out;
}

}  // namespace

AcmeIdentifier to_acme_identifier(const SubjectAltName& name) {
    switch (name.type) {
        case SubjectAltName::Type::Dns:
            return {"dns", name.value};
        case SubjectAltName::Type::Ip:
            return {"ip", canonical_ip(name.value)};
        default:
            fail(ErrorKind::Usage, name.to_string(),
                 "ACME certificates can only name DNS names and IP addresses");
    }
}

const AcmeChallenge* AcmeAuthorization::find(const std::string& type) const {
    for (const auto& challenge : challenges)
        if (challenge.type == type) return &challenge;
    return nullptr;
}

AcmeOrder AcmeClient::new_order(const OrderRequest& request) {
    const std::string& url = directory().new_order;
    json identifiers = json::array();
    for (const auto& id : request.identifiers)
        identifiers.push_back({{"type", id.type}, {"value", id.value}});
    json payload{{"identifiers", identifiers}};
    if (!request.replaces.empty()) payload["replaces"] = request.replaces;
    if (!request.profile.empty()) payload["profile"] = request.profile;
    HttpResponse response = post("newOrder", url, payload.dump());
    auto location = response.header("location");
    if (!location || location->empty())
        fail(ErrorKind::Input, context("newOrder", url), "no Location header (the order URL)");
    return acme_wire::order_from_json(acme_wire::parse_object(response, context("newOrder", url)),
                                      *location);
}

AcmeOrder AcmeClient::get_order(const std::string& url) {
    HttpResponse response = post("order", url, "");
    return acme_wire::order_from_json(acme_wire::parse_object(response, context("order", url)),
                                      url);
}

AcmeAuthorization AcmeClient::get_authorization(const std::string& url) {
    HttpResponse response = post("authorization", url, "");
    return acme_wire::authorization_from_json(
        acme_wire::parse_object(response, context("authorization", url)), url);
}

AcmeChallenge AcmeClient::respond(const AcmeChallenge& challenge) {
    HttpResponse response = post("challenge", challenge.url, "{}");
    return acme_wire::challenge_from_json(
        acme_wire::parse_object(response, context("challenge", challenge.url)),
        context("challenge", challenge.url));
}

void AcmeClient::pause(const HttpResponse& last, std::chrono::milliseconds& backoff,
                       TimePoint deadline, const std::string& what, const std::string& state) {
    TimePoint now = clock_.now();
    if (now >= deadline) fail(ErrorKind::State, what, state + " at the deadline");
    std::chrono::milliseconds wait = backoff;
    std::optional<TimePoint> retry_after;
    if (auto header = last.header("retry-after")) retry_after = parse_retry_after(*header, now);
    if (retry_after) {
        // The CA's pace, but never a tighter loop than our own first interval.
        wait =
            std::max(kFirstPoll, std::chrono::ceil<std::chrono::milliseconds>(*retry_after - now));
    } else {
        backoff = std::min(kMaxPoll, backoff * 3 / 2);
    }
    wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
    if (!sleeper_(wait)) fail(ErrorKind::State, what, "stopped");
}

AcmeAuthorization AcmeClient::wait_authorization(const std::string& url, TimePoint deadline) {
    std::chrono::milliseconds backoff = kFirstPoll;
    while (true) {
        HttpResponse response = post("authorization", url, "");
        AcmeAuthorization authz = acme_wire::authorization_from_json(
            acme_wire::parse_object(response, context("authorization", url)), url);
        std::string what = context("authorization", url) + " (" + authz.identifier.value + ")";
        if (authz.status == "valid") return authz;
        if (authz.status == "invalid") {
            for (const auto& challenge : authz.challenges)
                if (challenge.error) throw AcmeError(what + " " + challenge.type, *challenge.error);
            AcmeProblem problem;
            problem.detail = "the authorization is invalid (no challenge error given)";
            throw AcmeError(what, problem);
        }
        if (authz.status != "pending")
            fail(ErrorKind::State, what, "the authorization is " + authz.status);
        pause(response, backoff, deadline, what, "still pending");
    }
}

AcmeOrder AcmeClient::finalize(const AcmeOrder& order, const std::string& csr_der,
                               TimePoint deadline) {
    std::string what = context("order", order.url);
    std::chrono::milliseconds backoff = kFirstPoll;
    AcmeOrder current = order;
    HttpResponse last;
    auto refresh = [&] {
        last = post("order", order.url, "");
        current = acme_wire::order_from_json(acme_wire::parse_object(last, what), order.url);
    };
    // A CA may take a moment to move an order whose authorizations are all valid to "ready".
    while (current.status == "pending") {
        pause(last, backoff, deadline, what, "still pending");
        refresh();
    }
    if (current.status == "ready") {
        json payload{{"csr", base64url(csr_der)}};
        last = post("finalize", current.finalize, payload.dump());
        current = acme_wire::order_from_json(
            acme_wire::parse_object(last, context("finalize", current.finalize)), order.url);
        backoff = kFirstPoll;
    }
    while (current.status == "processing") {
        pause(last, backoff, deadline, what, "still processing");
        refresh();
    }
    if (current.status == "valid") {
        if (current.certificate.empty())
            fail(ErrorKind::Input, what, "valid but without a certificate URL");
        return current;
    }
    if (current.status == "invalid") {
        AcmeProblem problem;
        if (current.error)
            problem = *current.error;
        else
            problem.detail = "the order is invalid (no error given)";
        throw AcmeError(what, problem);
    }
    fail(ErrorKind::State, what, "unexpected order status \"" + current.status + "\"");
}

}  // namespace brokertls
