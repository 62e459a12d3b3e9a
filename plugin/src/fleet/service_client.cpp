#include "fleet/service_client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "fleet/request_hmac.hpp"

namespace brokertls {

using nlohmann::json;

ServiceCredentials load_service_credentials(const std::filesystem::path& file,
                                            const std::string& key_id) {
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
        fail(ErrorKind::Input, file.string(), "readable by others: chmod 600 it");
    std::string text = read_file(file);
    json j = json::parse(text, nullptr, false);
    if (j.is_object()) {
        if (!j.contains("key_id") || !j["key_id"].is_string() || !j.contains("key") ||
            !j["key"].is_string())
            fail(ErrorKind::Input, file.string(), "needs \"key_id\" and \"key\" (strings)");
        return {j["key_id"], j["key"]};
    }
    if (key_id.empty())
        fail(ErrorKind::Input, file.string(), "holds a bare key: the key id must be given with it");
    std::string key = text.substr(0, text.find('\n'));
    if (key.empty()) fail(ErrorKind::Input, file.string(), "empty");
    return {key_id, key};
}

ServiceClient::ServiceClient(std::string url, std::optional<ServiceCredentials> credentials,
                             HttpTransport& transport, const Clock& clock)
    : url_(std::move(url)),
      credentials_(std::move(credentials)),
      transport_(transport),
      clock_(clock) {
    while (!url_.empty() && url_.back() == '/') url_.pop_back();
}

HttpResponse ServiceClient::send(const std::string& method, const std::string& path,
                                 const std::string& body, const std::string& bearer) {
    HttpRequest request{method, url_ + path, {{"content-type", "application/json"}}, body};
    if (!bearer.empty())
        request.headers.emplace_back("authorization", "Bearer " + bearer);
    else if (credentials_)
        request.headers.emplace_back(
            "authorization", sign_request_hmac(credentials_->key_id, credentials_->key, method,
                                               path, body, clock_.now()));
    HttpResponse response = transport_.send(request);
    retry_after_.reset();
    if (response.status >= 200 && response.status < 300) return response;
    if (auto value = response.header("retry-after"))
        if (auto at = parse_retry_after(*value, clock_.now()))
            retry_after_ = std::chrono::ceil<std::chrono::seconds>(*at - clock_.now());
    json error = json::parse(response.body, nullptr, false);
    std::string reason = error.is_object() && error.contains("error") && error["error"].is_string()
                             ? error["error"].get<std::string>()
                             : "HTTP " + std::to_string(response.status);
    bool later = response.status >= 500 || response.status == 429 || response.status == 421;
    fail(
        later ? ErrorKind::Io : ErrorKind::Input, "brokertls-service " + method + " " + url_ + path,
        std::to_string(response.status) + " " + reason +
            (retry_after_ ? " (retry after " + std::to_string(retry_after_->count()) + " s)" : ""));
}

ServiceCertificate ServiceClient::request_certificate(const CertificateRequest& csr,
                                                      const std::string& profile) {
    json body = {{"csr", csr.to_pem()}};
    if (!profile.empty()) body["profile"] = profile;
    HttpResponse r = send("POST", "/v1/certificates", body.dump());
    std::string where = "brokertls-service " + url_ + "/v1/certificates";
    json answer = json::parse(r.body, nullptr, false);
    if (!answer.is_object() || !answer.contains("certificate") ||
        !answer["certificate"].is_string() || !answer.contains("renew_at") ||
        !answer["renew_at"].is_string())
        fail(ErrorKind::Io, where, "the answer is not a certificate");
    ServiceCertificate out{
        Certificate::parse_chain(answer["certificate"].get<std::string>(), where),
        from_iso8601(answer["renew_at"].get<std::string>()), answer.value("cached", false)};
    if (EVP_PKEY_eq(X509_get0_pubkey(out.chain.front().get()), csr.public_key()) != 1)
        fail(ErrorKind::Io, where, "the certificate is not for the CSR's key");
    return out;
}

RegisteredDevice ServiceClient::register_device(const std::string& token,
                                                const std::vector<std::string>& addresses) {
    json body = json::object();
    if (!addresses.empty()) body["addresses"] = addresses;
    HttpResponse r = send("POST", "/v1/devices", body.dump(), token);
    json a = json::parse(r.body, nullptr, false);
    if (!a.is_object() || !a.contains("id") || !a.contains("name") || !a.contains("key"))
        fail(ErrorKind::Io, "brokertls-service " + url_ + "/v1/devices",
             "the answer is not a device");
    return {a["id"], a["name"], a["key"], a.value("addresses", std::vector<std::string>{}),
            a.value("address_error", "")};
}

void ServiceClient::set_addresses(const std::vector<std::string>& addresses) {
    if (!credentials_) fail(ErrorKind::Usage, "address update", "needs the device's credentials");
    send("PUT", "/v1/devices/" + credentials_->key_id + "/address",
         json({{"addresses", addresses}}).dump());
}

std::string local_address_toward(const std::string& url) {
    // https://HOST[:PORT]/... or https://[V6]:PORT/...
    std::string rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
    rest = rest.substr(0, rest.find('/'));
    std::string host = rest, port = "443";
    if (!rest.empty() && rest.front() == '[') {
        host = rest.substr(1, rest.find(']') - 1);
        if (auto c = rest.find("]:"); c != std::string::npos) port = rest.substr(c + 2);
    } else if (auto c = rest.rfind(':'); c != std::string::npos) {
        host = rest.substr(0, c);
        port = rest.substr(c + 1);
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* found = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
        fail(ErrorKind::Io, "address toward " + url, gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, freeaddrinfo);
    // A UDP "connect" sends nothing: it only asks the kernel which source address it would use.
    int fd = ::socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(ErrorKind::Io, "address toward " + url, "no socket");
    sockaddr_storage local{};
    socklen_t size = sizeof local;
    bool ok = ::connect(fd, found->ai_addr, found->ai_addrlen) == 0 &&
              ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &size) == 0;
    ::close(fd);
    if (!ok) fail(ErrorKind::Io, "address toward " + url, "no route");
    char text[INET6_ADDRSTRLEN] = "";
    const void* bytes =
        local.ss_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr);
    inet_ntop(local.ss_family, bytes, text, sizeof text);
    return text;
}

}  // namespace brokertls
