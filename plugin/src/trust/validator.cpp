#include "trust/validator.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "brokertls/crypto/crl.hpp"
#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

constexpr std::array<std::pair<IdentitySource, std::string_view>, 6> kIdentityNames{{
    {IdentitySource::CommonName, "cn"},
    {IdentitySource::SanDns, "san_dns"},
    {IdentitySource::SanUri, "san_uri"},
    {IdentitySource::SanEmail, "san_email"},
    {IdentitySource::SubjectDn, "subject_dn"},
    {IdentitySource::Fingerprint, "fingerprint"},
}};

std::vector<fs::path> anchor_files(const fs::path& path) {
    if (!fs::is_directory(path)) return {path};
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(path)) {
        std::string ext = entry.path().extension().string();
        // Also the hashed names (abcd1234.0) that c_rehash and our capath maintenance write.
        bool hashed =
            ext.size() >= 2 && ext[0] == '.' && std::all_of(ext.begin() + 1, ext.end(), ::isdigit);
        if (entry.is_regular_file() && (ext == ".pem" || ext == ".crt" || hashed))
            files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

// Every certificate in the files (bundles) and directories named; each must be a CA.
std::vector<Certificate> load_ca_certificates(const std::vector<fs::path>& paths) {
    std::vector<Certificate> out;
    for (const auto& path : paths) {
        if (!fs::exists(path))
            fail(ErrorKind::Input, path.string(), "CA certificate file not found");
        auto files = anchor_files(path);
        if (files.empty())
            fail(ErrorKind::Input, path.string(), "directory holds no .pem or .crt certificates");
        for (const auto& file : files)
            for (auto& cert : Certificate::load_chain(file)) {
                if (!cert.is_ca())
                    fail(ErrorKind::Input, file.string(),
                         "'" + cert.subject() + "' is not a CA certificate");
                out.push_back(std::move(cert));
            }
    }
    return out;
}

RejectReason reason_for_verify_error(int err) {
    switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return RejectReason::Expired;
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return RejectReason::NotYetValid;
        default:
            return RejectReason::Untrusted;
    }
}

}  // namespace

std::optional<IdentitySource> parse_identity_source(std::string_view name) {
    for (const auto& [source, text] : kIdentityNames)
        if (text == name) return source;
    return std::nullopt;
}

std::string_view identity_source_name(IdentitySource source) {
    for (const auto& [s, text] : kIdentityNames)
        if (s == source) return text;
    return "cn";
}

std::string_view identity_source_names() {
    return "cn, san_dns, san_uri, san_email, subject_dn, fingerprint";
}

std::string_view reject_reason_name(RejectReason reason) {
    switch (reason) {
        case RejectReason::None:
            return "accepted";
        case RejectReason::NoCertificate:
            return "no_certificate";
        case RejectReason::Untrusted:
            return "untrusted";
        case RejectReason::Expired:
            return "expired";
        case RejectReason::NotYetValid:
            return "not_yet_valid";
        case RejectReason::Revoked:
            return "revoked";
        case RejectReason::MissingEku:
            return "missing_eku";
        case RejectReason::CaAsLeaf:
            return "ca_as_leaf";
        case RejectReason::ChainTooDeep:
            return "chain_too_deep";
        case RejectReason::DenyPinned:
            return "deny_pinned";
        case RejectReason::NotAllowPinned:
            return "not_allow_pinned";
        case RejectReason::NoIdentity:
            return "no_identity";
        case RejectReason::BadIdentity:
            return "bad_identity";
        case RejectReason::NameConstraints:
            return "name_constraints";
        case RejectReason::ClientIdMismatch:
            return "client_id_mismatch";
    }
    return "unknown";
}

