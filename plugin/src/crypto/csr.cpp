#include "brokertls/crypto/csr.hpp"

#include <openssl/pem.h>

#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {

namespace {
using ExtensionsPtr =
    std::unique_ptr<STACK_OF(X509_EXTENSION), decltype([](STACK_OF(X509_EXTENSION) * s) {
                        sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
                    })>;
}

CertificateRequest CertificateRequest::create(const PrivateKey& key, const std::string& common_name,
                                              const std::vector<SubjectAltName>& sans) {
    X509ReqPtr req(X509_REQ_new());
    if (!req) throw std::bad_alloc();
    X509_REQ_set_version(req.get(), 0);
    X509_NAME* name = X509_REQ_get_subject_name(req.get());
    if (common_name.find('\0') != std::string::npos)
        fail(ErrorKind::Usage, printable(common_name), "contains a NUL byte");
    // The explicit length (not -1, which means strlen) keeps the name the caller checked.
    if (!common_name.empty() &&
        !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(common_name.data()),
                                    static_cast<int>(common_name.size()), -1, 0))
        fail(ErrorKind::Usage, common_name,
             "cannot be used as a common name (at most 64 characters)");
    if (!sans.empty()) {
        GeneralNamesPtr names = to_general_names(sans);
        ExtensionsPtr exts(sk_X509_EXTENSION_new_null());
        X509_EXTENSION* ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get());
        if (!ext) throw Error(ErrorKind::Io, "cannot encode subjectAltName: " + openssl_reason());
        sk_X509_EXTENSION_push(exts.get(), ext);
        X509_REQ_add_extensions(req.get(), exts.get());
    }
    if (!X509_REQ_set_pubkey(req.get(), key.get()) ||
        X509_REQ_sign(req.get(), key.get(), key.signature_digest()) <= 0)
        throw Error(ErrorKind::Io, "cannot sign certificate request: " + openssl_reason());
    return CertificateRequest(std::move(req));
}

CertificateRequest CertificateRequest::parse(std::string_view data, std::string_view source) {
    ERR_clear_error();
    BioPtr bio = memory_bio(data);
    X509ReqPtr req(looks_like_pem(data)
                       ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr)
                       : d2i_X509_REQ_bio(bio.get(), nullptr));
    ERR_clear_error();
    if (!req) fail(ErrorKind::Input, source, "not a PEM or DER certificate request");
    if (!X509_REQ_get0_pubkey(req.get()))
        fail(ErrorKind::Input, source, "certificate request has no usable public key");
    CertificateRequest parsed(std::move(req));
    try {
        // Names that cannot be read as they are encoded (a NUL inside) make the request unusable.
        parsed.common_name();
        parsed.subject_alt_names();
    } catch (const Error& e) {
        fail(ErrorKind::Input, source, e.what());
    }
    return parsed;
}

CertificateRequest CertificateRequest::load(const std::filesystem::path& path) {
    return parse(read_file(path), path.string());
}

std::string CertificateRequest::to_pem() const {
    BioPtr bio = memory_bio();
    if (!PEM_write_bio_X509_REQ(bio.get(), req_.get()))
        throw Error(ErrorKind::Io, "cannot encode certificate request");
    return bio_contents(bio.get());
}

std::string CertificateRequest::to_der() const {
    BioPtr bio = memory_bio();
    if (!i2d_X509_REQ_bio(bio.get(), req_.get()))
        throw Error(ErrorKind::Io, "cannot encode certificate request");
    return bio_contents(bio.get());
}

std::string CertificateRequest::subject() const {
    return name_to_string(X509_REQ_get_subject_name(req_.get()));
}
std::string CertificateRequest::common_name() const {
    return common_name_of(X509_REQ_get_subject_name(req_.get()), "CSR");
}

std::vector<SubjectAltName> CertificateRequest::subject_alt_names() const {
    ExtensionsPtr exts(X509_REQ_get_extensions(req_.get()));
    for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts.get()); ++i) {
        X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
        GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
        return from_general_names(names.get(), "CSR");
    }
    ERR_clear_error();
    return {};
}

bool CertificateRequest::signature_valid() const {
    EVP_PKEY* pub = X509_REQ_get0_pubkey(req_.get());
    bool ok = pub && X509_REQ_verify(req_.get(), pub) == 1;
    ERR_clear_error();
    return ok;
}

void CertificateRequest::verify_signature(std::string_view source) const {
    if (!signature_valid()) fail(ErrorKind::Input, source, "signature does not verify");
}

EVP_PKEY* CertificateRequest::public_key() const {
    return X509_REQ_get0_pubkey(req_.get());
}

}  // namespace brokertls
