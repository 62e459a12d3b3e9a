// AcmeClient: certificate download with alternate chains, chain choice, revocation.

#include "acme/client.hpp"
#include "acme/jws.hpp"
#include "brokertls/error.hpp"
#include "wire.hpp"

namespace brokertls {

using acme_wire::json;

namespace {

constexpr const char* kPemChain = "application/pem-certificate-chain";

// Link targets may be relative (RFC 8288 §3.1); ACME CAs send absolute URLs, but a path is
// resolved against the request's origin rather than refused.
std::string resolve(const std::string& base, const std::string& target) {
    if (target.rfind("https://", 0) == 0 || target.rfind("http://", 0) == 0) return target;
    auto scheme_end = base.find("://");
    auto origin_end = base.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
    std::string origin = base.substr(0, origin_end);
    return origin + (target.rfind('/', 0) == 0 ? "" : "/") + target;
}

}  // namespace

std::vector<std::string> AcmeClient::download_chains(const std::string& certificate_url) {
    auto fetch = [&](const std::string& url) {
        HttpResponse response = post("certificate", url, "", false, kPemChain);
        // Parsing checks the answer is a certificate bundle, naming the URL otherwise.
        Certificate::parse_chain(response.body, "acme certificate " + url);
        return response;
    };
    HttpResponse first = fetch(certificate_url);
    std::vector<std::string> chains{first.body};
    for (const auto& link : first.links("alternate"))
        chains.push_back(fetch(resolve(certificate_url, link)).body);
    return chains;
}

std::string AcmeClient::pick_chain(const std::vector<std::string>& chains,
                                   const std::string& issuer_cn) {
    if (chains.empty()) fail(ErrorKind::Usage, "pick_chain", "no chains to choose from");
    if (issuer_cn.empty()) return chains.front();
    for (const auto& chain : chains) {
        auto certs = Certificate::parse_chain(chain, "certificate chain");
        const Certificate& top = certs.back();
        if (common_name_of(X509_get_issuer_name(top.get())) == issuer_cn ||
            top.common_name() == issuer_cn)
            return chain;
    }
    return chains.front();
}

void AcmeClient::revoke(const Certificate& certificate, int reason) {
    const std::string& url = directory().revoke_cert;
    if (url.empty()) fail(ErrorKind::State, "acme " + directory_url_, "the CA has no revokeCert");
    json payload{{"certificate", base64url(certificate.to_der())}};
    if (reason != 0) payload["reason"] = reason;
    post("revokeCert", url, payload.dump());
}

}  // namespace brokertls
