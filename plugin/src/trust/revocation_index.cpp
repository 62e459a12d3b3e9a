#include "trust/revocation_index.hpp"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <optional>

#include "brokertls/crypto/crl.hpp"
#include "brokertls/crypto/handles.hpp"
#include "brokertls/crypto/names.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {

// Why this file walks the DER of a CRL itself (with OpenSSL's ASN1_get_object and d2i_*
// primitives for every field) instead of d2i_X509_CRL: the parsed X509_CRL of a 1,000,000-entry
// CRL takes seconds and hundreds of megabytes (an X509_REVOKED, its ASN1_INTEGER, ASN1_TIME and
// extensions per entry), all of it only to be copied into an index and thrown away. Here the
// entries are read in place; the signature is still checked by OpenSSL (ASN1_item_verify over
// the exact signed bytes, as X509_CRL_verify does).

namespace {

constexpr std::size_t kMaxSerialBytes = 64;

using X509AlgorPtr = std::unique_ptr<X509_ALGOR, OpenSslDeleter<X509_ALGOR_free>>;
using BitStringPtr = std::unique_ptr<ASN1_BIT_STRING, OpenSslDeleter<ASN1_BIT_STRING_free>>;
struct ExtensionsFree {
    void operator()(X509_EXTENSIONS* e) const noexcept {
        sk_X509_EXTENSION_pop_free(e, X509_EXTENSION_free);
    }
};
using ExtensionsPtr = std::unique_ptr<X509_EXTENSIONS, ExtensionsFree>;

// One DER TLV: where it starts, its header and contents lengths, and its tag.
struct Tlv {
    std::size_t offset = 0, header = 0, length = 0;
    int tag = 0, cls = 0;
    bool constructed = false;
    std::size_t contents() const { return offset + header; }
    std::size_t end() const { return offset + header + length; }
    std::size_t size() const { return header + length; }
    bool is(int universal_tag) const { return cls == V_ASN1_UNIVERSAL && tag == universal_tag; }
};

const unsigned char* bytes(std::string_view der, std::size_t offset) {
    return reinterpret_cast<const unsigned char*>(der.data()) + offset;
}

// The TLV at `at`, which must end by `end`; nullopt when there is none or it is malformed
// (ASN1_get_object checks the length against the bytes left; indefinite lengths are not DER).
std::optional<Tlv> read_tlv(std::string_view der, std::size_t at, std::size_t end) {
    if (at >= end) return std::nullopt;
    const unsigned char* start = bytes(der, at);
    const unsigned char* p = start;
    long length = 0;
    int tag = 0, cls = 0;
    int ret = ASN1_get_object(&p, &length, &tag, &cls, static_cast<long>(end - at));
    if ((ret & 0x80) || ret == 0x21) {
        ERR_clear_error();
        return std::nullopt;
    }
    return Tlv{at,  static_cast<std::size_t>(p - start), static_cast<std::size_t>(length), tag,
               cls, (ret & V_ASN1_CONSTRUCTED) != 0};
}

// d2i of the bytes of the TLV `t` (one whole TLV, so a d2i that succeeds consumes them all);
// null when they are not a `T`.
template <class T, class D2i>
T* decode(std::string_view der, const Tlv& t, D2i d2i) {
    const unsigned char* p = bytes(der, t.offset);
    T* value = d2i(nullptr, &p, static_cast<long>(t.size()));
    ERR_clear_error();
    return value;
}

bool is_time(const Tlv& t) {
    return t.is(V_ASN1_UTCTIME) || t.is(V_ASN1_GENERALIZEDTIME);
}

// The sign and magnitude of a serial, leading zero bytes dropped.
struct SerialBytes {
    bool negative = false;
    const unsigned char* data = nullptr;
    std::size_t length = 0;
};

SerialBytes serial_bytes(const ASN1_INTEGER* serial) {
    SerialBytes s{ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER, ASN1_STRING_get0_data(serial),
                  static_cast<std::size_t>(ASN1_STRING_length(serial))};
    while (s.length > 0 && *s.data == 0) ++s.data, --s.length;
    return s;
}

// A record: one sign byte, then the magnitude right-aligned in width - 1 bytes.
void write_record(unsigned char* out, std::size_t width, const SerialBytes& s) {
    std::memset(out, 0, width);
    out[0] = s.negative ? 1 : 0;
    std::memcpy(out + width - s.length, s.data, s.length);
}

}  // namespace

