#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "brokertls/crypto/handles.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/crypto/names.hpp"

namespace brokertls {

// A PKCS#10 certificate signing request.
class CertificateRequest {
  public:
    // A request for `common_name` (may be empty) and `sans`, signed with `key`.
    static CertificateRequest create(const PrivateKey& key, const std::string& common_name,
                                     const std::vector<SubjectAltName>& sans);
    static CertificateRequest parse(std::string_view data, std::string_view source);
    static CertificateRequest load(const std::filesystem::path& path);

    std::string to_pem() const;
    std::string to_der() const;

    std::string subject() const;
    std::string common_name() const;
    std::vector<SubjectAltName> subject_alt_names() const;
    bool signature_valid() const;
    // Throws Error(Input) "SOURCE: signature does not verify".
    void verify_signature(std::string_view source) const;
    EVP_PKEY* public_key() const;  // owned by the request

    X509_REQ* get() const { return req_.get(); }

  private:
    explicit CertificateRequest(X509ReqPtr req) : req_(std::move(req)) {}
    X509ReqPtr req_;
};

}  // namespace brokertls
