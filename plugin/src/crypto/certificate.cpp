#include "brokertls/crypto/certificate.hpp"

#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {

namespace {

std::string to_hex(const unsigned char* data, size_t len) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (size_t i = 0; i < len; ++i) {
        out += kDigits[data[i] >> 4];
        out += kDigits[data[i] & 0xf];
    }
    return out;
}

X509Ptr read_pem_certificate(BIO* bio) {
    return X509Ptr(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
}

}  // namespace

Certificate::Certificate(X509Ptr cert) : cert_(std::move(cert)) {
    if (!cert_) throw Error(ErrorKind::Input, "null certificate");
}

Certificate::Certificate(const Certificate& other) : cert_(other.cert_.get()) {
    if (cert_) X509_up_ref(cert_.get());
}

Certificate& Certificate::operator=(const Certificate& other) {
    if (this != &other) {
        if (other.cert_) X509_up_ref(other.cert_.get());
        cert_.reset(other.cert_.get());
    }
    return *this;
}

Certificate Certificate::parse(std::string_view data, std::string_view source) {
    ERR_clear_error();
    BioPtr bio = memory_bio(data);
    X509Ptr cert = looks_like_pem(data) ? read_pem_certificate(bio.get())
                                        : X509Ptr(d2i_X509_bio(bio.get(), nullptr));
    ERR_clear_error();
    if (!cert)
        fail(ErrorKind::Input, source,
             looks_like_pem(data) ? "not a PEM certificate" : "not a PEM or DER certificate");
    return Certificate(std::move(cert));
}

Certificate Certificate::load(const std::filesystem::path& path) {
    return parse(read_file(path), path.string());
}

std::vector<Certificate> Certificate::parse_chain(std::string_view data, std::string_view source) {
    if (!looks_like_pem(data)) return {parse(data, source)};
    ERR_clear_error();
    std::vector<Certificate> chain;
    BioPtr bio = memory_bio(data);
    while (X509Ptr cert = read_pem_certificate(bio.get())) chain.emplace_back(std::move(cert));
    // The loop ends at end of data (PEM_R_NO_START_LINE) or at a damaged block: only the
    // former is fine, so a truncated bundle is an error rather than a shorter chain.
    unsigned long err = ERR_peek_last_error();
    bool clean_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    if (chain.empty()) fail(ErrorKind::Input, source, "no PEM certificate found");
    if (!clean_end)
        fail(ErrorKind::Input, source,
             "certificate " + std::to_string(chain.size() + 1) + " in the bundle is damaged");
    return chain;
}

std::vector<Certificate> Certificate::load_chain(const std::filesystem::path& path) {
    return parse_chain(read_file(path), path.string());
}

std::string Certificate::to_pem() const {
    BioPtr bio = memory_bio();
    if (!PEM_write_bio_X509(bio.get(), cert_.get()))
        throw Error(ErrorKind::Io, "cannot encode certificate");
    return bio_contents(bio.get());
}

std::string Certificate::to_der() const {
    BioPtr bio = memory_bio();
    if (!i2d_X509_bio(bio.get(), cert_.get()))
        throw Error(ErrorKind::Io, "cannot encode certificate");
    return bio_contents(bio.get());
}

std::string Certificate::subject() const {
    return name_to_string(X509_get_subject_name(cert_.get()));
}
std::string Certificate::issuer() const {
    return name_to_string(X509_get_issuer_name(cert_.get()));
}
std::string Certificate::common_name() const {
    return common_name_of(X509_get_subject_name(cert_.get()));
}

std::string Certificate::serial_hex() const {
    BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert_.get()), nullptr));
    char* hex = BN_bn2hex(bn.get());
    std::string out = hex ? hex : "";
    OPENSSL_free(hex);
    return out;
}

std::vector<SubjectAltName> Certificate::subject_alt_names() const {
    GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert_.get(), NID_subject_alt_name, nullptr, nullptr)));
    return from_general_names(names.get());
}

TimePoint Certificate::not_before() const {
    return from_asn1_time(X509_get0_notBefore(cert_.get()));
}
TimePoint Certificate::not_after() const {
    return from_asn1_time(X509_get0_notAfter(cert_.get()));
}

bool Certificate::has_extended_key_usage() const {
    return X509_get_extension_flags(cert_.get()) & EXFLAG_XKUSAGE;
}

std::vector<std::string> Certificate::extended_key_usage() const {
    std::vector<std::string> out;
    using EkuPtr = std::unique_ptr<EXTENDED_KEY_USAGE, OpenSslDeleter<EXTENDED_KEY_USAGE_free>>;
    EkuPtr eku(static_cast<EXTENDED_KEY_USAGE*>(
        X509_get_ext_d2i(cert_.get(), NID_ext_key_usage, nullptr, nullptr)));
    for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
        const ASN1_OBJECT* obj = sk_ASN1_OBJECT_value(eku.get(), i);
        int nid = OBJ_obj2nid(obj);
        if (nid != NID_undef) {
            out.emplace_back(OBJ_nid2sn(nid));
        } else {
            char buf[80];
            OBJ_obj2txt(buf, sizeof buf, obj, 1);
            out.emplace_back(buf);
        }
    }
    return out;
}