namespace {

using Buffer = std::unique_ptr<unsigned char, CrlInForceBufferFree>;

// The DER of the first "X509 CRL" PEM block of `data`, decoded in place (the DER is shorter
// than its base64, and each output byte is written behind the input read), so a CRL of 50 MB
// needs no second buffer. PEM_bytes_read_bio reads line by line and takes over a second of CPU
// for a 1,000,000-entry CRL; EVP_DecodeUpdate over the body at once takes a tenth of that. A
// block with PEM headers (encryption: never seen on a CRL) is left to PEM_bytes_read_bio.
// Returns the DER length, or -1.
long pem_to_der_in_place(unsigned char* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    constexpr std::string_view begin = "-----BEGIN " PEM_STRING_X509_CRL "-----";
    constexpr std::string_view end = "-----END " PEM_STRING_X509_CRL "-----";
    std::size_t at = 0;
    while ((at = text.find(begin, at)) != std::string_view::npos && at > 0 && text[at - 1] != '\n')
        at += begin.size();
    if (at == std::string_view::npos) return -1;
    std::size_t body = text.find('\n', at);
    if (body == std::string_view::npos) return -1;
    ++body;
    std::size_t stop = text.find(end, body);
    if (stop == std::string_view::npos ||
        text.substr(body, stop - body).find(':') != std::string_view::npos ||
        stop - body > INT_MAX) {
        BioPtr bio = memory_bio(text);
        unsigned char* der = nullptr;
        char* name = nullptr;
        long length = 0;
        ERR_clear_error();
        int ok = PEM_bytes_read_bio(&der, &length, &name, PEM_STRING_X509_CRL, bio.get(), nullptr,
                                    nullptr);
        ERR_clear_error();
        OPENSSL_free(name);
        if (ok != 1) return -1;
        std::memcpy(data, der, static_cast<std::size_t>(length));  // shorter than the PEM
        OPENSSL_free(der);
        return length;
    }
    std::unique_ptr<EVP_ENCODE_CTX, OpenSslDeleter<EVP_ENCODE_CTX_free>> ctx(EVP_ENCODE_CTX_new());
    if (!ctx) throw std::bad_alloc();
    EVP_DecodeInit(ctx.get());
    int out = 0, last = 0;
    if (EVP_DecodeUpdate(ctx.get(), data, &out, data + body, static_cast<int>(stop - body)) < 0 ||
        EVP_DecodeFinal(ctx.get(), data + out, &last) != 1)
        return -1;
    return out + last;
}

}  // namespace

void CrlInForceBufferFree::operator()(unsigned char* p) const noexcept {
    OPENSSL_free(p);
}

CrlInForce CrlInForce::parse(std::string_view data, std::string_view source) {
    Buffer buffer(static_cast<unsigned char*>(OPENSSL_malloc(data.empty() ? 1 : data.size())));
    if (!buffer) throw std::bad_alloc();
    std::memcpy(buffer.get(), data.data(), data.size());
    return from_buffer(std::move(buffer), data.size(), source);
}

