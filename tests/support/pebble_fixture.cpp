#include "pebble_fixture.hpp"

#include <openssl/x509_vfy.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>

namespace brokertls::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::chrono::seconds kStartTimeout{20};

std::string fqdn(const std::string& host) {
    return host.empty() || host.back() == '.' ? host : host + ".";
}

}  // namespace

bool verifies(const std::vector<Certificate>& chain, const std::string& roots_pem) {
    X509StorePtr store(X509_STORE_new());
    for (const auto& root : Certificate::parse_chain(roots_pem, "roots"))
        X509_STORE_add_cert(store.get(), root.get());
    X509BorrowedStackPtr untrusted(sk_X509_new_null());
    for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].get());
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    X509_STORE_CTX_init(ctx.get(), store.get(), chain.front().get(), untrusted.get());
    return X509_verify_cert(ctx.get()) == 1;
}

PebbleFixture::PebbleFixture(PebbleOptions options) : options_(std::move(options)) {
    // Pebble's HTTPS certificate, from our own CA.
    fs::path ca = dir_ / "ca", certs = dir_ / "https";
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {ca_binary(), "init", "--dir", ca.string()},
             {ca_binary(), "issue", "server", "127.0.0.1", "localhost", "--dir", ca.string(),
              "--out", certs.string()}}) {
        RunResult r = run(argv, "", std::chrono::seconds(30));
        if (r.exit_code != 0) throw std::runtime_error("brokertls-ca failed: " + r.err);
    }
    ca_bundle_ = ca / "root.crt";

    acme_port_ = free_port();
    management_port_ = free_port();
    http_port_ = options_.http01_port ? options_.http01_port : free_port();
    tls_port_ = options_.tls_alpn01_port ? options_.tls_alpn01_port : free_port();
    dns_port_ = free_port();
    challtestsrv_port_ = free_port();

    json keys = json::object();
    for (const auto& [kid, key] : options_.eab_keys) keys[kid] = key;
    json config{{"pebble",
                 {{"listenAddress", "127.0.0.1:" + std::to_string(acme_port_)},
                  {"managementListenAddress", "127.0.0.1:" + std::to_string(management_port_)},
                  {"certificate", (certs / "127.0.0.1.chain.pem").string()},
                  {"privateKey", (certs / "127.0.0.1.key").string()},
                  {"httpPort", http_port_},
                  {"tlsPort", tls_port_},
                  {"ocspResponderURL", ""},
                  {"externalAccountBindingRequired", options_.eab_required},
                  {"externalAccountMACKeys", keys}}}};
    config_ = dir_ / "pebble-config.json";
    std::ofstream(config_) << config.dump(2);

    CurlOptions https;
    https.ca_bundle = ca_bundle_;
    https.timeout = std::chrono::seconds(10);
    https_ = make_curl_transport(https);
    CurlOptions plain;
    plain.timeout = std::chrono::seconds(10);
    http_ = make_curl_transport(plain);

    start_challtestsrv();
    start_pebble();
}

PebbleFixture::~PebbleFixture() {
    stop();
}

void PebbleFixture::start_challtestsrv() {
    std::string http01 =
        options_.challtestsrv_http01 ? "127.0.0.1:" + std::to_string(http_port_) : "";
    challtestsrv_ = std::make_unique<Process>(
        std::vector<std::string>{"pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6",
                                 "", "-dns01", "127.0.0.1:" + std::to_string(dns_port_), "-http01",
                                 http01, "-https01", "", "-tlsalpn01", "", "-management",
                                 "127.0.0.1:" + std::to_string(challtestsrv_port_)},
        dir_ / "challtestsrv.log");
    if (!challtestsrv_->wait_for_log("Starting management server", kStartTimeout) ||
        !wait_for_port(challtestsrv_port_, kStartTimeout))
        throw std::runtime_error("pebble-challtestsrv did not start: " + challtestsrv_->log());
}

