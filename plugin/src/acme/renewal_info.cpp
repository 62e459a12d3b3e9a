// AcmeClient: ACME Renewal Information (RFC 9773).

#include <openssl/asn1.h>

#include "acme/client.hpp"
#include "acme/jws.hpp"
#include "brokertls/error.hpp"
#include "wire.hpp"

namespace brokertls {

std::string AcmeClient::ari_cert_id(const Certificate& certificate) {
    std::string what = "certificate " + certificate.subject();
    const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(certificate.get());
    if (!aki) fail(ErrorKind::Input, what, "no authority key identifier (ARI needs one)");
    // The serial's DER INTEGER content octets: i2d gives tag, length, content.
    const ASN1_INTEGER* serial = X509_get0_serialNumber(certificate.get());
    unsigned char* der = nullptr;
    int der_size = i2d_ASN1_INTEGER(serial, &der);
    if (der_size <= 0) fail(ErrorKind::Input, what, "cannot encode the serial number");
    std::string encoded(reinterpret_cast<char*>(der), static_cast<size_t>(der_size));
    OPENSSL_free(der);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(encoded.data());
    long length = 0;
    int tag = 0, cls = 0;
    if (ASN1_get_object(&p, &length, &tag, &cls, der_size) & 0x80)
        fail(ErrorKind::Input, what, "cannot decode the serial number");
    std::string content(reinterpret_cast<const char*>(p), static_cast<size_t>(length));
    std::string key_id(reinterpret_cast<const char*>(ASN1_STRING_get0_data(aki)),
                       static_cast<size_t>(ASN1_STRING_length(aki)));
    return base64url(key_id) + "." + base64url(content);
}

std::optional<RenewalInfo> AcmeClient::renewal_info(const Certificate& certificate) {
    std::string base = directory().renewal_info;
    if (base.empty()) return std::nullopt;
    if (base.back() != '/') base += '/';
    std::string url = base + ari_cert_id(certificate);
    HttpResponse response = get("renewalInfo", url);
    std::string what = "acme renewalInfo " + url;
    auto object = acme_wire::parse_object(response, what);
    auto window = object.find("suggestedWindow");
    if (window == object.end() || !window->is_object())
        fail(ErrorKind::Input, what, "no suggestedWindow");
    RenewalInfo info;
    info.window_start =
        acme_wire::parse_rfc3339(acme_wire::required_string(*window, "start", what), what);
    info.window_end =
        acme_wire::parse_rfc3339(acme_wire::required_string(*window, "end", what), what);
    if (info.window_end < info.window_start)
        fail(ErrorKind::Input, what, "suggestedWindow ends before it starts");
    info.explanation_url = acme_wire::string_member(object, "explanationURL", what);
    if (auto header = response.header("retry-after"))
        info.retry_after = parse_retry_after(*header, clock_.now());
    return info;
}

}  // namespace brokertls
