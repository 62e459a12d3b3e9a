// brokertls-ctl: sends a $CONTROL/brokertls/v1 command to a broker running the brokertls plugin
// (as mosquitto_ctrl does for dynamic-security) and prints the answer.

#include <mqtt/async_client.h>

#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/error.hpp"

namespace {

using nlohmann::json;

constexpr const char* kUsage =
    R"(Usage: brokertls-ctl [options] status|reload|renew PROFILE|resume PROFILE

Commands:
  status          profiles, certificates (subject, fingerprint, expiry, next renewal, last
                  result, failures), counters of accepted and rejected connections by reason,
                  last reload and its result
  reload          re-read brokertls.json and every profile file now; prints what changed
  renew PROFILE   start an ACME order for this acme certificate profile now
  resume PROFILE  the manual dns-01 record of PROFILE is in place: let its order continue

Options:
  --host H        broker host (default 127.0.0.1)
  --port P        broker TLS port (default 8883)
  --ca FILE       CA certificate of the broker's certificate (required)
  --cert FILE     client certificate (chain) for mutual TLS; its identity must be in control.allow
  --key FILE      its private key
  --id ID         MQTT client id (default: the CN of --cert, as profiles that require client
                  certificates want the client id to equal the identity; else brokertls-ctl)
  --timeout S     seconds to wait for the answer (default 10)
  --json          print the answer as JSON
Exit codes: 0 ok, 1 usage error, 2 connection failure, refusal or error answer.
)";

struct Options {
    std::string host = "127.0.0.1", ca, cert, key, id, command, profile;
    int port = 8883, timeout = 10;
    bool json = false;
};

[[noreturn]] void usage(const std::string& message) {
    std::cerr << "brokertls-ctl: " << message << "\n\n" << kUsage;
    std::exit(1);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << kUsage;
            std::exit(0);
        }
        if (a == "--json") {
            o.json = true;
            continue;
        }
        if (a.rfind("--", 0) != 0) {
            if (o.command.empty())
                o.command = a;
            else if ((o.command == "renew" || o.command == "resume") && o.profile.empty())
                o.profile = a;
            else
                usage("one command only");
            continue;
        }
        if (i + 1 >= argc) usage(a + " needs a value (or is unknown)");
        std::string v = argv[++i];
        try {
            if (a == "--host")
                o.host = v;
            else if (a == "--port")
                o.port = std::stoi(v);
            else if (a == "--ca")
                o.ca = v;
            else if (a == "--cert")
                o.cert = v;
            else if (a == "--key")
                o.key = v;
            else if (a == "--id")
                o.id = v;
            else if (a == "--timeout")
                o.timeout = std::stoi(v);
            else
                usage("unknown option " + a);
        } catch (const std::logic_error&) {
            usage(a + " " + v + ": not a number");
        }
    }
    if (o.command != "status" && o.command != "reload" && o.command != "renew" &&
        o.command != "resume")
        usage(o.command.empty() ? "a command is needed" : "unknown command " + o.command);
    if ((o.command == "renew" || o.command == "resume") && o.profile.empty())
        usage(o.command + " needs the name of a certificate profile");
    if (o.ca.empty()) usage("--ca is required");
    if (o.cert.empty() != o.key.empty()) usage("--cert and --key go together");
    if (o.id.empty()) {
        o.id = "brokertls-ctl";
        if (!o.cert.empty()) try {
                std::string cn = brokertls::Certificate::load(o.cert).common_name();
                if (!cn.empty()) o.id = cn;
            } catch (const brokertls::Error& e) {
                usage(std::string("--cert: ") + e.what());
            }
    }
    return o;
}

void print_status(const json& d) {
    std::cout << "config:   " << d.value("config_file", "") << "\n"
              << "reload:   " << d["last_reload"].value("at", "") << " "
              << (d["last_reload"].value("ok", false) ? "ok" : "FAILED") << " ("
              << d["last_reload"].value("message", "") << ")\n";
    if (!d["certificate_profiles"].empty()) {
        std::cout << "\ncertificate profiles:\n";
        for (const auto& [name, c] : d["certificate_profiles"].items())
            std::cout << "  " << std::left << std::setw(16) << name << c.value("subject", "")
                      << "  sha256 " << c.value("fingerprint", "").substr(0, 16) << "…  until "
                      << c.value("not_after", "")
                      << (c.value("renew_at", "").empty() ? ""
                                                          : "  renew " + c.value("renew_at", ""))
                      << "  " << c.value("last_result", "") << "\n";
        for (const auto& [name, c] : d["certificate_profiles"].items()) {
            if (c.value("source", "") != "acme") continue;
            std::cout << "  " << name << ": issuer " << c.value("issuer", "") << ", next renewal "
                      << c.value("next_renewal", "") << ", failures "
                      << c.value("consecutive_failures", 0)
                      << (c.value("temporary", false) ? ", serving the temporary certificate" : "")
                      << (c.value("waiting_for_operator", false)
                              ? ", WAITING: run `brokertls-ctl resume " + name + "`"
                              : "")
                      << (c.value("last_error", "").empty()
                              ? ""
                              : "\n    last error: " + c.value("last_error", ""))
                      << "\n";
        }
    }
    if (!d["security_profiles"].empty()) {
        std::cout << "\nsecurity profiles:\n";
        for (const auto& [name, p] : d["security_profiles"].items())
            std::cout << "  " << std::left << std::setw(16) << name << "identity "
                      << p.value("identity", "") << ", " << p["trust_anchors"].size()
                      << " anchor(s), " << p.value("crls", 0) << " CRL(s)\n";
    }
    std::cout << "\ncounters:\n";
    for (const auto& [name, v] : d["counters"].items())
        std::cout << "  " << std::left << std::setw(28) << name << v << "\n";
    for (const auto& w : d["warnings"]) std::cout << "warning: " << w.get<std::string>() << "\n";
}

