#include "deploy/server_material.hpp"

#include <algorithm>
#include <cctype>

#include "brokertls/error.hpp"

namespace brokertls {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

bool san_covers(const SubjectAltName& san, const SubjectAltName& wanted) {
    if (san.type != wanted.type) return false;
    if (san.type != SubjectAltName::Type::Dns) return san.value == wanted.value;
    if (iequals(san.value, wanted.value)) return true;
    if (san.value.rfind("*.", 0) != 0) return false;
    size_t dot = wanted.value.find('.');
    return dot != std::string::npos && dot > 0 &&
           iequals(san.value.substr(1), wanted.value.substr(dot));
}

Problem server_material_problem(const ServerMaterial& m, const std::vector<SubjectAltName>& names,
                                TimePoint now) {
    if (m.chain.empty()) return "no certificate";
    const Certificate& leaf = m.leaf();
    if (!leaf.matches_key(m.key)) return "the private key does not match the certificate";
    if (now < leaf.not_before())
        return "the certificate is not valid before " + to_iso8601(leaf.not_before());
    if (now > leaf.not_after()) return "the certificate expired on " + to_iso8601(leaf.not_after());
    if (leaf.is_ca()) return "the certificate is a CA certificate";
    if (leaf.has_extended_key_usage()) {
        auto eku = leaf.extended_key_usage();
        if (std::find(eku.begin(), eku.end(), "serverAuth") == eku.end())
            return "the certificate's EKU does not allow serverAuth";
    }
    for (size_t i = 0; i + 1 < m.chain.size(); ++i)
        if (!m.chain[i].signed_by(m.chain[i + 1]))
            return "the chain is broken: '" + m.chain[i].subject() + "' is not signed by '" +
                   m.chain[i + 1].subject() + "'";
    auto sans = leaf.subject_alt_names();
    for (const auto& wanted : names)
        if (std::none_of(sans.begin(), sans.end(),
                         [&](const SubjectAltName& s) { return san_covers(s, wanted); }))
            return "the certificate does not cover " + wanted.to_string();
    return std::nullopt;
}

}  // namespace brokertls
