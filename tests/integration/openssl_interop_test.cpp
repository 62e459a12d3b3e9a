// What brokertls-ca writes, checked by an independent implementation: the openssl command line
// verifies the chains and purposes, applies the CRL, reads the PKCS#12 and the encrypted key,
// makes CSRs for `sign`, and runs a real mutual-TLS handshake (s_server / s_client) on 127.0.0.1.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "support.hpp"

namespace brokertls::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// For failure messages.
bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

class OpensslInteropTest : public ::testing::Test {
  protected:
    // brokertls-ca COMMAND --dir DIR ARGS...
    RunResult ca(std::vector<std::string> args, const fs::path& dir) const {
        args.insert(args.begin() + 1, {"--dir", dir.string()});
        args.insert(args.begin(), ca_binary());
        return run(args, "", 60s);
    }
    RunResult ca(const std::vector<std::string>& args) const { return ca(args, dir_); }

    void ok(const std::vector<std::string>& args, const fs::path& dir) const {
        RunResult r = ca(args, dir);
        ASSERT_EQ(r.exit_code, 0) << describe(r);
    }
    void ok(const std::vector<std::string>& args) const { ok(args, dir_); }

    static RunResult openssl(std::vector<std::string> args, const std::string& input = "") {
        args.insert(args.begin(), "openssl");
        return run(args, input, 30s);
    }

    RunResult verify(const std::string& purpose, const fs::path& cert,
                     std::vector<std::string> extra = {}) const {
        std::vector<std::string> args{"verify", "-CAfile", root(), "-purpose", purpose};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back(cert.string());
        return openssl(args);
    }

    std::string root() const { return (dir_ / "root.crt").string(); }
    std::string file(const std::string& name) const { return (tmp_ / name).string(); }

    TempDir tmp_;
    fs::path dir_ = tmp_ / "ca";
};

TEST_F(OpensslInteropTest, ClientAndServerCertificatesVerifyForTheirPurposeOnly) {
    ok({"init"});
    ok({"issue", "client", "dev-1", "--out", tmp_.path().string()});
    ok({"issue", "server", "broker.local", "127.0.0.1", "--out", tmp_.path().string()});

    RunResult r = verify("sslclient", file("dev-1.crt"));
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "dev-1.crt: OK")) << describe(r);
    r = verify("sslserver", file("dev-1.crt"));
    EXPECT_NE(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out + r.err, "unsuitable certificate purpose")) << describe(r);

    r = verify("sslserver", file("broker.local.crt"));
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "broker.local.crt: OK")) << describe(r);
    r = verify("sslclient", file("broker.local.crt"));
    EXPECT_NE(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out + r.err, "unsuitable certificate purpose")) << describe(r);

    // The server certificate's names, as OpenSSL reads them.
    r = openssl({"verify", "-CAfile", root(), "-purpose", "sslserver", "-verify_hostname",
                 "broker.local", file("broker.local.crt")});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    r = openssl({"verify", "-CAfile", root(), "-purpose", "sslserver", "-verify_ip", "127.0.0.1",
                 file("broker.local.crt")});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    r = openssl({"verify", "-CAfile", root(), "-purpose", "sslserver", "-verify_hostname",
                 "other.local", file("broker.local.crt")});
    EXPECT_NE(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out + r.err, "hostname mismatch")) << describe(r);
}

TEST_F(OpensslInteropTest, CertificatesOfAnIntermediateVerifyWithIt) {
    ok({"init"});
    ok({"init", "--intermediate"});
    ok({"issue", "client", "dev-1", "--out", tmp_.path().string()});
    ok({"issue", "server", "broker.local", "--out", tmp_.path().string()});
    std::string inter = (dir_ / "intermediate.crt").string();

    RunResult r = verify("sslclient", file("dev-1.crt"), {"-untrusted", inter});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    r = verify("sslserver", file("dev-1.crt"), {"-untrusted", inter});
    EXPECT_NE(r.exit_code, 0) << describe(r);
    r = verify("sslserver", file("broker.local.crt"), {"-untrusted", inter});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    r = verify("sslclient", file("broker.local.crt"), {"-untrusted", inter});
    EXPECT_NE(r.exit_code, 0) << describe(r);
    // The chain file carries the intermediate: it verifies as the untrusted part.
    r = verify("sslclient", file("dev-1.crt"), {"-untrusted", file("dev-1.chain.pem")});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    // Without the intermediate, there is no path to the root.
    r = verify("sslclient", file("dev-1.crt"));
    EXPECT_NE(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out + r.err, "unable to get local issuer certificate")) << describe(r);
    // The intermediate itself is a CA under the root.
    r = openssl({"verify", "-CAfile", root(), inter});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
}