CrlInForce CrlInForce::load(const std::filesystem::path& path) {
    // Read with a BIO into one OpenSSL buffer of the file's size, which the PEM is decoded
    // into in place and then shrunk: read_file's string would have to be copied into one,
    // a second buffer of the file's size on top of the peak while a changed CRL is applied.
    std::error_code ec;
    std::uintmax_t size = std::filesystem::file_size(path, ec);
    BioPtr bio(ec ? nullptr : BIO_new_file(path.c_str(), "rb"));
    if (!bio) return parse(read_file(path), path.string());  // read_file names the error
    Buffer buffer(static_cast<unsigned char*>(OPENSSL_malloc(size ? size : 1)));
    if (!buffer) throw std::bad_alloc();
    std::size_t got = 0;
    while (got < size) {
        int n = BIO_read(bio.get(), buffer.get() + got,
                         static_cast<int>(std::min<std::uintmax_t>(size - got, 1 << 30)));
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    unsigned char more = 0;
    if (got != size || BIO_read(bio.get(), &more, 1) > 0)  // the file changed while read
        return parse(read_file(path), path.string());
    return from_buffer(std::move(buffer), got, path.string());
}

CrlInForce CrlInForce::from_buffer(Buffer buffer, std::size_t size, std::string_view source) {
    CrlInForce crl;
    std::string_view data(reinterpret_cast<const char*>(buffer.get()), size);
    if (looks_like_pem(data)) {
        long length = pem_to_der_in_place(buffer.get(), size);
        if (length < 0) fail(ErrorKind::Input, source, "not a PEM or DER CRL");
        size = static_cast<std::size_t>(length);
        // Give the base64's extra quarter back.
        if (auto* shrunk =
                static_cast<unsigned char*>(OPENSSL_realloc(buffer.get(), size ? size : 1)))
            buffer.release(), buffer.reset(shrunk);
    }
    crl.der_ = std::move(buffer);
    crl.der_size_ = size;
    return parse_der(std::move(crl), source);
}

CrlInForce CrlInForce::parse_der(CrlInForce crl, std::string_view source) {
    auto bad = [&]() -> CrlInForce { fail(ErrorKind::Input, source, "not a PEM or DER CRL"); };
    std::string_view der = crl.der();

    // CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
    auto outer = read_tlv(der, 0, der.size());
    if (!outer || !outer->is(V_ASN1_SEQUENCE) || outer->end() != der.size()) return bad();
    auto tbs = read_tlv(der, outer->contents(), outer->end());
    if (!tbs || !tbs->is(V_ASN1_SEQUENCE)) return bad();
    auto alg = read_tlv(der, tbs->end(), outer->end());
    if (!alg || !alg->is(V_ASN1_SEQUENCE)) return bad();
    auto sig = read_tlv(der, alg->end(), outer->end());
    if (!sig || !sig->is(V_ASN1_BIT_STRING) || sig->end() != outer->end()) return bad();
    crl.tbs_ = {tbs->offset, tbs->size()};
    crl.outer_alg_ = {alg->offset, alg->size()};
    crl.signature_ = {sig->offset, sig->size()};

    // TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature AlgorithmIdentifier,
    //   issuer Name, thisUpdate Time, nextUpdate Time OPTIONAL,
    //   revokedCertificates SEQUENCE OF SEQUENCE {...} OPTIONAL, crlExtensions [0] OPTIONAL }
    std::size_t at = tbs->contents(), end = tbs->end();
    auto next = [&]() { return read_tlv(der, at, end); };
    auto t = next();
    if (t && t->is(V_ASN1_INTEGER)) at = t->end(), t = next();
    if (!t || !t->is(V_ASN1_SEQUENCE)) return bad();
    crl.inner_alg_ = {t->offset, t->size()};
    at = t->end(), t = next();
    if (!t || !t->is(V_ASN1_SEQUENCE)) return bad();
    X509NamePtr issuer(decode<X509_NAME>(der, *t, d2i_X509_NAME));
    if (!issuer) return bad();
    crl.issuer_ = name_to_string(issuer.get());
    at = t->end(), t = next();
    if (!t || !is_time(*t)) return bad();
    Asn1TimePtr this_update(decode<ASN1_TIME>(der, *t, d2i_ASN1_TIME));
    if (!this_update) return bad();
    crl.this_update_ = from_asn1_time(this_update.get());
    at = t->end(), t = next();
    if (t && is_time(*t)) {
        Asn1TimePtr next_update(decode<ASN1_TIME>(der, *t, d2i_ASN1_TIME));
        if (!next_update) return bad();
        crl.next_update_ = from_asn1_time(next_update.get());
        at = t->end(), t = next();
    }
    if (t && t->is(V_ASN1_SEQUENCE)) {
        // Each entry: SEQUENCE { userCertificate INTEGER, revocationDate Time,
        // crlEntryExtensions OPTIONAL }; checked here so the index can read them blindly.
        crl.revoked_ = {t->contents(), t->length};
        for (std::size_t e = t->contents(); e < t->end();) {
            auto entry = read_tlv(der, e, t->end());
            if (!entry || !entry->is(V_ASN1_SEQUENCE)) return bad();
            auto serial = read_tlv(der, entry->contents(), entry->end());
            if (!serial || !serial->is(V_ASN1_INTEGER) || serial->constructed ||
                serial->length == 0)
                return bad();
            // Every record of an issuer is as wide as its longest serial: one absurd serial
            // would multiply the index by its length.
            if (serial->length > kMaxSerialBytes)
                fail(ErrorKind::Input, source,
                     "a revoked serial number of " + std::to_string(serial->length) +
                         " bytes (RFC 5280 allows 20; at most " + std::to_string(kMaxSerialBytes) +
                         " are accepted)");
            auto date = read_tlv(der, serial->end(), entry->end());
            if (!date || !is_time(*date)) return bad();
            if (date->end() != entry->end()) {
                auto exts = read_tlv(der, date->end(), entry->end());
                if (!exts || !exts->is(V_ASN1_SEQUENCE) || exts->end() != entry->end())
                    return bad();
            }
            ++crl.revoked_count_;
            e = entry->end();
        }
        at = t->end(), t = next();
    }
    if (t && t->cls == V_ASN1_CONTEXT_SPECIFIC && t->tag == 0 && t->constructed) {
        auto exts_tlv = read_tlv(der, t->contents(), t->end());
        if (!exts_tlv || exts_tlv->end() != t->end()) return bad();
        ExtensionsPtr exts(decode<X509_EXTENSIONS>(der, *exts_tlv, d2i_X509_EXTENSIONS));
        if (!exts) return bad();
        Asn1IntegerPtr n(static_cast<ASN1_INTEGER*>(
            X509V3_get_d2i(exts.get(), NID_crl_number, nullptr, nullptr)));
        crl.number_ = n ? ASN1_INTEGER_get(n.get()) : -1;
        ERR_clear_error();
        at = t->end(), t = next();
    }
    if (at != end) return bad();
    return crl;
}

bool CrlInForce::newer_than(const CrlInForce& other) const {
    return crl_supersedes(number_, this_update_, other.number_, other.this_update_);
}

std::string CrlInForce::version_text() const {
    return crl_version_text(number_, this_update_);
}

bool CrlInForce::signed_by(const Certificate& issuer) const {
    EVP_PKEY* pub = X509_get0_pubkey(issuer.get());
    auto tlv = [&](const Span& s) { return Tlv{s.offset, 0, s.length}; };
    std::string_view der = this->der();
    X509AlgorPtr outer(decode<X509_ALGOR>(der, tlv(outer_alg_), d2i_X509_ALGOR));
    X509AlgorPtr inner(decode<X509_ALGOR>(der, tlv(inner_alg_), d2i_X509_ALGOR));
    BitStringPtr signature(decode<ASN1_BIT_STRING>(der, tlv(signature_), d2i_ASN1_BIT_STRING));
    // As X509_CRL_verify: the algorithm inside the signed part must be the one used.
    if (!pub || !outer || !inner || !signature || tbs_.length > INT_MAX ||
        X509_ALGOR_cmp(outer.get(), inner.get()) != 0)
        return false;
    const unsigned char* tbs = bytes(der, tbs_.offset);
    int md_nid = NID_undef, key_nid = NID_undef;
    bool known = OBJ_find_sigid_algs(OBJ_obj2nid(outer->algorithm), &md_nid, &key_nid) == 1;
    bool ok = false;
    if (known && (md_nid != NID_undef || key_nid == NID_ED25519 || key_nid == NID_ED448)) {
        // The signed bytes straight from our buffer. ASN1_item_verify would first copy them
        // (i2d of the tbsCertList: 49 MB for 1,000,000 entries, the largest part of the peak
        // while a changed CRL is applied beside the one in force). This is ASN1_item_verify's
        // own path for an algorithm with a digest, or pure EdDSA: the same checks (the key is
        // of the algorithm's type, a whole number of signature bytes), then EVP_DigestVerify.
        const EVP_MD* md = md_nid == NID_undef ? nullptr : EVP_get_digestbynid(md_nid);
        std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX_free>> ctx(EVP_MD_CTX_new());
        if (!ctx) throw std::bad_alloc();
        ok = (md || md_nid == NID_undef) && EVP_PKEY_is_a(pub, OBJ_nid2sn(key_nid)) &&
             (signature->flags & 0x07) == 0 &&
             EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, pub) == 1 &&
             EVP_DigestVerify(ctx.get(), signature->data,
                              static_cast<std::size_t>(signature->length), tbs, tbs_.length) == 1;
    } else if (known) {
        // RSA-PSS (parameters in the AlgorithmIdentifier that only OpenSSL's internals map to
        // a context): ASN1_item_verify, over the tbsCertList as an ASN1_ANY holding a
        // SEQUENCE, which OpenSSL keeps as its encoding and writes back byte for byte. The ANY
        // borrows our buffer (public OpenSSL structs, nothing freed).
        ASN1_STRING borrowed{};
        borrowed.type = V_ASN1_SEQUENCE;
        borrowed.length = static_cast<int>(tbs_.length);
        borrowed.data = const_cast<unsigned char*>(tbs);
        ASN1_TYPE any{};
        any.type = V_ASN1_SEQUENCE;
        any.value.sequence = &borrowed;
        ok = ASN1_item_verify(ASN1_ITEM_rptr(ASN1_ANY), outer.get(), signature.get(), &any, pub) ==
             1;
    }
    ERR_clear_error();
    return ok;
}

