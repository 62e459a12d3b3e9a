// Crash consistency of the broker side: mosquitto with the plugin is SIGKILLed at random
// moments while a local-ca certificate profile issues and deploys new certificates (a 120 s
// lifetime renewed 118 s early makes every start and nearly every watcher round deploy). After
// each kill: the deployed key matches the deployed certificate (finishing or dropping an
// interrupted deploy), the CA's index parses and holds every certificate in certs/ exactly once,
// the next start succeeds, and no temporary file stays behind.

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include "brokertls/ca/authority.hpp"
#include "deploy/deployer.hpp"
#include "deploy/server_material.hpp"
#include "mosquitto_fixture.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST(BrokerCrash, KilledDuringLocalCaDeploysLeavesAConsistentState) {
    TempDir tmp;
    CertificateAuthority::init_root(tmp / "server-ca", {}, SystemClock::now());
    std::ofstream(tmp / "brokertls.json") << R"({"certificate_profiles": {"broker": {
        "source": "local-ca", "local_ca": {"dir": "server-ca", "lifetime": "120s"},
        "renew_before": "118s", "names": ["localhost", "127.0.0.1"],
        "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}}}})";
    int port = free_port();
    std::ofstream(tmp / "mosquitto.conf")
        << "per_listener_settings true\nuser root\nlog_dest stderr\nlog_type all\n"
        << "listener " << port << " 127.0.0.1\nallow_anonymous true\n"
        << "certfile " << (tmp / "live/broker.crt").string() << "\n"
        << "keyfile " << (tmp / "live/broker.key").string() << "\n"
        << "plugin " << plugin_path() << "\nplugin_opt_config_file "
        << (tmp / "brokertls.json").string() << "\n";
    std::vector<std::string> argv{broker_under_test().binary, "-c",
                                  (tmp / "mosquitto.conf").string()};

    unsigned seed = std::random_device{}();
    std::cout << "[ seed     ] " << seed << "\n";
    std::mt19937 random(seed);
    std::uniform_int_distribution<int> kill_after_ms(0, 600);
    constexpr int kKills = 50;
    int deployed_when_killed = 0;
    for (int i = 0; i < kKills; ++i) {
        {
            Process broker(argv, tmp / ("broker-" + std::to_string(i) + ".log"),
                           broker_environment());
            // The kill point: a random moment of the start-up and the deploys that follow.
            std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms(random)));
            ::kill(broker.pid(), SIGKILL);
            broker.stop();
        }
        // What a start finds: any interrupted deploy is finished or dropped ...
        Deployer::recover(tmp / "live/broker.crt", tmp / "live/broker.key");
        auto deployed = Deployer::read(tmp / "live/broker.crt", tmp / "live/broker.key");
        if (deployed) {
            ++deployed_when_killed;
            ASSERT_TRUE(deployed->leaf().matches_key(deployed->key)) << "kill " << i;
        }
        // ... and the CA's bookkeeping is whole: every certificate issued is in the index once.
        CertificateAuthority ca(tmp / "server-ca", {}, false, DirectoryLock::Mode::Shared,
                                SystemClock::now());
        std::map<std::string, int> indexed;
        for (const auto& entry : ca.list()) ++indexed[entry.serial];
        std::error_code none;  // no certs/ yet when killed before the first issue
        for (const auto& file : fs::directory_iterator(tmp / "server-ca/certs", none)) {
            if (file.path().extension() != ".pem") continue;
            std::string serial = file.path().stem().string();
            ASSERT_EQ(indexed[serial], 1) << file.path() << " after kill " << i;
        }
    }
    // The next start succeeds, and after a clean stop nothing temporary is left.
    {
        Process broker(argv, tmp / "broker-final.log", broker_environment());
        ASSERT_TRUE(broker.wait_for_log(" running", 10s)) << broker.log();
        ASSERT_TRUE(wait_for_port(port, 10s));
        broker.stop();  // SIGTERM: the plugin's cleanup joins its threads
    }
    EXPECT_EQ(temp_files(tmp / "live"), std::vector<std::string>{});
    EXPECT_EQ(temp_files(tmp / "server-ca"), std::vector<std::string>{});
    auto served = Deployer::read(tmp / "live/broker.crt", tmp / "live/broker.key");
    ASSERT_TRUE(served);
    EXPECT_TRUE(served->leaf().matches_key(served->key));
    std::cout << "[ kills    ] " << kKills << " survived (" << deployed_when_killed
              << " with a deployed pair on disk)\n";
}

}  // namespace
}  // namespace brokertls::test
