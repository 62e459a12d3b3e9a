#pragma once
// A throwaway PKI for broker tests, made with brokertls' own CA library in-process.

#include <filesystem>
#include <string>

#include "brokertls/ca/authority.hpp"
#include "mosquitto_fixture.hpp"

namespace brokertls::test {

class TestPki {
  public:
    // A root CA in DIR/ca, a server certificate for localhost + 127.0.0.1 in DIR/certs.
    explicit TestPki(const std::filesystem::path& dir,
                     const std::string& ca_name = "brokertls test CA");

    ClientCert client(const std::string& name, int days = 30);
    std::filesystem::path root() const { return dir_ / "root.crt"; }
    std::filesystem::path crl() const { return dir_ / "crl.pem"; }
    std::filesystem::path server_cert() const { return certs_ / "localhost.chain.pem"; }
    std::filesystem::path server_key() const { return certs_ / "localhost.key"; }
    // Revokes and rewrites crl.pem (atomically, as brokertls-ca does).
    void revoke(const ClientCert& cert);
    void write_crl();
    CertificateAuthority open();
    const std::filesystem::path& dir() const { return dir_; }

  private:
    std::filesystem::path dir_, certs_;
};

}  // namespace brokertls::test