std::string CrlInForce::to_pem() const {
    BioPtr bio = memory_bio();
    if (!PEM_write_bio(bio.get(), PEM_STRING_X509_CRL, "", der_.get(),
                       static_cast<long>(der_size_)))
        throw Error(ErrorKind::Io, "cannot encode CRL");
    return bio_contents(bio.get());
}

void RevocationIndex::add(const CrlInForce& crl) {
    std::string_view der = crl.der();
    std::size_t begin = crl.revoked_.offset, end = begin + crl.revoked_.length;
    // The serial INTEGER of each entry (CrlInForce::parse checked the structure).
    auto for_each_serial = [&](auto&& fn) {
        for (std::size_t e = begin; e < end;) {
            Tlv entry = *read_tlv(der, e, end);
            fn(*read_tlv(der, entry.contents(), entry.end()));
            e = entry.end();
        }
    };
    Serials s;
    // Wide enough for the longest INTEGER (its contents are at least its magnitude).
    for_each_serial([&](const Tlv& serial) { s.width = std::max(s.width, 1 + serial.length); });
    std::vector<unsigned char> records(crl.revoked_count_ * s.width);
    std::size_t n = 0;
    Asn1IntegerPtr value(ASN1_INTEGER_new());
    if (!value) throw std::bad_alloc();
    for_each_serial([&](const Tlv& serial) {
        const unsigned char* p = bytes(der, serial.offset);
        ASN1_INTEGER* reused = value.get();
        // d2i_ASN1_INTEGER reuses `value` (two's complement to sign and magnitude, as for
        // X509_get0_serialNumber, so both sides of a lookup read serials the same way).
        bool ok = d2i_ASN1_INTEGER(&reused, &p, static_cast<long>(serial.size())) != nullptr;
        // On a bad serial OpenSSL frees the object it was given (and sets `reused` to null):
        // `value` must not free it again (the crl fuzz target found that double free).
        if (reused != value.get()) {
            (void)value.release();
            value.reset(reused);
        }
        if (!ok) throw Error(ErrorKind::Input, "CRL of " + crl.issuer_ + ": bad serial number");
        write_record(records.data() + n++ * s.width, s.width, serial_bytes(value.get()));
    });
    auto less = [&](const unsigned char* a, const unsigned char* b) {
        return std::memcmp(a, b, s.width) < 0;
    };
    bool sorted = true;
    for (std::size_t i = 1; i < n && sorted; ++i)
        sorted = !less(records.data() + i * s.width, records.data() + (i - 1) * s.width);
    if (!sorted) {
        // Sorted in place: std::sort cannot move records whose width is known only at run
        // time, so it sorts their numbers, and the records then follow that order cycle by
        // cycle. A sorted copy would cost the records' size once more (17 MB for 1,000,000
        // entries) on top of the peak while a changed CRL is applied.
        if (n > UINT32_MAX) fail(ErrorKind::Input, "CRL of " + crl.issuer_, "too many entries");
        std::vector<std::uint32_t> order(n);  // order[i]: the record that belongs at i
        std::iota(order.begin(), order.end(), 0u);
        std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
            return less(records.data() + a * s.width, records.data() + b * s.width);
        });
        unsigned char held[kMaxSerialBytes + 1];
        for (std::size_t start = 0; start < n; ++start) {
            if (order[start] == start) continue;
            std::memcpy(held, records.data() + start * s.width, s.width);
            std::size_t at = start;
            while (order[at] != start) {
                std::size_t from = order[at];
                std::memcpy(records.data() + at * s.width, records.data() + from * s.width,
                            s.width);
                order[at] = static_cast<std::uint32_t>(at);
                at = from;
            }
            std::memcpy(records.data() + at * s.width, held, s.width);
            order[at] = static_cast<std::uint32_t>(at);
        }
    }
    s.records = std::move(records);
    by_issuer_.insert_or_assign(crl.issuer_, std::move(s));
}