TEST_F(OpensslInteropTest, RevokedCertificateFailsCrlCheck) {
    ok({"init"});
    ok({"issue", "client", "gone", "keep", "--out", tmp_.path().string()});
    ok({"revoke", file("gone.crt"), "--reason", "keyCompromise"});
    std::string crl = (dir_ / "crl.pem").string();

    RunResult r = openssl({"crl", "-in", crl, "-CAfile", root(), "-noout", "-text"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out + r.err, "verify OK")) << describe(r);
    EXPECT_TRUE(contains(r.out, "Key Compromise")) << describe(r);

    r = verify("sslclient", file("gone.crt"), {"-crl_check", "-CRLfile", crl});
    EXPECT_NE(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out + r.err, "certificate revoked")) << describe(r);
    r = verify("sslclient", file("keep.crt"), {"-crl_check", "-CRLfile", crl});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    // Without the CRL, OpenSSL cannot know.
    r = verify("sslclient", file("gone.crt"));
    EXPECT_EQ(r.exit_code, 0) << describe(r);
}

TEST_F(OpensslInteropTest, RevocationUnderAnIntermediate) {
    ok({"init"});
    ok({"init", "--intermediate"});
    ok({"issue", "client", "gone", "keep", "--out", tmp_.path().string()});
    ok({"revoke", file("gone.crt")});
    std::string crl = (dir_ / "crl.pem").string();
    std::string inter = (dir_ / "intermediate.crt").string();
    RunResult r =
        verify("sslclient", file("gone.crt"), {"-untrusted", inter, "-crl_check", "-CRLfile", crl});
    EXPECT_NE(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out + r.err, "certificate revoked")) << describe(r);
    r = verify("sslclient", file("keep.crt"), {"-untrusted", inter, "-crl_check", "-CRLfile", crl});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
}

TEST_F(OpensslInteropTest, CrlNumberAndNextUpdateAsOpensslReadsThem) {
    ok({"init"});
    ok({"crl", "--days", "7"});
    ok({"crl", "--days", "7"});
    RunResult r = openssl({"crl", "-in", (dir_ / "crl.pem").string(), "-noout", "-crlnumber"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "crlNumber=0x02")) << describe(r);
    r = openssl({"crl", "-in", (dir_ / "crl.pem").string(), "-noout", "-text"});
    EXPECT_TRUE(contains(r.out, "No Revoked Certificates")) << describe(r);
}

