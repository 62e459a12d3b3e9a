#pragma once
// A real Pebble ACME server (Debian's pebble 2.4) on free 127.0.0.1 ports, with
// pebble-challtestsrv as its DNS server (every name resolves to 127.0.0.1, no AAAA) and,
// optionally, as the http-01 responder Pebble validates against. Pebble's HTTPS certificate
// comes from a brokertls-ca made for the fixture; ca_bundle() is its root. Both programs run
// under test::Process, so they are always stopped.

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "acme/http.hpp"
#include "brokertls/crypto/certificate.hpp"
#include "support.hpp"

namespace brokertls::test {

struct PebbleOptions {
    // externalAccountBindingRequired, and the key ids with their base64url HMAC keys.
    bool eab_required = false;
    std::map<std::string, std::string> eab_keys;
    // challtestsrv serves the http-01 answers set with add_http01() on http01_port(); false
    // leaves that port free for the test's own responder.
    bool challtestsrv_http01 = true;
    // Pebble's httpPort and tlsPort (where it validates http-01 and tls-alpn-01); 0 = a free
    // port chosen by the fixture.
    int http01_port = 0;
    int tls_alpn01_port = 0;
    // More Pebble environment: PEBBLE_ALTERNATE_ROOTS=1, PEBBLE_CHAIN_LENGTH=2,
    // PEBBLE_AUTHZREUSE=0, PEBBLE_WFE_NONCEREJECT=... (PEBBLE_VA_NOSLEEP=1 is always set).
    std::map<std::string, std::string> env;
    // Where Pebble resolves names ("host:port"), e.g. a test's named; "" = challtestsrv.
    std::string dns_server;
};

// Does `chain` (leaf first) verify up to a root in `roots_pem`? (OpenSSL X509_verify_cert)
bool verifies(const std::vector<Certificate>& chain, const std::string& roots_pem);

class PebbleFixture {
  public:
    explicit PebbleFixture(PebbleOptions options = {});
    ~PebbleFixture();
    PebbleFixture(const PebbleFixture&) = delete;
    PebbleFixture& operator=(const PebbleFixture&) = delete;

    std::string directory_url() const;
    // The PEM file that trusts Pebble's HTTPS (ACME and management).
    std::filesystem::path ca_bundle() const { return ca_bundle_; }
    // An "acme" issuer (brokertls.json's or brokertls-service's) for this Pebble, with
    // `challenge` as its challenge.
    nlohmann::json issuer_json(nlohmann::json challenge) const;
    // Pebble's issuing roots and intermediates (management /roots/N, /intermediates/N; N > 0
    // for the alternate roots of PEBBLE_ALTERNATE_ROOTS).
    std::string roots_pem(int index = 0);
    std::string intermediates_pem(int index = 0);
    // "Valid" or "Revoked": management /cert-status-by-serial/SERIAL (hex, as serial_hex()).
    std::string certificate_status(const std::string& serial_hex);

    // Where Pebble validates http-01 and tls-alpn-01 challenges (on 127.0.0.1).
    int http01_port() const { return http_port_; }
    int tls_alpn01_port() const { return tls_port_; }
    int dns_port() const { return dns_port_; }
    // challtestsrv's management API (/set-txt, /add-http01, ...), for hooks that call it.
    int challtestsrv_port() const { return challtestsrv_port_; }

    // challtestsrv's management API.
    void add_http01(const std::string& token, const std::string& content);
    void del_http01(const std::string& token);
    // host without the trailing dot: set_txt("_acme-challenge.a.example", value).
    void set_txt(const std::string& host, const std::string& value);
    void clear_txt(const std::string& host);
    void add_a(const std::string& host, const std::string& ip);

    std::string pebble_log() const;
    void stop();
    // Pebble alone goes down (its DNS, challtestsrv, stays); restart() brings it back.
    void stop_pebble();
    // A fresh Pebble on the same ports (Pebble keeps no state: accounts and roots are new).
    void restart();

  private:
    void start_pebble();
    void start_challtestsrv();
    std::string management_get(const std::string& path);
    void challtestsrv_post(const std::string& path, const std::string& json);

    PebbleOptions options_;
    TempDir dir_;
    std::filesystem::path ca_bundle_, config_;
    int acme_port_ = 0, management_port_ = 0, http_port_ = 0, tls_port_ = 0, dns_port_ = 0,
        challtestsrv_port_ = 0;
    std::unique_ptr<Process> pebble_, challtestsrv_;
    std::unique_ptr<HttpTransport> https_, http_;
};

}  // namespace brokertls::test