bool RevocationIndex::find(const Serials& s, const ASN1_INTEGER* serial) {
    SerialBytes b = serial_bytes(serial);
    if (b.length + 1 > s.width) return false;  // longer than every serial on the CRL
    unsigned char k[kMaxSerialBytes + 1];      // s.width is at most this
    write_record(k, s.width, b);
    std::size_t lo = 0, hi = s.records.size() / s.width;
    while (lo < hi) {
        std::size_t mid = lo + (hi - lo) / 2;
        int c = std::memcmp(s.records.data() + mid * s.width, k, s.width);
        if (c == 0) return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool RevocationIndex::contains(std::string_view issuer, const ASN1_INTEGER* serial) const {
    auto it = by_issuer_.find(issuer);
    return serial && it != by_issuer_.end() && find(it->second, serial);
}

bool RevocationIndex::contains(std::string_view issuer, std::string_view serial_hex) const {
    std::string hex(serial_hex);
    BIGNUM* bn = nullptr;
    if (hex.empty() || BN_hex2bn(&bn, hex.c_str()) != static_cast<int>(hex.size())) {
        BN_free(bn);
        return false;  // not hex: no serial has it
    }
    BignumPtr owned(bn);
    Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn, nullptr));
    if (!serial) throw std::bad_alloc();
    return contains(issuer, serial.get());
}

std::size_t RevocationIndex::size() const {
    std::size_t n = 0;
    for (const auto& [issuer, s] : by_issuer_) n += s.records.size() / s.width;
    return n;
}

std::size_t RevocationIndex::memory_bytes() const {
    std::size_t n = 0;
    for (const auto& [issuer, s] : by_issuer_) n += s.records.capacity() + issuer.capacity();
    return n;
}

}  // namespace brokertls
