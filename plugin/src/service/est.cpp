#include "service/est.hpp"

#include <openssl/pkcs7.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "brokertls/crypto/handles.hpp"

namespace brokertls {
namespace {

using Pkcs7Ptr = std::unique_ptr<PKCS7, OpenSslDeleter<PKCS7_free>>;

constexpr std::string_view kPrefix = "/.well-known/est/";
constexpr std::size_t kMaxSegment = 64;
constexpr std::string_view kRequest = "EST request";

bool is_segment(std::string_view s) {
    if (s.empty() || s.size() > kMaxSegment || s == "." || s == "..") return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

// The 6-bit value of a base64 alphabet character (RFC 4648 §4), -1 for anything else.
int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

[[noreturn]] void too_large() {
    fail(ErrorKind::Input, kRequest, "larger than " + std::to_string(kEstMaxCsrSize) + " bytes");
}

// OpenSSL decodes but does not judge: EVP_DecodeBlock reads a '=' in the middle as zero bits
// ("QQ==QUFB" gives 6 bytes), reports no padding, and refuses the line breaks RFC 8951 allows;
// EVP_DecodeUpdate takes '-' as end of data and ignores what follows. So the grammar is
// checked here, without line breaks, and EVP_DecodeBlock only does the arithmetic.
std::string decode_base64(std::string_view body) {
    // Enough characters for kEstMaxCsrSize bytes (and up to two more, checked after the
    // padding is known); counted while reading, so a huge body is refused without a copy.
    constexpr std::size_t kMaxChars = (kEstMaxCsrSize + 2) / 3 * 4;
    std::string text;
    for (char c : body) {
        // RFC 8951: with or without line breaks, so any whitespace between characters.
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        if (base64_value(c) < 0 && c != '=') {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(c));
            fail(ErrorKind::Input, kRequest, std::string("character ") + hex + " is not base64");
        }
        if (text.size() == kMaxChars) too_large();
        text += c;
    }
    if (text.empty()) fail(ErrorKind::Input, kRequest, "empty body");
    if (text.size() % 4 != 0)
        fail(ErrorKind::Input, kRequest, "base64 length is not a multiple of 4 (cut short?)");
    std::size_t data_end = text.find('=');
    std::size_t padding = data_end == std::string::npos ? 0 : text.size() - data_end;
    if (padding > 2 || text.find_first_not_of('=', data_end) != std::string::npos)
        fail(ErrorKind::Input, kRequest, "'=' padding inside the base64 text");
    if (text.size() / 4 * 3 - padding > kEstMaxCsrSize) too_large();
    // The bits the padding leaves over must be zero (RFC 4648 §3.5): else two texts would
    // decode to the same bytes.
    if (padding > 0 && (base64_value(text[data_end - 1]) & (padding == 1 ? 0x03 : 0x0F)) != 0)
        fail(ErrorKind::Input, kRequest, "non-zero bits before the base64 padding");
    std::string out(text.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()),
                            static_cast<int>(text.size()));
    if (n != static_cast<int>(out.size())) fail(ErrorKind::Input, kRequest, "not base64");
    out.resize(out.size() - padding);
    return out;
}

std::string sorted_names(const std::vector<SubjectAltName>& sans) {
    std::vector<std::string> names;
    for (const auto& san : sans) names.push_back(san.to_string());
    std::sort(names.begin(), names.end());
    std::string joined;
    for (const auto& name : names) joined += (joined.empty() ? "" : ", ") + name;
    return "[" + joined + "]";
}

}  // namespace

std::optional<EstPath> parse_est_path(std::string_view path) {
    if (!path.starts_with(kPrefix)) return std::nullopt;
    path.remove_prefix(kPrefix.size());
    EstPath parsed;
    if (std::size_t slash = path.find('/'); slash != std::string_view::npos) {
        parsed.label = path.substr(0, slash);
        if (!is_segment(parsed.label)) return std::nullopt;
        path.remove_prefix(slash + 1);
    }
    if (!is_segment(path)) return std::nullopt;
    parsed.operation = path;
    return parsed;
}

