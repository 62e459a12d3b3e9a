#include "client_options.hpp"

#include <cstdlib>
#include <iostream>

namespace example {

namespace {

[[noreturn]] void usage_error(const char* usage, const std::string& message) {
    std::cerr << "error: " << message << "\n\n" << usage;
    std::exit(1);
}

}  // namespace

Options parse(int argc, char** argv, const char* usage, bool publisher) {
    Options o;
    std::vector<std::string> args(argv + 1, argv + argc);
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            std::exit(0);
        }
        if (i + 1 >= args.size()) usage_error(usage, a + " needs a value (or is unknown)");
        const std::string& v = args[++i];
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
                o.client_id = v;
            else if (a == "--topic")
                o.topic = v;
            else if (a == "--message" && publisher)
                o.message = v;
            else if (a == "--count" && !publisher)
                o.count = std::stoi(v);
            else if (a == "--timeout")
                o.timeout_seconds = std::stoi(v);
            else
                usage_error(usage, "unknown option " + a);
        } catch (const std::logic_error&) {
            usage_error(usage, a + " " + v + ": not a number");
        }
    }
    if (o.ca.empty())
        usage_error(usage, "--ca is required (the CA that signed the broker's certificate)");
    if (o.topic.empty()) usage_error(usage, "--topic is required");
    if (o.cert.empty() != o.key.empty()) usage_error(usage, "--cert and --key go together");
    if (o.client_id.empty())
        usage_error(usage,
                    "--id is required (with brokertls it often must equal the certificate's CN)");
    return o;
}

std::unique_ptr<mqtt::async_client> connect(const Options& o) {
    std::string uri = "ssl://" + o.host + ":" + std::to_string(o.port);
    // No persistence: these examples keep nothing on disk.
    auto client = std::make_unique<mqtt::async_client>(uri, o.client_id);
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
                       // Pinned: Paho's default retries a refused 3.1.1 CONNECT as MQTT 3.1.
                       .mqtt_version(MQTTVERSION_3_1_1)
                       .connect_timeout(std::chrono::seconds(o.timeout_seconds))
                       .finalize();
    try {
        client->start_consuming();
        client->connect(options)->wait();
    } catch (const mqtt::exception& e) {
        std::cerr << "cannot connect to " << uri << " as '" << o.client_id << "' ("
                  << (o.cert.empty() ? "TLS, no client certificate" : "mutual TLS with " + o.cert)
                  << "): " << e.what() << "\n";
        if (e.get_return_code() == 5 || e.get_reason_code() == 135)
            std::cerr << "  the broker refused the client: see its log for the brokertls reason\n";
        std::exit(2);
    }
    std::cout << "connected to " << uri << " as '" << o.client_id << "'"
              << (o.cert.empty() ? " (TLS)" : " (mutual TLS)") << "\n";
    return client;
}

}  // namespace example
