#include "pki.hpp"

namespace brokertls::test {
namespace fs = std::filesystem;

TestPki::TestPki(const fs::path& dir, const std::string& ca_name)
    : dir_(dir / "ca"), certs_(dir / "certs") {
    CaInitOptions options;
    options.name = ca_name;
    CertificateAuthority::init_root(dir_, options, SystemClock::now());
    auto ca = open();
    ca.issue({{CertificateProfile::Server,
               "localhost",
               "",
               {classify_name("localhost"), classify_name("127.0.0.1")},
               30,
               KeyType::EcP256}},
             certs_, Overwrite::Refuse);
    ca.write_crl(30);
}

CertificateAuthority TestPki::open() {
    return CertificateAuthority(dir_, {}, true, DirectoryLock::Mode::Exclusive, SystemClock::now());
}

ClientCert TestPki::client(const std::string& name, int days) {
    auto files = open().issue({{CertificateProfile::Client, name, "", {}, days, KeyType::EcP256}},
                              certs_, Overwrite::Refuse);
    return {files[0].chain, files[0].key};
}

void TestPki::revoke(const ClientCert& cert) {
    open().revoke(fs::path(cert.cert).replace_extension("").replace_extension(".crt").string(),
                  RevocationReason::KeyCompromise);
}

void TestPki::write_crl() {
    open().write_crl(30);
}

}  // namespace brokertls::test
