// The plugin keeps a listener's capath equal to the profiles' anchors: a CA added to
// brokertls.json is trusted by the broker's own handshake without a restart, and removed again.

#include <gtest/gtest.h>

#include "brokertls/store/files.hpp"
#include "mosquitto_fixture.hpp"
#include "pki.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST(MosquittoCapath, CaAddedToTheConfigIsTrustedWithoutRestartAndRemovedAgain) {
    TempDir tmp;
    TestPki first(tmp / "first", "first CA");
    TestPki second(tmp / "second", "second CA");
    auto write_config = [&](const std::vector<fs::path>& anchors) {
        std::string list;
        for (const auto& a : anchors) list += (list.empty() ? "\"" : ", \"") + a.string() + "\"";
        write_file_atomic(tmp / "brokertls.json",
                          R"({"capath": ")" + (tmp / "capath").string() +
                              R"(", "security_profiles": {"devices": {"trust_anchors": [)" + list +
                              "]}}}");
    };
    write_config({first.root()});
    ListenerSpec l;
    l.security_profile = "devices";
    l.certfile = first.server_cert();
    l.keyfile = first.server_key();
    l.capath = tmp / "capath";  // filled by the plugin before mosquitto opens the listener
    Mosquitto broker(tmp.path(), tmp / "brokertls.json", {l});

    auto old_client = first.client("dev-1");
    auto new_client = second.client("dev-2");
    MqttClient a(broker.port(), "dev-1", first.root(), old_client);
    EXPECT_EQ(a.connect(), "");
    MqttClient refused(broker.port(), "dev-2", first.root(), new_client);
    EXPECT_NE(refused.connect(), "");  // second CA unknown to the handshake

    size_t mark = broker.log_mark();
    write_config({first.root(), second.root()});
    ASSERT_TRUE(broker.wait_for_log_after(mark, "capath " + (tmp / "capath").string() + ": wrote"))
        << broker.log();
    MqttClient accepted(broker.port(), "dev-2", first.root(), new_client);
    EXPECT_EQ(accepted.connect(), "");
    EXPECT_TRUE(broker.wait_for_log("accepted client 'dev-2' as 'dev-2'"));

    // A CA file the operator put into the same directory (a c_rehash name) is not ours to remove.
    write_file_atomic(tmp / "capath" / "0badc0de.0", read_file(second.root()));

    mark = broker.log_mark();
    write_config({first.root()});
    ASSERT_TRUE(broker.wait_for_log_after(mark, ": removed")) << broker.log();
    EXPECT_EQ(read_file(tmp / "capath" / "0badc0de.0"), read_file(second.root()));
    EXPECT_FALSE(broker.log().find("removed 0badc0de.0") != std::string::npos) << broker.log();
    // Connected holders of a certificate from the removed CA are disconnected, new ones refused.
    EXPECT_TRUE(accepted.wait_disconnected(5s));
    MqttClient again(broker.port(), "dev-2-again", first.root(), new_client);
    EXPECT_NE(again.connect(), "");
    EXPECT_TRUE(a.connected());
}

}  // namespace
}  // namespace brokertls::test
