// brokertls-service end to end: the program on 127.0.0.1 with a real brokertls-ca directory,
// BIND 9 for device addresses and dns-01, Pebble as the ACME CA; clients are the seed's
// openssl + wget one-liner, curl, and brokertls-enroll.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "brokertls/ca/authority.hpp"
#include "brokertls/crypto/certificate.hpp"
#include "brokertls/store/files.hpp"
#include "mosquitto_fixture.hpp"
#include "named_fixture.hpp"
#include "pebble_fixture.hpp"
#include "service_fixture.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kBlockKey = "A1YP67armNf3cBrecyJHdb035";
constexpr const char* kOpsKey = "ops-key-0123456789abcdef";

using test::ServiceProcess;

class ServiceTest : public ::testing::Test {
  protected:
    ServiceTest() {
        CaInitOptions options;
        CertificateAuthority::init_root(dir_ / "ca", options, SystemClock::now());
        // The service's own TLS certificate, from the same CA.
        CertificateAuthority ca(dir_ / "ca", {}, true, DirectoryLock::Mode::Exclusive,
                                SystemClock::now());
        LeafRequest tls{CertificateProfile::Server, "localhost", "service", {}, 30};
        tls.subject_alt_names = {classify_name("localhost"), classify_name("127.0.0.1")};
        ca.issue({tls}, dir_ / "tls", Overwrite::Refuse);
        write_file_atomic(dir_ / "block.key", std::string(kBlockKey) + "\n", kPrivateMode);
        write_file_atomic(dir_ / "ops.key", std::string(kOpsKey) + "\n", kPrivateMode);
        config_ = json::parse(R"({
          "listeners": {
            "sign": {"listen": "127.0.0.1:0", "serve": ["sign"]},
            "api": {"listen": "127.0.0.1:0", "serve": ["v1", "sign", "est"],
                    "tls": {"cert": "tls/service.chain.pem", "key": "tls/service.key",
                            "client_ca": "ca/root.crt"}}
          },
          "issuers": {"ca": {"type": "local-ca", "dir": "ca"}},
          "profiles": {
            "edge": {"issuer": "ca", "domains": ["*.example.org", "example.org", "*.example.test"],
                     "lifetime": "30d"},
            "device": {"issuer": "ca", "kind": "client", "domains": ["*"], "lifetime": "7d"}
          },
          "auth": [
            {"name": "mail-secure", "ip": ["127.0.0.0/8"], "hmac_key_file": "block.key",
             "domains": ["example.org", "mail?.example.org"], "profile": "edge"},
            {"name": "lan", "ip": ["127.0.0.1"], "domains": ["open.example.org"], "profile": "edge"}
          ],
          "clients": {"ops": {"key_file": "ops.key", "profiles": ["device"], "admin": true}},
          "devices": {"zone": "example.test", "profile": "edge"},
          "est": {"profile": "device"}
        })");
    }

    ServiceProcess& start() {
        service_ = std::make_unique<ServiceProcess>(dir_.path(), config_);
        return *service_;
    }

    test::RunResult shell(const std::string& script) {
        return test::run({"bash", "-c", "set -e; cd '" + dir_.path().string() + "'; " + script}, "",
                         60s);
    }

    // A request to the /v1 API signed by `key_id` with curl (the HMAC made by openssl).
    test::RunResult admin(const std::string& method, const std::string& path,
                          const std::string& body) {
        auto header = sign_request_hmac_for_shell(method, path, body);
        return test::run(
            {"curl", "-sS", "--cacert", (dir_ / "ca" / "root.crt").string(), "-X", method, "-H",
             "content-type: application/json", "-H", "authorization: " + header, "--data-binary",
             body, "-w", "\n%{http_code}", service_->url("api") + path},
            "", 30s);
    }

    std::string sign_request_hmac_for_shell(const std::string& method, const std::string& path,
                                            const std::string& body);

    test::TempDir dir_;
    json config_;
    std::unique_ptr<ServiceProcess> service_;
};

// The request HMAC computed by a script with openssl alone (what a device without our tools
// does; the README shows the same lines).
std::string ServiceTest::sign_request_hmac_for_shell(const std::string& method,
                                                     const std::string& path,
                                                     const std::string& body) {
    std::ofstream(dir_ / "body.json") << body;
    auto r = shell(
        "ts=$(date +%s); nonce=$(openssl rand -hex 16); "
        "body=$(openssl dgst -sha256 -r body.json | cut -d' ' -f1); "
        "sig=$(printf 'BTLS-HMAC-SHA256\\n%s\\n%s\\n%s\\n%s\\n%s' '" +
        method + "' '" + path + "' \"$ts\" \"$nonce\" \"$body\" | openssl dgst -sha256 -hmac '" +
        kOpsKey +
        "' -r | cut -d' ' -f1); "
        "echo \"BTLS-HMAC-SHA256 keyid=ops, ts=$ts, nonce=$nonce, sig=$sig\"");
    EXPECT_EQ(r.exit_code, 0) << test::describe(r);
    return r.out.substr(0, r.out.find('\n'));
}

