#pragma once
// EST (RFC 7030, with the RFC 8951 clarifications) without the transport: the request path,
// the base64 PKCS#10 body of simpleenroll/simplereenroll, the base64 PKCS#7 certs-only answer,
// and the re-enrollment rule. Who may ask (TLS client certificate, HTTP auth) is the caller's.
// The parsers take hostile input: strict grammar, bounded sizes.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/error.hpp"

namespace brokertls {

// Content types (RFC 7030 §4.1.3: /cacerts answers plain application/pkcs7-mime; §4.2.3:
// enrollment answers carry smime-type=certs-only; §4.2.1: requests are application/pkcs10).
// Every body is base64 of DER; RFC 8951 makes "Content-Transfer-Encoding: base64" the only
// encoding and lets clients omit that header, so the caller need not check it.
inline constexpr std::string_view kEstPkcs7CertsOnly =
    "application/pkcs7-mime; smime-type=certs-only";
inline constexpr std::string_view kEstCertsOnlyCaCerts = "application/pkcs7-mime";
inline constexpr std::string_view kEstCsrContentType = "application/pkcs10";

// The largest DER request parse_est_csr accepts: an RSA-4096 request with a few dozen names is
// under 3 KiB, so this leaves room without letting a client make us decode megabytes.
inline constexpr std::size_t kEstMaxCsrSize = 16 * 1024;

// "/.well-known/est/[LABEL/]OPERATION" (RFC 7030 §3.2.2). `label` is empty without the
// optional CA label. `operation` is whatever the last segment says, also operations we do not
// serve (csrattrs, serverkeygen, fullcmc, or unknown words): the caller answers those with 404
// or 501, and only "cacerts", "simpleenroll" and "simplereenroll" with content.
struct EstPath {
    std::string label;
    std::string operation;
    bool operator==(const EstPath&) const = default;
};
// nullopt unless `path` (the request target's path: a query or fragment makes it no EST path)
// is exactly that form, where LABEL and OPERATION are 1 to 64 characters of [A-Za-z0-9._-],
// neither "." nor "..". No percent-decoding: EST names need none.
std::optional<EstPath> parse_est_path(std::string_view path);

// The body of simpleenroll/simplereenroll: base64 (line breaks and spaces anywhere, RFC 8951)
// of one DER PKCS#10 request of at most kEstMaxCsrSize bytes and nothing after it. Refuses PEM
// armour, characters outside the base64 alphabet, wrong padding and trailing data with
// Error(Input) "EST request: REASON". Does not verify the request's signature: that (and
// every policy decision) is the caller's.
CertificateRequest parse_est_csr(std::string_view body);

// `certs` (at least one; Error(Usage) otherwise) as a degenerate PKCS#7 SignedData with no
// signers and no content, "certs-only" (RFC 7030 §4.1.3, §4.2.3), DER in base64 with CRLF
// after every 64 characters. The order of `certs` is kept.
std::string est_certs_only(const std::vector<Certificate>& certs);

// simplereenroll (RFC 7030 §4.2.2): the request's Subject and subjectAltName must be those of
// the certificate being renewed. The subject compares as RFC 2253 text, case and all (so the
// string type may differ, the identity may not); the SANs as a list in any order (the issued
// certificate takes its order from the request anyway). The ChangeSubjectName attribute
// (RFC 6402) is not supported, so any change is refused. Throws Error(Input) when `current`'s
// names cannot be read (a NUL byte, see names.hpp).
Problem reenroll_problem(const CertificateRequest& csr, const Certificate& current);

}  // namespace brokertls