std::shared_ptr<const TrustSnapshot> TrustSnapshot::build(const SecurityProfile& profile,
                                                          const CrlsInForce& in_force,
                                                          TimePoint now,
                                                          const TrustSnapshot* previous) {
    std::shared_ptr<TrustSnapshot> snap(new TrustSnapshot());
    snap->profile_ = profile;
    snap->store_.reset(X509_STORE_new());
    if (!snap->store_) throw std::bad_alloc();

    snap->anchors_ = load_ca_certificates(profile.trust_anchors);
    for (const auto& cert : snap->anchors_) X509_STORE_add_cert(snap->store_.get(), cert.get());
    snap->intermediates_ = load_ca_certificates(profile.intermediates);
    snap->untrusted_.reset(sk_X509_new_null());
    for (const auto& cert : snap->intermediates_) sk_X509_push(snap->untrusted_.get(), cert.get());
    if (profile.require_client_certificate && snap->anchors_.empty())
        fail(ErrorKind::Input, "security profile " + profile.name,
             "requires client certificates but names no trust_anchors");
    ERR_clear_error();

    std::vector<Certificate> cas = snap->anchors_;
    cas.insert(cas.end(), snap->intermediates_.begin(), snap->intermediates_.end());
    auto issuer_of = [&](const CrlInForce& crl) {
        return std::find_if(cas.begin(), cas.end(),
                            [&](const Certificate& a) { return a.subject() == crl.issuer(); });
    };
    // Per issuer the newest CRL and where it came from.
    using Source = std::pair<std::shared_ptr<const CrlInForce>, std::string>;
    std::map<std::string, Source> newest;
    for (const auto& path : profile.crls) {
        auto crl = std::make_shared<const CrlInForce>(CrlInForce::load(path));
        auto issuer = issuer_of(*crl);
        if (issuer == cas.end())
            fail(ErrorKind::Input, path.string(),
                 "CRL issuer '" + crl->issuer() +
                     "' is not among the trust anchors or intermediates");
        if (!crl->signed_by(*issuer))
            fail(ErrorKind::Input, path.string(),
                 "CRL signature does not verify against its issuer");
        // The same bytes as the CRL in force: share that one (a reload that did not change
        // the CRL then holds one copy of a large CRL, not two).
        if (auto it = in_force.find(crl->issuer());
            it != in_force.end() && it->second->der() == crl->der())
            crl = it->second;
        auto [it, first] = newest.try_emplace(crl->issuer(), crl, path.string());
        if (first) continue;
        // Two files of one issuer: the newer wins, the other is named.
        Source other{crl, path.string()};
        if (crl->newer_than(*it->second.first)) std::swap(it->second, other);
        snap->warnings_.push_back(other.second + ": " + other.first->version_text() + " of '" +
                                  crl->issuer() + "' is older than " + it->second.second +
                                  "; not applied");
    }
    // A CRL in force stays in force until a newer one of its issuer replaces it: a stale file
    // written over the current one must not un-revoke anything. (Dropping an issuer's CRL
    // from the profile altogether is the operator's explicit choice, and is honoured.)
    for (const auto& [issuer_dn, before] : in_force) {
        auto it = newest.find(issuer_dn);
        if (it == newest.end() || !before->newer_than(*it->second.first)) continue;
        auto issuer = issuer_of(*before);
        if (issuer == cas.end() || !before->signed_by(*issuer)) continue;  // the CA changed
        snap->warnings_.push_back(it->second.second + ": " + it->second.first->version_text() +
                                  " of '" + issuer_dn + "' is older than the CRL in force (" +
                                  before->version_text() + "), which stays in force");
        it->second = {before, "the CRL in force"};
    }
    for (auto& [issuer_dn, chosen] : newest) {
        const auto& [crl, source] = chosen;
        if (crl->next_update() < now)
            snap->warnings_.push_back(source + ": CRL is past its nextUpdate (" +
                                      to_iso8601(crl->next_update()) + "); still applied");
        snap->revoked_.add(*crl);
        snap->crls_.emplace(issuer_dn, std::move(chosen.first));
    }
    for (const auto& fp : profile.allow_fingerprints) snap->allow_.insert(fp);
    for (const auto& fp : profile.deny_fingerprints) snap->deny_.insert(fp);
    if (previous && snap->verifies_like(*previous)) {
        // The cache holds no revocation or pin result (validate() checks those on every
        // call), so what the previous snapshot verified holds here as well.
        std::lock_guard lock(previous->cache_mutex_);
        snap->cache_ = previous->cache_;
        snap->cache_order_ = previous->cache_order_;
    }
    return snap;
}

// True when X509_verify_cert and the checks verify() caches answer the same here as in
// `other`: the same anchors and intermediates (by content, in order) and the same settings.
bool TrustSnapshot::verifies_like(const TrustSnapshot& other) const {
    auto same = [](const std::vector<Certificate>& a, const std::vector<Certificate>& b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                          [](const Certificate& x, const Certificate& y) {
                              return X509_cmp(x.get(), y.get()) == 0;
                          });
    };
    const SecurityProfile& p = profile_;
    const SecurityProfile& q = other.profile_;
    return same(anchors_, other.anchors_) && same(intermediates_, other.intermediates_) &&
           p.max_chain_depth == q.max_chain_depth && p.required_eku == q.required_eku &&
           p.identity == q.identity && p.identity_allow_slash == q.identity_allow_slash;
}

bool TrustSnapshot::is_revoked(const std::string& issuer, const std::string& serial) const {
    return revoked_.contains(issuer, serial);
}

