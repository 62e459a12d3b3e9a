// Publishes one message over TLS or mutual TLS, then disconnects.

#include <iostream>

#include "client_options.hpp"

static const char* kUsage =
    R"(Usage: brokertls-paho-pub --ca ROOT.crt --id CLIENT_ID --topic T --message M [options]

  --host H        broker host (default 127.0.0.1)
  --port P        broker TLS port (default 8883)
  --ca FILE       CA certificate that signed the broker's certificate (required)
  --cert FILE     client certificate (chain) for mutual TLS, e.g. dev-1.chain.pem
  --key FILE      its private key
  --id ID         MQTT client id (required)
  --topic T       topic (required)
  --message M     payload
  --timeout S     connect timeout in seconds (default 10)
Exit codes: 0 published, 1 usage error, 2 connection or publish failed.
)";

int main(int argc, char** argv) {
    auto options = example::parse(argc, argv, kUsage, true);
    auto client = example::connect(options);
    try {
        client->publish(options.topic, options.message.data(), options.message.size(), 1, false)
            ->wait();
        std::cout << "published to " << options.topic << ": " << options.message << "\n";
        client->disconnect()->wait();
    } catch (const mqtt::exception& e) {
        std::cerr << "publish failed: " << e.what() << "\n";
        return 2;
    }
    return 0;
}