TEST_F(ServiceTest, TheAcmemsOneLinerWorksUnchanged) {
    auto& service = start();
    // The seed's lines, with its $KEY placeholder filled in and the host and port ours.
    std::string url = service.url("sign", "http") + "/sign";
    auto r = shell(
        "openssl genrsa 4096 > domain.key\n"
        "openssl req -new -sha256 -key domain.key -subj \"/CN=example.org\" > domain-201512.csr\n"
        "wget --post-file=domain-201512.csr --header=\"`openssl dgst -sha256 -hmac '" +
        std::string(kBlockKey) +
        "' domain-201512.csr | sed -e 's/HMAC-\\(.*\\)(.*)= *\\(.*\\)/Authentication: hmac "
        "name=\\L\\1\\E, hash=\\2/'`\" " +
        url + " > domain-201512.pem");
    ASSERT_EQ(r.exit_code, 0) << test::describe(r) << service.log();
    // wget saves the answer under the URL's last segment ("sign"); stdout, redirected by the
    // seed to domain-201512.pem, stays empty.
    auto chain = Certificate::load_chain(dir_ / "sign");
    EXPECT_EQ(chain[0].common_name(), "example.org");
    EXPECT_TRUE(chain[0].matches_key(PrivateKey::load(dir_ / "domain.key")));
    EXPECT_EQ(read_file(dir_ / "domain-201512.pem"), "");

    // Without the Authentication header only the "lan" block may match: not for example.org.
    auto unsigned_request = shell("wget --post-file=domain-201512.csr " + url + " -O unsigned.pem");
    EXPECT_NE(unsigned_request.exit_code, 0);
    EXPECT_NE(unsigned_request.err.find("403"), std::string::npos) << unsigned_request.err;
    auto open = shell(
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout open.key "
        "-subj /CN=open.example.org -out open.csr 2>/dev/null\n"
        "wget -q --post-file=open.csr " +
        url + " -O open.pem");
    ASSERT_EQ(open.exit_code, 0) << test::describe(open);
    EXPECT_EQ(Certificate::load(dir_ / "open.pem").common_name(), "open.example.org");
}

