#pragma once
// Unit-test helpers for the ACME client: a scripted HttpTransport (each expected request with
// its answer, checked in order), answers in the CA's shapes, and JWS decoding/verification with
// OpenSSL so a test can check what the client signed.

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "acme/client.hpp"
#include "acme/http.hpp"
#include "acme/jws.hpp"
#include "brokertls/crypto/signing.hpp"
#include "brokertls/error.hpp"

namespace brokertls::test {

using nlohmann::json;

inline const std::string kDirectoryUrl = "https://ca.test/dir";
inline const std::string kNonceUrl = "https://ca.test/nonce";
inline const std::string kAccountUrl = "https://ca.test/acct";
inline const std::string kOrderUrl = "https://ca.test/order";
inline const std::string kRevokeUrl = "https://ca.test/revoke";
inline const std::string kRenewalUrl = "https://ca.test/ari";

// The root the fake CA issues from ("Fake ACME CA", valid from yesterday for a year).
inline Certificate fake_ca_certificate(const PrivateKey& key) {
    return sign_certificate({CertificateProfile::RootCa,
                             "Fake ACME CA",
                             "",
                             {},
                             SystemClock::now() - Days(1),
                             SystemClock::now() + Days(365),
                             ""},
                            key.get(), key, nullptr);
}

inline json directory_json(bool eab_required = false) {
    return {{"newNonce", kNonceUrl},
            {"newAccount", kAccountUrl},
            {"newOrder", kOrderUrl},
            {"revokeCert", kRevokeUrl},
            {"keyChange", "https://ca.test/key"},
            {"renewalInfo", kRenewalUrl},
            {"meta",
             {{"termsOfService", "https://ca.test/tos"},
              {"externalAccountRequired", eab_required},
              {"profiles", {{"classic", "the default"}, {"shortlived", "six days"}}}}}};
}

// An answer with a JSON body and a fresh Replay-Nonce ("" = none).
inline HttpResponse answer(long status, const json& body, const std::string& nonce,
                           HttpHeaders extra = {}) {
    HttpResponse r;
    r.status = status;
    r.body = body.is_null() ? "" : body.dump();
    if (!nonce.empty()) r.headers.emplace_back("replay-nonce", nonce);
    for (auto& h : extra) r.headers.push_back(std::move(h));
    return r;
}

inline HttpResponse problem(long status, const std::string& type, const std::string& detail,
                            const std::string& nonce, HttpHeaders extra = {}) {
    extra.emplace_back("content-type", "application/problem+json");
    return answer(status, {{"type", "urn:ietf:params:acme:error:" + type}, {"detail", detail}},
                  nonce, std::move(extra));
}

struct DecodedJws {
    json header;
    std::string payload;  // decoded; "" for POST-as-GET
    std::string signing_input, signature;
};

inline DecodedJws decode_jws(const std::string& body) {
    json jws = json::parse(body);
    DecodedJws out;
    out.header = json::parse(base64url_decode(jws["protected"].get<std::string>(), "protected"));
    out.payload = base64url_decode(jws["payload"].get<std::string>(), "payload");
    out.signing_input =
        jws["protected"].get<std::string>() + "." + jws["payload"].get<std::string>();
    out.signature = base64url_decode(jws["signature"].get<std::string>(), "signature");
    return out;
}

// Verifies a JWS signature with OpenSSL: RS256 as is, ES256/ES384 after turning the raw
// r||s back into the DER form OpenSSL verifies.
inline bool verify_jws(const DecodedJws& jws, EVP_PKEY* key) {
    std::string alg = jws.header["alg"];
    std::string signature = jws.signature;
    const EVP_MD* md = alg == "ES384" ? EVP_sha384() : EVP_sha256();
    if (alg != "RS256") {
        size_t width = alg == "ES256" ? 32 : 48;
        if (signature.size() != 2 * width) return false;
        ECDSA_SIG* sig = ECDSA_SIG_new();
        auto bytes = reinterpret_cast<const unsigned char*>(signature.data());
        ECDSA_SIG_set0(sig, BN_bin2bn(bytes, static_cast<int>(width), nullptr),
                       BN_bin2bn(bytes + width, static_cast<int>(width), nullptr));
        unsigned char* der = nullptr;
        int size = i2d_ECDSA_SIG(sig, &der);
        signature.assign(reinterpret_cast<char*>(der), static_cast<size_t>(size));
        OPENSSL_free(der);
        ECDSA_SIG_free(sig);
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key) == 1 &&
              EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                               signature.size(),
                               reinterpret_cast<const unsigned char*>(jws.signing_input.data()),
                               jws.signing_input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

// Expected requests, answered in order. An unexpected request fails the test and throws.
class ScriptedTransport : public HttpTransport {
  public:
    using Responder = std::function<HttpResponse(const HttpRequest&)>;

    void expect(std::string method, std::string url, HttpResponse response) {
        steps_.push_back({std::move(method), std::move(url),
                          [response](const HttpRequest&) { return response; }});
    }
    void expect(std::string method, std::string url, Responder responder) {
        steps_.push_back({std::move(method), std::move(url), std::move(responder)});
    }
    // A POST whose JWS is decoded for the responder.
    void expect_post(std::string url, std::function<HttpResponse(const DecodedJws&)> responder) {
        steps_.push_back({"POST", std::move(url), [responder](const HttpRequest& request) {
                              return responder(decode_jws(request.body));
                          }});
    }

    HttpResponse send(const HttpRequest& request) override {
        requests.push_back(request);
        if (steps_.empty()) {
            ADD_FAILURE() << "unexpected request " << request.method << " " << request.url;
            throw Error(ErrorKind::Io, request.url + ": no scripted answer");
        }
        Step step = std::move(steps_.front());
        steps_.pop_front();
        EXPECT_EQ(request.method + " " + request.url, step.method + " " + step.url);
        return step.responder(request);
    }

    size_t remaining() const { return steps_.size(); }
    std::vector<HttpRequest> requests;

  private:
    struct Step {
        std::string method, url;
        Responder responder;
    };
    std::deque<Step> steps_;
};

// A Sleeper that records what it was asked to wait and returns at once.
struct RecordingSleeper {
    std::vector<std::chrono::milliseconds> waits;
    bool keep_going = true;
    Sleeper sleeper() {
        return [this](std::chrono::milliseconds d) {
            waits.push_back(d);
            return keep_going;
        };
    }
};

}  // namespace brokertls::test