void PebbleFixture::start_pebble() {
    std::map<std::string, std::string> env = options_.env;
    env["PEBBLE_VA_NOSLEEP"] = "1";
    std::string dns = options_.dns_server.empty() ? "127.0.0.1:" + std::to_string(dns_port_)
                                                  : options_.dns_server;
    pebble_ = std::make_unique<Process>(
        std::vector<std::string>{"pebble", "-config", config_.string(), "-dnsserver", dns},
        dir_ / "pebble.log", env);
    if (!pebble_->wait_for_log("ACME directory available", kStartTimeout) ||
        !wait_for_port(acme_port_, kStartTimeout) ||
        // The management API (roots) may open after the ACME listener.
        !wait_for_port(management_port_, kStartTimeout))
        throw std::runtime_error("pebble did not start: " + pebble_->log());
}

void PebbleFixture::stop() {
    if (pebble_) pebble_->stop();
    if (challtestsrv_) challtestsrv_->stop();
}

void PebbleFixture::stop_pebble() {
    if (pebble_) pebble_->stop();
}

void PebbleFixture::restart() {
    if (pebble_) pebble_->stop();
    start_pebble();
}

std::string PebbleFixture::pebble_log() const {
    return pebble_ ? pebble_->log() : "";
}

json PebbleFixture::issuer_json(json challenge) const {
    return {{"type", "acme"},
            {"directory", directory_url()},
            {"ca_bundle", ca_bundle().string()},
            {"email", "ops@example.com"},
            {"challenge", std::move(challenge)}};
}

std::string PebbleFixture::directory_url() const {
    return "https://127.0.0.1:" + std::to_string(acme_port_) + "/dir";
}

std::string PebbleFixture::management_get(const std::string& path) {
    std::string url = "https://127.0.0.1:" + std::to_string(management_port_) + path;
    HttpResponse r = https_->send({"GET", url, {}, ""});
    if (r.status != 200)
        throw std::runtime_error(url + ": HTTP " + std::to_string(r.status) + ": " + r.body);
    return r.body;
}

std::string PebbleFixture::roots_pem(int index) {
    return management_get("/roots/" + std::to_string(index));
}

std::string PebbleFixture::intermediates_pem(int index) {
    return management_get("/intermediates/" + std::to_string(index));
}

std::string PebbleFixture::certificate_status(const std::string& serial_hex) {
    auto status =
        json::parse(management_get("/cert-status-by-serial/" + serial_hex), nullptr, false);
    if (!status.is_object() || !status.contains("Status"))
        throw std::runtime_error("pebble: no status for serial " + serial_hex);
    return status["Status"].get<std::string>();
}

void PebbleFixture::challtestsrv_post(const std::string& path, const std::string& body) {
    std::string url = "http://127.0.0.1:" + std::to_string(challtestsrv_port_) + path;
    HttpResponse r = http_->send({"POST", url, {{"content-type", "application/json"}}, body});
    if (r.status != 200)
        throw std::runtime_error(url + ": HTTP " + std::to_string(r.status) + ": " + r.body);
}

void PebbleFixture::add_http01(const std::string& token, const std::string& content) {
    challtestsrv_post("/add-http01", json{{"token", token}, {"content", content}}.dump());
}

void PebbleFixture::del_http01(const std::string& token) {
    challtestsrv_post("/del-http01", json{{"token", token}}.dump());
}

void PebbleFixture::set_txt(const std::string& host, const std::string& value) {
    challtestsrv_post("/set-txt", json{{"host", fqdn(host)}, {"value", value}}.dump());
}

void PebbleFixture::clear_txt(const std::string& host) {
    challtestsrv_post("/clear-txt", json{{"host", fqdn(host)}}.dump());
}

void PebbleFixture::add_a(const std::string& host, const std::string& ip) {
    challtestsrv_post("/add-a", json{{"host", fqdn(host)}, {"addresses", {ip}}}.dump());
}

}  // namespace brokertls::test