TEST_F(ServiceTest, BadRequestsGetTheirStatusCodes) {
    auto& service = start();
    std::string url = service.url("sign", "http") + "/sign";
    auto status = [&](const std::vector<std::string>& extra) {
        std::vector<std::string> argv{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(url);
        return test::run(argv, "", 30s).out;
    };
    EXPECT_EQ(status({"--data-binary", std::string(5000, 'A')}), "413");  // max_body 4096
    EXPECT_EQ(status({"--data-binary", "not a CSR"}), "415");
    EXPECT_EQ(status({}), "405");
    EXPECT_EQ(status({"--data-binary", "x", "-H", "Authentication: hmac name=md5, hash=00"}),
              "415");
    auto audit = read_file(dir_ / "state" / "audit.jsonl");
    EXPECT_NE(audit.find("\"status\":415"), std::string::npos) << audit;
}

TEST_F(ServiceTest, DevicesEnrollGetCertificatesAndRenewWithTheirCurrentOne) {
    auto& service = start();
    auto made = admin("POST", "/v1/enrollment-tokens", R"({"count": 1})");
    ASSERT_EQ(made.exit_code, 0) << test::describe(made);
    ASSERT_EQ(made.out.substr(made.out.rfind('\n') + 1), "200") << made.out << service.log();
    std::string token = json::parse(made.out.substr(0, made.out.rfind('\n')))["tokens"][0];
    std::string ca = (dir_ / "ca" / "root.crt").string();
    auto enroll = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {test::enroll_binary()});
        args.insert(args.end(), {"--service", service.url("api"), "--ca", ca});
        return test::run(args, "", 60s);
    };
    auto registered =
        enroll({"register", "--token", token, "--credentials", (dir_ / "device.json").string()});
    ASSERT_EQ(registered.exit_code, 0) << test::describe(registered) << service.log();
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "device.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    std::string name = json::parse(read_file(dir_ / "device.json"))["name"];
    // The token is spent.
    EXPECT_EQ(
        enroll({"register", "--token", token, "--credentials", (dir_ / "again.json").string()})
            .exit_code,
        2);
    // Existing credentials are never overwritten, and finding that out spends no token.
    auto more = admin("POST", "/v1/enrollment-tokens", R"({"count": 1})");
    std::string second = json::parse(more.out.substr(0, more.out.rfind('\n')))["tokens"][0];
    std::string before = read_file(dir_ / "device.json");
    auto refused =
        enroll({"register", "--token", second, "--credentials", (dir_ / "device.json").string()});
    EXPECT_EQ(refused.exit_code, 2) << test::describe(refused);
    EXPECT_EQ(read_file(dir_ / "device.json"), before);
    EXPECT_EQ(
        enroll({"register", "--token", second, "--credentials", (dir_ / "other.json").string()})
            .exit_code,
        0);

    auto got =
        enroll({"certificate", "--credentials", (dir_ / "device.json").string(), "--out-cert",
                (dir_ / "device.crt").string(), "--out-key", (dir_ / "device.key").string()});
    ASSERT_EQ(got.exit_code, 0) << test::describe(got) << service.log();
    auto chain = Certificate::load_chain(dir_ / "device.crt");
    EXPECT_EQ(chain[0].subject_alt_names(),
              (std::vector<SubjectAltName>{{SubjectAltName::Type::Dns, name}}));
    ASSERT_EQ(::stat((dir_ / "device.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // Not due: nothing is asked, nothing changes.
    auto again =
        enroll({"certificate", "--credentials", (dir_ / "device.json").string(), "--out-cert",
                (dir_ / "device.crt").string(), "--out-key", (dir_ / "device.key").string()});
    EXPECT_EQ(again.exit_code, 0);
    EXPECT_NE(again.out.find("not due"), std::string::npos) << again.out;

    // A client certificate for an identity, renewed over mutual TLS with itself.
    auto ops = admin("POST", "/v1/devices", "{}");  // admins register too
    EXPECT_EQ(ops.out.substr(ops.out.rfind('\n') + 1), "201") << ops.out;
    auto key = PrivateKey::generate(KeyType::EcP256);
    write_file_atomic(dir_ / "id.key", key.to_pem(), kPrivateMode);
    auto first = shell("openssl req -new -key id.key -subj /CN=dev-17 -out id.csr 2>/dev/null");
    ASSERT_EQ(first.exit_code, 0) << test::describe(first);
    write_file_atomic(dir_ / "req.json",
                      json({{"csr", read_file(dir_ / "id.csr")}, {"profile", "device"}}).dump());
    auto issued = admin("POST", "/v1/certificates", read_file(dir_ / "req.json"));
    ASSERT_EQ(issued.out.substr(issued.out.rfind('\n') + 1), "200") << issued.out;
    std::string pem = json::parse(issued.out.substr(0, issued.out.rfind('\n')))["certificate"];
    write_file_atomic(dir_ / "id.crt", pem, kPublicMode);
    auto renewed =
        enroll({"certificate", "--cert", (dir_ / "id.crt").string(), "--key",
                (dir_ / "id.key").string(), "--profile", "device", "--force", "--out-cert",
                (dir_ / "id2.crt").string(), "--out-key", (dir_ / "id2.key").string()});
    ASSERT_EQ(renewed.exit_code, 0) << test::describe(renewed) << service.log();
    auto next = Certificate::load(dir_ / "id2.crt");
    EXPECT_EQ(next.common_name(), "dev-17");
    EXPECT_NE(next.serial_hex(), Certificate::load(dir_ / "id.crt").serial_hex());
    // Another identity with the same certificate: refused.
    auto stolen =
        enroll({"certificate", "--cert", (dir_ / "id.crt").string(), "--key",
                (dir_ / "id.key").string(), "--profile", "device", "--name", "dev-18", "--out-cert",
                (dir_ / "id3.crt").string(), "--out-key", (dir_ / "id3.key").string()});
    EXPECT_EQ(stolen.exit_code, 2) << test::describe(stolen);
    EXPECT_NE(stolen.err.find("403"), std::string::npos) << stolen.err;
    EXPECT_FALSE(fs::exists(dir_ / "id3.crt"));
}

TEST_F(ServiceTest, ARecordedRequestCannotBeSentAgain) {
    auto& service = start();
    std::string body = R"({"count": 1})";
    std::string header = sign_request_hmac_for_shell("POST", "/v1/enrollment-tokens", body);
    auto send = [&] {
        return test::run({"curl", "-s", "--cacert", (dir_ / "ca" / "root.crt").string(), "-H",
                          "content-type: application/json", "-H", "authorization: " + header,
                          "--data-binary", body, "-o", "/dev/null", "-w", "%{http_code}",
                          service.url("api") + "/v1/enrollment-tokens"},
                         "", 30s)
            .out;
    };
    EXPECT_EQ(send(), "200");
    EXPECT_EQ(send(), "401");
}

TEST_F(ServiceTest, ADeviceKeepsItsAddressRecordInBind) {
    test::Named named;
    config_["devices"]["dns"] = {{"server", named.server()},
                                 {"tsig_key_file", named.key_file().string()}};
    auto& service = start();
    auto made = admin("POST", "/v1/enrollment-tokens", R"({"count": 1})");
    std::string token = json::parse(made.out.substr(0, made.out.rfind('\n')))["tokens"][0];
    auto enroll = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {test::enroll_binary()});
        args.insert(args.end(),
                    {"--service", service.url("api"), "--ca", (dir_ / "ca" / "root.crt").string(),
                     "--credentials", (dir_ / "device.json").string()});
        return test::run(args, "", 60s);
    };
    auto registered = enroll({"register", "--token", token, "--address", "10.1.1.4"});
    ASSERT_EQ(registered.exit_code, 0) << test::describe(registered) << service.log();
    std::string name = json::parse(read_file(dir_ / "device.json"))["name"];
    auto dig = [&](const std::string& type) {
        return test::run({"dig", "@127.0.0.1", "-p", std::to_string(named.port()), "+norecurse",
                          "+short", name, type})
            .out;
    };
    EXPECT_EQ(dig("A"), "10.1.1.4\n");
    auto moved = enroll({"address", "--address", "10.1.1.5", "--address", "fd00::5"});
    ASSERT_EQ(moved.exit_code, 0) << test::describe(moved) << service.log();
    EXPECT_EQ(dig("A"), "10.1.1.5\n");
    EXPECT_EQ(dig("AAAA"), "fd00::5\n");
}