// Exits once the answer is printed, without running Paho's destructors: Paho C++ 1.2.0's
// async_client destructor blocked for good after a goodbye that failed (seen under
// AddressSanitizer's load), and the process ending closes the connection anyway.
[[noreturn]] void leave(int code) {
    std::cout.flush();
    std::cerr.flush();
    std::_Exit(code);
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    std::string uri = "ssl://" + o.host + ":" + std::to_string(o.port);
    mqtt::async_client client(uri, o.id);
    auto ssl = mqtt::ssl_options_builder()
                   .trust_store(o.ca)
                   .enable_server_cert_auth(true)
                   // ... and that it names the host we connect to (--host).
                   .verify(true);
    // No ssl error_handler: Paho C++ 1.2.0 (Debian 12) hands the TLS error callback a pointer to
    // a copy of the options that connect() has already destroyed (paho.mqtt.cpp#325, #439); a
    // handshake message then crashed this program under AddressSanitizer.
    if (!o.cert.empty()) ssl.key_store(o.cert).private_key(o.key);
    auto options = mqtt::connect_options_builder()
                       .ssl(ssl.finalize())
                       .clean_session(true)
                       .mqtt_version(MQTTVERSION_3_1_1)
                       .connect_timeout(std::chrono::seconds(o.timeout))
                       .finalize();
    std::string correlation = std::to_string(std::random_device{}());
    std::string command = o.command == "status"   ? "getStatus"
                          : o.command == "resume" ? "resumeChallenge"
                                                  : o.command;
    json cmd{{"command", command}, {"correlationData", correlation}};
    if (!o.profile.empty()) cmd["profile"] = o.profile;
    json request{{"commands", json::array({cmd})}};
    try {
        client.start_consuming();
        client.connect(options)->wait();
        client.subscribe("$CONTROL/brokertls/v1/response", 1)->wait();
        client.publish("$CONTROL/brokertls/v1", request.dump(), 1, false)->wait();
    } catch (const mqtt::exception& e) {
        std::cerr << "brokertls-ctl: " << uri << ": " << e.what()
                  << " (a TLS failure: check that --ca is the CA of the broker's certificate, "
                     "that --host is a name in it, and --cert/--key)\n";
        return 2;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout);
    while (std::chrono::steady_clock::now() < deadline) {
        mqtt::const_message_ptr msg;
        if (!client.try_consume_message_until(&msg, deadline) || !msg) break;
        json doc = json::parse(msg->to_string(), nullptr, false);
        if (doc.is_discarded() || !doc.contains("responses")) continue;
        for (const auto& r : doc["responses"]) {
            if (r.value("correlationData", "") != correlation && !r.contains("error")) continue;
            try {
                client.disconnect(std::chrono::seconds(1))->wait_for(std::chrono::seconds(2));
            } catch (const mqtt::exception&) {
                // The answer is in; a goodbye the broker did not take changes nothing. (Uncaught,
                // it ended the program with abort(): seen once under AddressSanitizer's load.)
            }
            if (o.json) std::cout << r.dump(2) << "\n";
            if (r.contains("error")) {
                std::cerr << "brokertls-ctl: " << command << ": " << r["error"].get<std::string>()
                          << "\n";
                leave(2);
            }
            if (o.json) leave(0);
            if (command == "getStatus") {
                print_status(r["data"]);
            } else if (command != "reload") {
                std::cout << o.command << " " << o.profile << ": ok\n";
            } else {
                for (const auto& line : r["data"]["log"])
                    std::cout << line.get<std::string>() << "\n";
                std::cout << "reload ok\n";
            }
            leave(0);
        }
    }
    std::cerr << "brokertls-ctl: no answer within " << o.timeout
              << " s (is the brokertls plugin loaded on this listener, and may this client publish "
                 "to $CONTROL/brokertls/v1?)\n";
    return 2;
}