std::vector<std::string> Certificate::key_usage() const {
    static constexpr std::array<std::pair<uint32_t, const char*>, 9> kBits{{
        {KU_DIGITAL_SIGNATURE, "digitalSignature"},
        {KU_NON_REPUDIATION, "nonRepudiation"},
        {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
        {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
        {KU_KEY_AGREEMENT, "keyAgreement"},
        {KU_KEY_CERT_SIGN, "keyCertSign"},
        {KU_CRL_SIGN, "cRLSign"},
        {KU_ENCIPHER_ONLY, "encipherOnly"},
        {KU_DECIPHER_ONLY, "decipherOnly"},
    }};
    std::vector<std::string> out;
    if (!(X509_get_extension_flags(cert_.get()) & EXFLAG_KUSAGE)) return out;
    uint32_t usage = X509_get_key_usage(cert_.get());
    for (const auto& [bit, name] : kBits)
        if (usage & bit) out.emplace_back(name);
    return out;
}

BasicConstraints Certificate::basic_constraints() const {
    BasicConstraints bc;
    int idx = X509_get_ext_by_NID(cert_.get(), NID_basic_constraints, -1);
    if (idx < 0) return bc;
    bc.present = true;
    bc.critical = X509_EXTENSION_get_critical(X509_get_ext(cert_.get(), idx)) != 0;
    bc.ca = (X509_get_extension_flags(cert_.get()) & EXFLAG_CA) != 0;
    bc.path_length = X509_get_pathlen(cert_.get());
    return bc;
}

bool Certificate::is_self_signed() const {
    return X509_self_signed(cert_.get(), 0) == 1;
}

std::string Certificate::fingerprint_sha256() const {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!X509_digest(cert_.get(), EVP_sha256(), md, &len))
        throw Error(ErrorKind::Io, "cannot hash certificate");
    return to_hex(md, len);
}

std::string Certificate::key_algorithm() const {
    return key_algorithm_name(X509_get0_pubkey(cert_.get()));
}

std::string key_algorithm_name(EVP_PKEY* pub) {
    if (!pub) return "unknown";
    if (EVP_PKEY_is_a(pub, "ED25519")) return "ed25519";
    if (EVP_PKEY_is_a(pub, "RSA")) return "rsa" + std::to_string(EVP_PKEY_get_bits(pub));
    if (EVP_PKEY_is_a(pub, "EC")) return "ecdsa-p" + std::to_string(EVP_PKEY_get_bits(pub));
    return EVP_PKEY_get0_type_name(pub);
}

bool Certificate::matches_key(const PrivateKey& key) const {
    EVP_PKEY* pub = X509_get0_pubkey(cert_.get());
    return pub && EVP_PKEY_eq(pub, key.get()) == 1;
}

bool Certificate::signed_by(const Certificate& issuer) const {
    EVP_PKEY* pub = X509_get0_pubkey(issuer.get());
    bool ok = pub && X509_verify(cert_.get(), pub) == 1;
    ERR_clear_error();
    return ok;
}

std::string chain_to_pem(const std::vector<Certificate>& chain) {
    std::string out;
    for (const auto& cert : chain) out += cert.to_pem();
    return out;
}

namespace {
constexpr std::array<int, 6> kEkuNids{NID_server_auth,   NID_client_auth, NID_code_sign,
                                      NID_email_protect, NID_time_stamp,  NID_OCSP_sign};
}  // namespace

std::optional<std::string> canonical_eku_name(std::string_view text) {
    for (int nid : kEkuNids)
        if (text == OBJ_nid2sn(nid)) return std::string(text);
    std::string dotted(text);
    bool is_oid = !dotted.empty() && dotted.find_first_not_of("0123456789.") == std::string::npos;
    if (!is_oid) return std::nullopt;
    using ObjectPtr = std::unique_ptr<ASN1_OBJECT, OpenSslDeleter<ASN1_OBJECT_free>>;
    ObjectPtr obj(OBJ_txt2obj(dotted.c_str(), 1));
    ERR_clear_error();
    if (!obj) return std::nullopt;
    int nid = OBJ_obj2nid(obj.get());
    if (nid == NID_undef) return dotted;  // a private purpose, named by its OID
    if (std::find(kEkuNids.begin(), kEkuNids.end(), nid) != kEkuNids.end())
        return std::string(OBJ_nid2sn(nid));
    return std::nullopt;  // the OID of something that is not a key purpose
}

std::string_view eku_names() {
    return "serverAuth, clientAuth, codeSigning, emailProtection, timeStamping, OCSPSigning";
}

std::optional<std::string> normalize_fingerprint(std::string_view text) {
    if (text.substr(0, 7) == "sha256:" || text.substr(0, 7) == "SHA256:") text.remove_prefix(7);
    std::string out;
    for (char c : text) {
        if (c == ':') continue;
        if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (out.size() != 64) return std::nullopt;
    return out;
}

}  // namespace brokertls