TEST_F(ServiceTest, EstEnrollsAndReenrollsWithCurlAndOpenssl) {
    auto& service = start();
    auto made = admin("POST", "/v1/enrollment-tokens", R"({"count": 1})");
    ASSERT_EQ(made.out.substr(made.out.rfind('\n') + 1), "200") << made.out;
    std::string token = json::parse(made.out.substr(0, made.out.rfind('\n')))["tokens"][0];
    std::string est = service.url("api") + "/.well-known/est";
    std::string curl = "curl -sS --fail-with-body --cacert ca/root.crt ";
    // cacerts: the CA's certificate, as PKCS#7 in base64.
    auto cacerts = shell(curl + est +
                         "/cacerts | openssl base64 -d | openssl pkcs7 -inform DER "
                         "-print_certs");
    ASSERT_EQ(cacerts.exit_code, 0) << test::describe(cacerts) << service.log();
    EXPECT_NE(cacerts.out.find("subject=CN = brokertls CA"), std::string::npos) << cacerts.out;
    // simpleenroll with the one-time token; the answer is the certificate alone.
    auto enroll = [&](const std::string& cn, const std::string& auth, const std::string& out) {
        return shell(
            "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
            "-keyout " +
            out + ".key -subj /CN=" + cn + " -outform DER 2>/dev/null | openssl base64 > " + out +
            ".b64\n" + curl + auth + " -H 'Content-Type: application/pkcs10' --data-binary @" +
            out + ".b64 " + est +
            "/simpleenroll | openssl base64 -d | openssl pkcs7 -inform "
            "DER -print_certs -out " +
            out + ".crt");
    };
    auto enrolled = enroll("sensor-7", "-H 'Authorization: Bearer " + token + "'", "sensor");
    ASSERT_EQ(enrolled.exit_code, 0) << test::describe(enrolled) << service.log();
    auto leaf = Certificate::load(dir_ / "sensor.crt");
    EXPECT_EQ(leaf.common_name(), "sensor-7");
    EXPECT_EQ(leaf.extended_key_usage(), std::vector<std::string>{"clientAuth"});
    EXPECT_EQ(leaf.not_after() - leaf.not_before(), 7 * 24h + 1min);  // the profile's lifetime
    auto spent = enroll("sensor-8", "-H 'Authorization: Bearer " + token + "'", "other");
    EXPECT_NE(spent.exit_code, 0);
    // The answer went down the pipe; the audit log says why.
    EXPECT_NE(
        read_file(dir_ / "state" / "audit.jsonl").find("unknown, used or expired enrollment token"),
        std::string::npos);
    // simplereenroll over mutual TLS with the current certificate: same names only.
    auto reenroll = [&](const std::string& subject) {
        return shell("openssl req -new -key sensor.key -subj " + subject +
                     " -outform DER | openssl base64 > re.b64\n" + curl +
                     "--cert sensor.crt --key sensor.key -H 'Content-Type: application/pkcs10' "
                     "--data-binary @re.b64 " +
                     est +
                     "/simplereenroll | openssl base64 -d | "
                     "openssl pkcs7 -inform DER -print_certs -out re.crt");
    };
    auto renewed = reenroll("/CN=sensor-7");
    ASSERT_EQ(renewed.exit_code, 0) << test::describe(renewed) << service.log();
    auto next = Certificate::load(dir_ / "re.crt");
    EXPECT_EQ(next.common_name(), "sensor-7");
    EXPECT_NE(next.serial_hex(), leaf.serial_hex());
    auto other = reenroll("/CN=sensor-8");
    EXPECT_NE(other.exit_code, 0);
    auto audit = read_file(dir_ / "state" / "audit.jsonl");
    EXPECT_NE(audit.find("\"endpoint\":\"est\",\"event\":\"refused\""), std::string::npos) << audit;
    EXPECT_NE(audit.find("\"status\":403"), std::string::npos) << audit;
}