std::string TrustSnapshot::map_identity(const Certificate& leaf) const {
    auto first_san = [&](SubjectAltName::Type type) -> std::string {
        for (const auto& san : leaf.subject_alt_names())
            if (san.type == type) return san.value;
        return "";
    };
    switch (profile_.identity) {
        case IdentitySource::CommonName:
            return leaf.common_name();
        case IdentitySource::SanDns:
            return first_san(SubjectAltName::Type::Dns);
        case IdentitySource::SanUri:
            return first_san(SubjectAltName::Type::Uri);
        case IdentitySource::SanEmail:
            return first_san(SubjectAltName::Type::Email);
        case IdentitySource::SubjectDn:
            return leaf.subject();
        case IdentitySource::Fingerprint:
            return leaf.fingerprint_sha256();
    }
    return "";
}

ValidationResult TrustSnapshot::validate(X509* leaf_x509, std::string_view client_id,
                                         TimePoint now) const {
    ValidationResult r;
    if (!leaf_x509) {
        r.reason = RejectReason::NoCertificate;
        r.detail = "the client sent no certificate";
        return r;
    }
    X509_up_ref(leaf_x509);
    Certificate leaf{X509Ptr(leaf_x509)};
    r.subject = leaf.subject();
    r.fingerprint = leaf.fingerprint_sha256();
    r.issuer = leaf.issuer();
    r.serial = leaf.serial_hex();
    auto reject = [&](RejectReason reason, std::string detail) {
        r.reason = reason;
        r.detail = std::move(detail);
        return r;
    };

    // Pins first: a deny pin wins over everything, and costs one hash lookup.
    if (deny_.count(r.fingerprint))
        return reject(RejectReason::DenyPinned, "fingerprint is on deny_fingerprints");
    if (!allow_.empty() && !allow_.count(r.fingerprint))
        return reject(RejectReason::NotAllowPinned, "fingerprint is not on allow_fingerprints");
    if (leaf.is_ca())
        return reject(RejectReason::CaAsLeaf,
                      "a CA certificate was presented as a client certificate");

    std::shared_ptr<const Verified> v = cached(r.fingerprint, now);
    if (v) {
        ++cache_hits_;
    } else {
        v = verify(leaf, now, r);
        if (!v) return r;
        remember(r.fingerprint, v);
    }
    // Every certificate of the verified chain against its issuer's CRL, on every connection
    // (the cache holds no revocation result): revoking an intermediate revokes everything
    // under it.
    for (std::size_t i = 0; i < v->chain.size(); ++i) {
        const auto& link = v->chain[i];
        if (!revoked_.contains(link.issuer, link.serial.get())) continue;
        std::string what =
            i == 0 ? "serial " + link.serial_hex
                   : "issuing CA '" + link.subject + "' (serial " + link.serial_hex + ")";
        return reject(RejectReason::Revoked, what + " is on the CRL of " + link.issuer);
    }
    if (v->reason != RejectReason::None) return reject(v->reason, v->detail);
    r.identity = v->identity;
    if (profile_.client_id_must_match_identity && client_id != r.identity)
        return reject(
            RejectReason::ClientIdMismatch,
            "client id '" + printable(client_id) + "' is not the identity '" + r.identity + "'");
    return r;
}

std::shared_ptr<const TrustSnapshot::Verified> TrustSnapshot::cached(const std::string& fingerprint,
                                                                     TimePoint now) const {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(fingerprint);
    // X509_verify_cert's answer holds while every certificate of the chain is valid (OpenSSL:
    // notBefore <= now < notAfter, at whole seconds as these are).
    if (it == cache_.end() || now < it->second->valid_from || now >= it->second->valid_until)
        return nullptr;
    return it->second;
}

void TrustSnapshot::remember(const std::string& fingerprint,
                             std::shared_ptr<const Verified> v) const {
    std::lock_guard lock(cache_mutex_);
    auto [it, added] = cache_.insert_or_assign(fingerprint, std::move(v));
    if (!added) return;
    cache_order_.push_back(fingerprint);
    if (cache_order_.size() > kCacheSize) {
        cache_.erase(cache_order_.front());
        cache_order_.pop_front();
    }
}

