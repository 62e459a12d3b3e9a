// brokertls-enroll: the device side of brokertls-service, for scripts and systemd timers.
// Registers a device with a one-time token, keeps its address current, and gets or renews its
// certificate (the key is made here and never leaves the device).

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/crypto/csr.hpp"
#include "brokertls/crypto/key.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "brokertls/time/clock.hpp"
#include "config/config.hpp"
#include "fleet/service_client.hpp"

namespace {

using namespace brokertls;
using nlohmann::json;

constexpr const char* kUsage = R"(Usage: brokertls-enroll COMMAND --service URL [options]

Commands:
  register     register this device with a one-time enrollment token; writes --credentials
  address      set this device's A/AAAA records (--address, repeatable; "auto" = this host's
               address toward the service)
  certificate  get a certificate for this device (or --name ...) unless the one in --out-cert
               is not yet due; with --cert/--key it renews that certificate over mutual TLS

Options:
  --service URL        brokertls-service's v1 listener (https://...)
  --ca FILE            CA certificate(s) to trust for the service (default: the system store)
  --credentials FILE   the device's key id and key (written by register, mode 0600)
  --token TOKEN        register: the enrollment token
  --address A          register, address: an IP address or "auto" (repeatable)
  --profile NAME       certificate: the service profile (default: the device's fleet profile)
  --name NAME          certificate: a name to ask for (repeatable; default: the device's name)
  --key-type T         certificate: ecdsa-p256 (default), ecdsa-p384, rsa2048, rsa3072, rsa4096
  --out-cert FILE      certificate: where the chain goes (required)
  --out-key FILE       certificate: where the key goes (mode 0600; required)
  --cert FILE --key F  certificate: renew this certificate, authenticating with it
  --force              certificate: ask even when the current certificate is not due
Exit codes: 0 done (or not due), 1 usage error, 2 refused or failed, 3 unavailable: try again
later (the service's Retry-After is printed).
)";

struct Options {
    std::string command, service, token, profile, key_type = "ecdsa-p256";
    std::optional<std::string> ca, credentials, out_cert, out_key, cert, key;
    std::vector<std::string> addresses, names;
    bool force = false;
};

[[noreturn]] void usage(const std::string& message) {
    std::cerr << "brokertls-enroll: " << message << "\n\n" << kUsage;
    std::exit(1);
}

Options parse(int argc, char** argv) {
    Options o;
    if (argc < 2) usage("a command is required");
    o.command = argv[1];
    if (o.command == "--help" || o.command == "-h") {
        std::cout << kUsage;
        std::exit(0);
    }
    if (o.command == "--version") {
        std::cout << "brokertls-enroll " << BROKERTLS_VERSION << "\n";
        std::exit(0);
    }
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--service")
            o.service = value();
        else if (a == "--ca")
            o.ca = value();
        else if (a == "--credentials")
            o.credentials = value();
        else if (a == "--token")
            o.token = value();
        else if (a == "--address")
            o.addresses.push_back(value());
        else if (a == "--profile")
            o.profile = value();
        else if (a == "--name")
            o.names.push_back(value());
        else if (a == "--key-type")
            o.key_type = value();
        else if (a == "--out-cert")
            o.out_cert = value();
        else if (a == "--out-key")
            o.out_key = value();
        else if (a == "--cert")
            o.cert = value();
        else if (a == "--key")
            o.key = value();
        else if (a == "--force")
            o.force = true;
        else
            usage("unknown option " + a);
    }
    if (o.service.empty()) usage("--service URL is required");
    return o;
}

std::vector<std::string> resolve(const std::vector<std::string>& addresses,
                                 const std::string& url) {
    std::vector<std::string> out;
    for (const auto& a : addresses) out.push_back(a == "auto" ? local_address_toward(url) : a);
    return out;
}

int run(const Options& o) {
    CurlOptions curl;
    if (o.ca) curl.ca_bundle = *o.ca;
    if (o.cert || o.key) {
        if (!o.cert || !o.key) usage("--cert and --key go together");
        curl.client_cert = *o.cert;
        curl.client_key = *o.key;
    }
    auto transport = make_curl_transport(curl);
    Clock& clock = Clock::system();

    if (o.command == "register") {
        if (o.token.empty() || !o.credentials) usage("register needs --token and --credentials");
        // Checked before the token is spent: the key is shown once and must have a place to go.
        std::error_code ec;
        if (std::filesystem::exists(*o.credentials, ec))
            fail(ErrorKind::State, *o.credentials, "already exists: nothing was registered");
        ServiceClient client(o.service, std::nullopt, *transport, clock);
        auto device = client.register_device(o.token, resolve(o.addresses, o.service));
        json creds = {{"key_id", device.id},
                      {"key", device.key},
                      {"name", device.name},
                      {"service", o.service}};
        write_file_atomic(*o.credentials, creds.dump(2) + "\n", kPrivateMode, Overwrite::Refuse);
        std::cout << "registered " << device.name << "\n";
        if (!device.address_error.empty()) {
            std::cerr << "brokertls-enroll: the address was not set: " << device.address_error
                      << " (run brokertls-enroll address)\n";
            return 3;
        }
        return 0;
    }
    if (o.command == "address") {
        if (!o.credentials || o.addresses.empty())
            usage("address needs --credentials and --address");
        ServiceClient client(o.service, load_service_credentials(*o.credentials), *transport,
                             clock);
        auto addresses = resolve(o.addresses, o.service);
        client.set_addresses(addresses);
        for (const auto& a : addresses) std::cout << "address " << a << "\n";
        return 0;
    }
    if (o.command != "certificate") usage("unknown command " + o.command);
    if (!o.out_cert || !o.out_key) usage("certificate needs --out-cert and --out-key");
    auto key_type = parse_key_type(o.key_type);
    if (!key_type) usage("unknown --key-type " + o.key_type);
    std::vector<SubjectAltName> names;
    for (const auto& n : o.names) names.push_back(classify_name(n));
    std::optional<ServiceCredentials> credentials;
    if (o.cert) {
        // Renewal over mutual TLS: exactly the names of the certificate presented.
        Certificate current = Certificate::load(*o.cert);
        if (names.empty()) {
            if (!current.common_name().empty())
                names.push_back(classify_name(current.common_name()));
            for (const auto& san : current.subject_alt_names())
                if (std::find(names.begin(), names.end(), san) == names.end()) names.push_back(san);
        }
    } else {
        if (!o.credentials) usage("certificate needs --credentials (or --cert and --key)");
        credentials = load_service_credentials(*o.credentials);
        if (names.empty()) {
            json creds = json::parse(read_file(*o.credentials), nullptr, false);
            if (!creds.is_object() || !creds.contains("name"))
                usage("--name is required: " + *o.credentials + " names no device");
            names.push_back(classify_name(creds["name"].get<std::string>()));
        }
    }
    std::error_code ec;
    if (!o.force && std::filesystem::exists(*o.out_cert, ec)) {
        Certificate current = Certificate::load(*o.out_cert);
        TimePoint due = current.not_after() - (current.not_after() - current.not_before()) / 3;
        if (clock.now() < due) {
            std::cout << "not due: " << *o.out_cert << " is renewed from " << to_iso8601(due)
                      << "\n";
            return 0;
        }
    }
    PrivateKey key = PrivateKey::generate(*key_type);
    std::string cn = names.front().value;
    ServiceClient client(o.service, credentials, *transport, clock);
    auto issued = client.request_certificate(CertificateRequest::create(key, cn, names), o.profile);
    // Key and chain replace the old pair together: never a new key beside an old certificate.
    AtomicBatch batch;
    batch.stage(*o.out_key, key.to_pem(), kPrivateMode);
    std::string chain;
    for (const auto& c : issued.chain) chain += c.to_pem();
    batch.stage(*o.out_cert, chain, kPublicMode);
    batch.commit();
    std::cout << "certificate " << issued.chain.front().serial_hex() << " for " << cn << " until "
              << to_iso8601(issued.chain.front().not_after()) << ", renew from "
              << to_iso8601(issued.renew_at) << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    try {
        return run(o);
    } catch (const Error& e) {
        std::cerr << "brokertls-enroll: " << e.what() << "\n";
        // Io: the service, its CA or the network is unavailable: a timer tries again later.
        return e.kind() == ErrorKind::Io ? 3 : 2;
    }
}