TEST_F(OpensslInteropTest, OpensslReadsTheEncryptedKeyAndThePkcs12) {
    write_text(tmp_ / "pw", "ca-secret\n");
    write_text(tmp_ / "p12pw", "p12-secret\n");
    ok({"init", "--passphrase-file", file("pw")});
    ok({"issue", "client", "dev-1", "--out", tmp_.path().string(), "--passphrase-file",
        file("pw")});

    RunResult r = openssl(
        {"pkey", "-in", (dir_ / "root.key").string(), "-passin", "pass:ca-secret", "-noout"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    r = openssl({"pkey", "-in", (dir_ / "root.key").string(), "-passin", "pass:wrong", "-noout"});
    EXPECT_NE(r.exit_code, 0) << describe(r);

    ok({"export-p12", "dev-1", "--in", tmp_.path().string(), "--password-file", file("p12pw")});
    r = openssl(
        {"pkcs12", "-in", file("dev-1.p12"), "-passin", "pass:p12-secret", "-nokeys", "-clcerts"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "subject=CN = dev-1")) << describe(r);
    r = openssl(
        {"pkcs12", "-in", file("dev-1.p12"), "-passin", "pass:p12-secret", "-nokeys", "-cacerts"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "subject=CN = brokertls CA")) << describe(r);
    r = openssl(
        {"pkcs12", "-in", file("dev-1.p12"), "-passin", "pass:p12-secret", "-nodes", "-nocerts"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    // The key in the bundle is the key on disk.
    r = openssl({"pkey", "-pubout"}, r.out);
    RunResult disk = openssl({"pkey", "-in", file("dev-1.key"), "-pubout"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_FALSE(r.out.empty());
    EXPECT_EQ(r.out, disk.out);
    r = openssl({"pkcs12", "-in", file("dev-1.p12"), "-passin", "pass:wrong", "-nokeys"});
    EXPECT_NE(r.exit_code, 0) << describe(r);
}

TEST_F(OpensslInteropTest, SignsARequestMadeByOpenssl) {
    ok({"init"});
    RunResult r = openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-keyout", file("dev-5.key"), "-out", file("dev-5.csr"),
                           "-subj", "/CN=dev-5", "-addext", "subjectAltName=DNS:dev-5.devices",
                           "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                           "extendedKeyUsage=serverAuth,codeSigning"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    ok({"sign", file("dev-5.csr"), "--profile", "client", "--allow", "dev-*"});

    r = verify("sslclient", file("dev-5.crt"));
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    r = openssl({"x509", "-in", file("dev-5.crt"), "-noout", "-ext",
                 "basicConstraints,extendedKeyUsage,subjectAltName"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_TRUE(contains(r.out, "CA:FALSE")) << r.out;
    EXPECT_FALSE(contains(r.out, "CA:TRUE")) << r.out;
    EXPECT_TRUE(contains(r.out, "TLS Web Client Authentication")) << r.out;
    EXPECT_FALSE(contains(r.out, "Server Authentication")) << r.out;
    EXPECT_FALSE(contains(r.out, "Code Signing")) << r.out;
    EXPECT_TRUE(contains(r.out, "DNS:dev-5.devices")) << r.out;
    // The certificate carries the requester's key.
    RunResult cert_key = openssl({"x509", "-in", file("dev-5.crt"), "-noout", "-pubkey"});
    RunResult own_key = openssl({"pkey", "-in", file("dev-5.key"), "-pubout"});
    EXPECT_EQ(cert_key.out, own_key.out);
}

// ---------------------------------------------------------------- a real mutual-TLS handshake

constexpr const char* kRequest = "GET / HTTP/1.0\r\n\r\n";
constexpr const char* kHttpOk = "HTTP/1.0 200 ok";

class MutualTlsTest : public OpensslInteropTest {
  protected:
    // s_server presenting STEM.crt, requiring a client certificate from this CA and checking it
    // against crl.pem.
    std::unique_ptr<Process> start_server(const std::vector<std::string>& extra = {},
                                          const std::string& stem = "broker.local") {
        port_ = free_port();
        std::vector<std::string> argv{"openssl",
                                      "s_server",
                                      "-accept",
                                      "127.0.0.1:" + std::to_string(port_),
                                      "-www",
                                      "-cert",
                                      file(stem + ".crt"),
                                      "-key",
                                      file(stem + ".key"),
                                      "-CAfile",
                                      root(),
                                      "-Verify",
                                      "2",
                                      "-verify_return_error",
                                      "-CRL",
                                      (dir_ / "crl.pem").string(),
                                      "-crl_check"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        auto server = std::make_unique<Process>(argv, tmp_ / "server.log");
        EXPECT_TRUE(wait_for_port(port_, 10s)) << server->log();
        return server;
    }

    // s_client sending one HTTP request; with no `stem`, no client certificate.
    RunResult connect(const std::string& stem, const std::vector<std::string>& extra = {},
                      const std::string& key_dir = "") const {
        std::string dir = key_dir.empty() ? tmp_.path().string() : key_dir;
        std::vector<std::string> argv{"openssl",
                                      "s_client",
                                      "-connect",
                                      "127.0.0.1:" + std::to_string(port_),
                                      "-servername",
                                      "broker.local",
                                      "-verify_hostname",
                                      "broker.local",
                                      "-CAfile",
                                      root(),
                                      "-verify_return_error",
                                      "-ign_eof"};
        if (!stem.empty()) {
            argv.insert(argv.end(),
                        {"-cert", dir + "/" + stem + ".crt", "-key", dir + "/" + stem + ".key"});
        }
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run(argv, kRequest, 20s);
    }

    int port_ = 0;
};

TEST_F(MutualTlsTest, OnlyValidClientsOfThisCaGetAnAnswer) {
    ok({"init"});
    ok({"issue", "server", "broker.local", "127.0.0.1", "--out", tmp_.path().string()});
    ok({"issue", "client", "good", "gone", "--out", tmp_.path().string()});
    ok({"revoke", file("gone.crt")});  // the CRL exists before the server starts
    TempDir other;
    ok({"init"}, other / "ca");
    ok({"issue", "client", "stranger", "--out", other.path().string()}, other / "ca");

    std::unique_ptr<Process> server = start_server();

    RunResult r = connect("good");
    ASSERT_NE(r.exit_code, -1) << "s_client timed out\n" << describe(r);
    EXPECT_TRUE(contains(r.out, kHttpOk)) << describe(r) << "\nserver: " << server->log();
    EXPECT_TRUE(contains(r.out, "Verify return code: 0 (ok)")) << describe(r);
    EXPECT_TRUE(server->wait_for_log("CN = good", 10s)) << server->log();

    // TLS 1.3: the client may finish its handshake before the server has judged its
    // certificate, so what counts is that no answer comes back and the server says why.
    r = connect("gone");
    ASSERT_NE(r.exit_code, -1) << "s_client timed out\n" << describe(r);
    EXPECT_FALSE(contains(r.out, kHttpOk)) << describe(r);
    EXPECT_TRUE(server->wait_for_log("certificate revoked", 10s)) << server->log();

    r = connect("stranger", {}, other.path().string());
    ASSERT_NE(r.exit_code, -1) << "s_client timed out\n" << describe(r);
    EXPECT_FALSE(contains(r.out, kHttpOk)) << describe(r);
    EXPECT_TRUE(server->wait_for_log("unable to get local issuer certificate", 10s))
        << server->log();

    r = connect("");
    ASSERT_NE(r.exit_code, -1) << "s_client timed out\n" << describe(r);
    EXPECT_FALSE(contains(r.out, kHttpOk)) << describe(r);
    EXPECT_TRUE(server->wait_for_log("peer did not return a certificate", 10s)) << server->log();

    // The refusals did not stop the server.
    r = connect("good");
    EXPECT_TRUE(contains(r.out, kHttpOk)) << describe(r) << "\nserver: " << server->log();
    EXPECT_TRUE(server->running());
}

TEST_F(MutualTlsTest, ClientRefusesAServerWithTheWrongNameOrPurpose) {
    ok({"init"});
    ok({"issue", "server", "broker.local", "--out", tmp_.path().string()});
    ok({"issue", "client", "good", "--out", tmp_.path().string()});
    ok({"crl"});
    std::unique_ptr<Process> server = start_server();

    RunResult r = connect("good", {"-verify_hostname", "other.local"});
    ASSERT_NE(r.exit_code, -1) << describe(r);
    EXPECT_FALSE(contains(r.out, kHttpOk)) << describe(r);
    EXPECT_TRUE(contains(r.out + r.err, "hostname mismatch")) << describe(r);
    server->stop();

    // A client certificate (with the right name) offered as the server's: the client's purpose
    // check refuses it.
    ok({"issue", "client", "impostor", "--san-dns", "broker.local", "--out", tmp_.path().string()});
    server = start_server({}, "impostor");
    r = connect("good");
    ASSERT_NE(r.exit_code, -1) << describe(r);
    EXPECT_FALSE(contains(r.out, kHttpOk)) << describe(r);
    EXPECT_TRUE(contains(r.out + r.err, "unsuitable certificate purpose")) << describe(r);
}

TEST_F(MutualTlsTest, ChainsThroughAnIntermediate) {
    ok({"init"});
    ok({"init", "--intermediate"});
    ok({"issue", "server", "broker.local", "--out", tmp_.path().string()});
    ok({"issue", "client", "good", "gone", "--out", tmp_.path().string()});
    ok({"revoke", file("gone.crt")});
    std::string inter = (dir_ / "intermediate.crt").string();
    std::unique_ptr<Process> server = start_server({"-cert_chain", inter});

    RunResult r = connect("good", {"-cert_chain", inter});
    ASSERT_NE(r.exit_code, -1) << describe(r);
    EXPECT_TRUE(contains(r.out, kHttpOk)) << describe(r) << "\nserver: " << server->log();

    r = connect("gone", {"-cert_chain", inter});
    ASSERT_NE(r.exit_code, -1) << describe(r);
    EXPECT_FALSE(contains(r.out, kHttpOk)) << describe(r);
    EXPECT_TRUE(server->wait_for_log("certificate revoked", 10s)) << server->log();

    // Without its intermediate the client's certificate leads nowhere.
    r = connect("good");
    ASSERT_NE(r.exit_code, -1) << describe(r);
    EXPECT_FALSE(contains(r.out, kHttpOk)) << describe(r);
    EXPECT_TRUE(server->wait_for_log("unable to get local issuer certificate", 10s))
        << server->log();
}

}  // namespace
}  // namespace brokertls::test