// The leaf a new TLS handshake on `port` gets, as openssl sees it ("" when none).
std::string served_serial(int port) {
    auto r = test::run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port)}, "",
                       10s);
    auto begin = r.out.find("-----BEGIN CERTIFICATE-----");
    if (begin == std::string::npos) return "";
    return Certificate::parse(r.out.substr(begin), "s_client output").serial_hex();
}

TEST_F(ServiceTest, AnEdgeBrokerGetsItsCertificateFromTheServiceAndPahoVerifiesIt) {
    auto& service = start();
    // The device registers (an admin's token), then its broker's profile uses its credentials.
    auto made = admin("POST", "/v1/enrollment-tokens", R"({"count": 1})");
    std::string token = json::parse(made.out.substr(0, made.out.rfind('\n')))["tokens"][0];
    auto registered = test::run({test::enroll_binary(), "register", "--service", service.url("api"),
                                 "--ca", (dir_ / "ca" / "root.crt").string(), "--token", token,
                                 "--credentials", (dir_ / "device.json").string()},
                                "", 30s);
    ASSERT_EQ(registered.exit_code, 0) << test::describe(registered);
    std::string name = json::parse(read_file(dir_ / "device.json"))["name"];
    fs::create_directories(dir_ / "broker");
    write_file_atomic(
        dir_ / "broker" / "brokertls.json",
        json({{"certificate_profiles",
               {{"edge",
                 {{"source", "service"},
                  {"names", {name}},
                  {"service",
                   {{"url", service.url("api")},
                    {"ca_bundle", (dir_ / "ca" / "root.crt").string()},
                    {"credentials", (dir_ / "device.json").string()}}},
                  {"deploy", {{"cert", "live/edge.crt"}, {"key", "live/edge.key"}}}}}}}})
            .dump());
    test::ListenerSpec tls;
    tls.certfile = dir_ / "broker" / "live/edge.crt";
    tls.keyfile = dir_ / "broker" / "live/edge.key";
    tls.require_certificate = false;
    test::Mosquitto broker(dir_ / "broker", dir_ / "broker" / "brokertls.json", {tls});
    EXPECT_TRUE(broker.wait_for_log("until the service completes", 10s)) << broker.log();
    ASSERT_TRUE(broker.wait_for_log("certificate profile edge: obtained: deployed", 30s))
        << broker.log() << service.log();
    auto chain = Certificate::load_chain(dir_ / "broker" / "live/edge.crt");
    EXPECT_EQ(chain.front().subject_alt_names(),
              (std::vector<SubjectAltName>{{SubjectAltName::Type::Dns, name}}));
    ASSERT_TRUE(test::eventually(
        [&] { return served_serial(broker.port()) == chain.front().serial_hex(); }, 10s, 100ms))
        << broker.log();
    // The audit says who asked: the device itself.
    auto audit = read_file(dir_ / "state" / "audit.jsonl");
    EXPECT_NE(audit.find("\"client\":\"device " +
                         json::parse(read_file(dir_ / "device.json"))["key_id"].get<std::string>()),
              std::string::npos)
        << audit;
    // A Paho client trusting the service's CA accepts the broker (its name resolves nowhere,
    // so the client checks the certificate chain, as Mosquitto's own test clients do).
    test::MqttClient client(broker.port(), "watcher", dir_ / "ca" / "root.crt", {});
    EXPECT_EQ(client.connect(), "");
}

}  // namespace
}  // namespace brokertls
