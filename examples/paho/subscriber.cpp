// Subscribes over TLS or mutual TLS and prints messages until --count arrived or --timeout passed.

#include <iostream>

#include "client_options.hpp"

static const char* kUsage =
    R"(Usage: brokertls-paho-sub --ca ROOT.crt --id CLIENT_ID --topic FILTER [options]

  --host H        broker host (default 127.0.0.1)
  --port P        broker TLS port (default 8883)
  --ca FILE       CA certificate that signed the broker's certificate (required)
  --cert FILE     client certificate (chain) for mutual TLS, e.g. dev-1.chain.pem
  --key FILE      its private key
  --id ID         MQTT client id (required)
  --topic F       topic filter (required)
  --count N       exit after N messages (default 1)
  --timeout S     give up after S seconds without a message (default 10)
Exit codes: 0 received N messages, 1 usage error, 2 connection lost or timed out.
)";

int main(int argc, char** argv) {
    auto options = example::parse(argc, argv, kUsage, false);
    auto client = example::connect(options);
    try {
        client->subscribe(options.topic, 1)->wait();
        std::cout << "subscribed to " << options.topic << std::endl;
        for (int received = 0; received < options.count; ++received) {
            mqtt::const_message_ptr msg;
            if (!client->try_consume_message_for(&msg,
                                                 std::chrono::seconds(options.timeout_seconds))) {
                std::cerr << "no message within " << options.timeout_seconds << " s\n";
                return 2;
            }
            if (!msg) {
                std::cerr << "connection lost (the broker may have revoked this client)\n";
                return 2;
            }
            std::cout << msg->get_topic() << " " << msg->to_string() << std::endl;
        }
        client->disconnect()->wait();
    } catch (const mqtt::exception& e) {
        std::cerr << "subscription failed: " << e.what() << "\n";
        return 2;
    }
    return 0;
}
