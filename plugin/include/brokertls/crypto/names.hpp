#pragma once
// Subject alternative names, and telling their kind from how a name is written (as mkcert does:
// "broker.local" is DNS, "10.0.0.5" and "::1" are IP, "a@b" is email, "spiffe://x/y" is URI).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brokertls/crypto/handles.hpp"

namespace brokertls {

struct SubjectAltName {
    enum class Type { Dns, Ip, Uri, Email, Other };
    Type type;
    std::string value;

    // "DNS:broker.local", "IP:10.0.0.5", "URI:spiffe://x", "email:a@b"
    std::string to_string() const;
    bool operator==(const SubjectAltName&) const = default;
};

// Classifies a bare name; throws Error(Usage) naming it when it is none of the four kinds.
SubjectAltName classify_name(std::string_view name);
// Checks a name against its declared type; throws Error(Usage) naming it.
SubjectAltName make_san(SubjectAltName::Type type, std::string_view value);

bool is_valid_dns_name(std::string_view name, bool allow_wildcard = true);

// Shell-style glob with '*' and '?' (case-insensitive for DNS use), as ACMEMS's domain globs.
bool glob_match(std::string_view pattern, std::string_view text);

// Conversions to and from OpenSSL's GENERAL_NAMES. Names are encoded with explicit lengths; a
// name holding a NUL byte is refused both ways (reading: Error(Input) "OWNER subjectAltName
// DNS: contains a NUL byte", where `owner` says whose names these are: "CSR", "certificate").
GeneralNamesPtr to_general_names(const std::vector<SubjectAltName>& sans);
std::vector<SubjectAltName> from_general_names(const GENERAL_NAMES* names,
                                               std::string_view owner = "certificate");

// RFC 2253 form of an X509_NAME ("CN=dev-1,O=Example"; control bytes escaped as \XX).
std::string name_to_string(const X509_NAME* name);
// The CN as UTF-8, "" when absent. Error(Input) "OWNER subject CN: ..." when it holds a NUL
// byte, is not a valid string, or appears more than once.
std::string common_name_of(const X509_NAME* name, std::string_view owner = "certificate");

}  // namespace brokertls