// X509_verify_cert and the checks that depend only on the leaf and this snapshot. Returns null
// with `r` rejected when the chain does not verify (not cached: an untrusted client pays in
// full each time), else what validate() caches.
std::shared_ptr<const TrustSnapshot::Verified> TrustSnapshot::verify(const Certificate& leaf,
                                                                     TimePoint now,
                                                                     ValidationResult& r) const {
    auto reject = [&](RejectReason reason, std::string detail) {
        r.reason = reason;
        r.detail = std::move(detail);
        return nullptr;
    };
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!ctx || !X509_STORE_CTX_init(ctx.get(), store_.get(), leaf.get(), untrusted_.get()))
        throw std::bad_alloc();
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_time(param, SystemClock::to_time_t(now));
    if (X509_verify_cert(ctx.get()) != 1) {
        int err = X509_STORE_CTX_get_error(ctx.get());
        ERR_clear_error();
        RejectReason reason = reason_for_verify_error(err);
        std::string detail = X509_verify_cert_error_string(err);
        if (reason == RejectReason::Expired)
            detail += " (notAfter " + to_iso8601(leaf.not_after()) + ")";
        if (reason == RejectReason::NotYetValid)
            detail += " (notBefore " + to_iso8601(leaf.not_before()) + ")";
        if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
            detail += " (issuer '" + r.issuer +
                      "' is neither a trust anchor nor listed in intermediates)";
        return reject(reason, detail);
    }
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
    int above_leaf = chain ? sk_X509_num(chain) - 1 : 0;
    if (above_leaf > profile_.max_chain_depth)
        return reject(RejectReason::ChainTooDeep,
                      std::to_string(above_leaf) +
                          " certificates above the leaf, max_chain_depth is " +
                          std::to_string(profile_.max_chain_depth));

    auto v = std::make_shared<Verified>();
    v->valid_from = TimePoint::min();
    v->valid_until = TimePoint::max();
    for (int i = 0; i <= above_leaf; ++i) {
        X509* x = sk_X509_value(chain, i);
        v->valid_from = std::max(v->valid_from, from_asn1_time(X509_get0_notBefore(x)));
        v->valid_until = std::min(v->valid_until, from_asn1_time(X509_get0_notAfter(x)));
        if (i == above_leaf) break;  // the trust anchor: on no CRL
        X509_up_ref(x);
        Certificate cert{X509Ptr(x)};
        Asn1IntegerPtr serial(ASN1_INTEGER_dup(X509_get0_serialNumber(x)));
        if (!serial) throw std::bad_alloc();
        v->chain.push_back({cert.issuer(), cert.subject(), cert.serial_hex(), std::move(serial)});
    }
    auto outcome = [&](RejectReason reason, std::string detail) {
        v->reason = reason;
        v->detail = std::move(detail);
        return v;
    };
    if (!profile_.required_eku.empty()) {
        auto eku = leaf.extended_key_usage();
        if (std::find(eku.begin(), eku.end(), profile_.required_eku) == eku.end())
            return outcome(RejectReason::MissingEku,
                           "extended key usage lacks " + profile_.required_eku);
    }
    std::string identity, common_name;
    std::vector<SubjectAltName> sans;
    try {
        // Read every name, not just the mapped one: a name with a NUL byte means the
        // certificate says different things to different readers.
        common_name = leaf.common_name();
        sans = leaf.subject_alt_names();
        identity = map_identity(leaf);
    } catch (const Error& e) {
        return outcome(RejectReason::BadIdentity, e.what());
    }
    std::string source(identity_source_name(profile_.identity));
    if (identity.empty()) return outcome(RejectReason::NoIdentity, "certificate has no " + source);
    if (auto problem = identity_problem(identity, {profile_.identity_allow_slash}))
        return outcome(RejectReason::BadIdentity,
                       "identity '" + printable(identity) + "' (" + source + ") " + *problem);
    if (profile_.identity == IdentitySource::CommonName ||
        profile_.identity == IdentitySource::SubjectDn) {
        // OpenSSL applies a CA's nameConstraints to the leaf's SANs, and to the CN only when
        // the leaf has no DNS SAN and the CN looks like a host name: "admin" escapes them. So
        // under a constrained CA the CN counts only when it is also one of the leaf's DNS
        // names, which the constraints did cover.
        for (int i = 1; i <= above_leaf; ++i) {
            X509* ca = sk_X509_value(chain, i);
            if (X509_get_ext_by_NID(ca, NID_name_constraints, -1) < 0) continue;
            auto same = [](unsigned char a, unsigned char b) {
                return std::tolower(a) == std::tolower(b);
            };
            bool cn_is_dns = std::any_of(sans.begin(), sans.end(), [&](const SubjectAltName& s) {
                return s.type == SubjectAltName::Type::Dns &&
                       s.value.size() == common_name.size() &&
                       std::equal(s.value.begin(), s.value.end(), common_name.begin(), same);
            });
            if (!cn_is_dns)
                return outcome(RejectReason::NameConstraints,
                               "CN '" + printable(common_name) + "' is not a DNS name of the " +
                                   "certificate, and CA '" +
                                   name_to_string(X509_get_subject_name(ca)) +
                                   "' has nameConstraints, which OpenSSL does not apply to such "
                                   "a CN; a " +
                                   source + " identity under it must also be a DNS subjectAltName");
            break;
        }
    }
    v->identity = std::move(identity);
    return v;
}

}  // namespace brokertls