CertificateRequest parse_est_csr(std::string_view body) {
    // A client that sends the PEM file as it is would otherwise hear "character 0x2D is not
    // base64"; say what it did instead.
    if (body.find("-----BEGIN") != std::string_view::npos)
        fail(ErrorKind::Input, kRequest,
             "PEM armour; EST wants the base64 of the DER request alone, without BEGIN/END "
             "lines (RFC 7030 §4.2.1)");
    std::string der = decode_base64(body);
    // d2i stops at the end of the request's own length, so what it leaves is trailing data,
    // which CertificateRequest::parse would ignore.
    const auto* begin = reinterpret_cast<const unsigned char*>(der.data());
    const unsigned char* end = begin;
    X509ReqPtr req(d2i_X509_REQ(nullptr, &end, static_cast<long>(der.size())));
    ERR_clear_error();
    if (!req) fail(ErrorKind::Input, kRequest, "not a DER PKCS#10 certificate request");
    if (auto rest = der.size() - static_cast<std::size_t>(end - begin); rest != 0)
        fail(ErrorKind::Input, kRequest,
             std::to_string(rest) + " bytes of trailing data after the DER request");
    // The checks every CSR of ours passes (a usable public key, names without NUL bytes). A
    // request whose names hold "-----BEGIN " is taken for PEM there and refused: no loss.
    return CertificateRequest::parse(der, kRequest);
}

std::string est_certs_only(const std::vector<Certificate>& certs) {
    if (certs.empty()) fail(ErrorKind::Usage, "EST certs-only", "no certificates");
    X509BorrowedStackPtr stack(sk_X509_new_null());
    for (const auto& cert : certs)
        if (!stack || !sk_X509_push(stack.get(), cert.get()))
            throw Error(ErrorKind::Io, "EST certs-only: out of memory");
    // With no signer PKCS7_sign makes the certificates-only structure; DETACHED leaves the
    // content out (RFC 5652 §5.2: a degenerate SignedData has none), PARTIAL stops before the
    // signing step there is nothing for. OpenSSL encodes the certificates in our order.
    Pkcs7Ptr p7(PKCS7_sign(nullptr, nullptr, stack.get(), nullptr, PKCS7_PARTIAL | PKCS7_DETACHED));
    BioPtr bio = memory_bio();
    if (!p7 || !i2d_PKCS7_bio(bio.get(), p7.get()))
        throw Error(ErrorKind::Io, "EST certs-only: cannot encode PKCS#7: " + openssl_reason());
    std::string der = bio_contents(bio.get());

    // 48 bytes make a 64-character line; CRLF as MIME's base64 (RFC 2045 §6.8) has it.
    std::string out;
    unsigned char line[65];
    for (std::size_t at = 0; at < der.size(); at += 48) {
        std::size_t n = std::min<std::size_t>(48, der.size() - at);
        int len = EVP_EncodeBlock(line, reinterpret_cast<const unsigned char*>(der.data() + at),
                                  static_cast<int>(n));
        out.append(reinterpret_cast<const char*>(line), static_cast<std::size_t>(len));
        out += "\r\n";
    }
    return out;
}

Problem reenroll_problem(const CertificateRequest& csr, const Certificate& current) {
    // The RFC 2253 texts, not X509_NAME_cmp: that one folds case and spaces, and "CN=Dev-1"
    // is another identity than "CN=dev-1". The text still lets a client encode the same
    // name as PrintableString where the certificate has UTF8String.
    std::string want = current.subject(), got = csr.subject();
    if (got != want)
        return "re-enrollment request subject \"" + got + "\" is not the current certificate's \"" +
               want + "\" (RFC 7030 §4.2.2)";
    std::string want_sans = sorted_names(current.subject_alt_names());
    std::string got_sans = sorted_names(csr.subject_alt_names());
    if (got_sans != want_sans)
        return "re-enrollment request subjectAltName " + got_sans +
               " is not the current certificate's " + want_sans + " (RFC 7030 §4.2.2)";
    return std::nullopt;
}

}  // namespace brokertls
