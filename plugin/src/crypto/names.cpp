#include "brokertls/crypto/names.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"

namespace brokertls {

namespace {

bool is_ip_address(std::string_view text) {
    std::string s(text);
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool looks_like_uri(std::string_view text) {
    size_t colon = text.find("://");
    if (colon == std::string_view::npos || colon == 0) return false;
    if (!std::isalpha(static_cast<unsigned char>(text[0]))) return false;
    return std::all_of(text.begin(), text.begin() + static_cast<long>(colon), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
    });
}

bool is_valid_email(std::string_view text) {
    size_t at = text.find('@');
    return at != std::string_view::npos && at > 0 && at == text.rfind('@') &&
           is_valid_dns_name(text.substr(at + 1), false) &&
           std::none_of(text.begin(), text.end(),
                        [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

int gen_type_of(SubjectAltName::Type type) {
    switch (type) {
        case SubjectAltName::Type::Dns:
            return GEN_DNS;
        case SubjectAltName::Type::Ip:
            return GEN_IPADD;
        case SubjectAltName::Type::Uri:
            return GEN_URI;
        case SubjectAltName::Type::Email:
            return GEN_EMAIL;
        case SubjectAltName::Type::Other:
            break;
    }
    throw Error(ErrorKind::Usage, "unsupported subject alternative name type");
}

// The bytes of a name as its ASN.1 length gives them. A NUL inside makes C-string readers (and
// Mosquitto's username) see a shorter name than the one checked: "admin\0.mqtt.example" passes
// a "*.mqtt.example" rule and becomes "admin". Such names are refused wherever they are read.
std::string name_bytes(std::string_view bytes, std::string_view field) {
    if (bytes.find('\0') != std::string_view::npos)
        fail(ErrorKind::Input, field, "contains a NUL byte (" + printable(bytes) + ")");
    return std::string(bytes);
}

std::string ia5_string(const ASN1_IA5STRING* s, std::string_view owner, std::string_view kind) {
    return name_bytes(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                       static_cast<size_t>(ASN1_STRING_length(s))),
                      std::string(owner) + " subjectAltName " + std::string(kind));
}

// A GENERAL_NAME of an IA5String type, built with the value's explicit length.
GENERAL_NAME* ia5_general_name(int type, const std::string& value) {
    GENERAL_NAME* gen = GENERAL_NAME_new();
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    if (!gen || !ia5 || !ASN1_STRING_set(ia5, value.data(), static_cast<int>(value.size()))) {
        GENERAL_NAME_free(gen);
        ASN1_IA5STRING_free(ia5);
        throw std::bad_alloc();
    }
    GENERAL_NAME_set0_value(gen, type, ia5);
    return gen;
}

std::string ip_to_string(const ASN1_OCTET_STRING* ip) {
    const unsigned char* data = ASN1_STRING_get0_data(ip);
    int len = ASN1_STRING_length(ip);
    char buf[INET6_ADDRSTRLEN] = {};
    if (len == 4)
        inet_ntop(AF_INET, data, buf, sizeof buf);
    else if (len == 16)
        inet_ntop(AF_INET6, data, buf, sizeof buf);
    else
        return "<invalid address>";
    return buf;
}

}  // namespace

std::string SubjectAltName::to_string() const {
    switch (type) {
        case Type::Dns:
            return "DNS:" + value;
        case Type::Ip:
            return "IP:" + value;
        case Type::Uri:
            return "URI:" + value;
        case Type::Email:
            return "email:" + value;
        case Type::Other:
            return "othername:" + value;
    }
    return value;
}

bool is_valid_dns_name(std::string_view name, bool allow_wildcard) {
    if (allow_wildcard && name.substr(0, 2) == "*.") name.remove_prefix(2);
    if (name.empty() || name.size() > 253) return false;
    if (name.back() == '.') name.remove_suffix(1);
    size_t start = 0;
    while (start <= name.size()) {
        size_t dot = name.find('.', start);
        std::string_view label = name.substr(
            start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (char c : label)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return true;
}

SubjectAltName make_san(SubjectAltName::Type type, std::string_view value) {
    std::string v(value);
    if (v.find('\0') != std::string::npos)
        fail(ErrorKind::Usage, printable(v), "contains a NUL byte");
    bool ok = false;
    switch (type) {
        case SubjectAltName::Type::Dns:
            ok = is_valid_dns_name(value);
            break;
        case SubjectAltName::Type::Ip:
            ok = is_ip_address(value);
            break;
        case SubjectAltName::Type::Uri:
            ok = looks_like_uri(value);
            break;
        case SubjectAltName::Type::Email:
            ok = is_valid_email(value);
            break;
        case SubjectAltName::Type::Other:
            break;
    }
    if (!ok) {
        std::string label = SubjectAltName{type, ""}.to_string();  // "DNS:" -> "DNS"
        label.pop_back();
        fail(ErrorKind::Usage, v, "not a valid " + label + " name");
    }
    if (type == SubjectAltName::Type::Ip) {
        // Canonical text form, so "::0001" and "::1" compare equal.
        unsigned char buf[16];
        char out[INET6_ADDRSTRLEN] = {};
        int af = inet_pton(AF_INET, v.c_str(), buf) == 1 ? AF_INET : AF_INET6;
        inet_pton(af, v.c_str(), buf);
        inet_ntop(af, buf, out, sizeof out);
        v = out;
    }
    if (type == SubjectAltName::Type::Dns)
        std::transform(v.begin(), v.end(), v.begin(),
                       [](unsigned char c) { return std::tolower(c); });
    return {type, v};
}

SubjectAltName classify_name(std::string_view name) {
    if (is_ip_address(name)) return make_san(SubjectAltName::Type::Ip, name);
    if (looks_like_uri(name)) return make_san(SubjectAltName::Type::Uri, name);
    if (name.find('@') != std::string_view::npos)
        return make_san(SubjectAltName::Type::Email, name);
    if (is_valid_dns_name(name)) return make_san(SubjectAltName::Type::Dns, name);
    fail(ErrorKind::Usage, name, "not a DNS name, IP address, URI or email address");
}

bool glob_match(std::string_view pattern, std::string_view text) {
    // Iterative matcher with single-star backtracking: linear in practice, no recursion.
    size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
    auto eq = [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) ==
               std::tolower(static_cast<unsigned char>(b));
    };
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || eq(pattern[p], text[t]))) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

GeneralNamesPtr to_general_names(const std::vector<SubjectAltName>& sans) {
    GeneralNamesPtr names(GENERAL_NAMES_new());
    if (!names) throw std::bad_alloc();
    for (const auto& san : sans) {
        if (san.value.find('\0') != std::string::npos)
            fail(ErrorKind::Usage, printable(san.value), "contains a NUL byte");
        int type = gen_type_of(san.type);
        // IP addresses are parsed to octets; the string kinds are copied with their length.
        GENERAL_NAME* gen = type == GEN_IPADD ? a2i_GENERAL_NAME(nullptr, nullptr, nullptr, type,
                                                                 san.value.c_str(), 0)
                                              : ia5_general_name(type, san.value);
        if (!gen) fail(ErrorKind::Usage, san.to_string(), "cannot encode subject alternative name");
        sk_GENERAL_NAME_push(names.get(), gen);
    }
    return names;
}

std::vector<SubjectAltName> from_general_names(const GENERAL_NAMES* names, std::string_view owner) {
    std::vector<SubjectAltName> out;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* gen = sk_GENERAL_NAME_value(names, i);
        switch (gen->type) {
            case GEN_DNS:
                out.push_back(
                    {SubjectAltName::Type::Dns, ia5_string(gen->d.dNSName, owner, "DNS")});
                break;
            case GEN_IPADD:
                out.push_back({SubjectAltName::Type::Ip, ip_to_string(gen->d.iPAddress)});
                break;
            case GEN_URI:
                out.push_back({SubjectAltName::Type::Uri,
                               ia5_string(gen->d.uniformResourceIdentifier, owner, "URI")});
                break;
            case GEN_EMAIL:
                out.push_back(
                    {SubjectAltName::Type::Email, ia5_string(gen->d.rfc822Name, owner, "email")});
                break;
            case GEN_DIRNAME:
                out.push_back({SubjectAltName::Type::Other,
                               "dirName:" + name_to_string(gen->d.directoryName)});
                break;
            default:
                out.push_back({SubjectAltName::Type::Other, "type " + std::to_string(gen->type)});
                break;
        }
    }
    return out;
}

std::string name_to_string(const X509_NAME* name) {
    BioPtr bio = memory_bio();
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    return bio_contents(bio.get());
}

std::string common_name_of(const X509_NAME* name, std::string_view owner) {
    std::string field = std::string(owner) + " subject CN";
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) return "";
    // Readers disagree on which of several CNs counts (first, last): refuse the ambiguity.
    if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
        fail(ErrorKind::Input, field, "appears more than once");
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len < 0) {
        ERR_clear_error();
        fail(ErrorKind::Input, field, "is not a valid string");
    }
    std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
    OPENSSL_free(utf8);
    return name_bytes(cn, field);
}

}  // namespace brokertls
