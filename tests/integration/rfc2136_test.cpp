// The rfc2136 dns-01 solver against a real BIND named: TSIG-signed UPDATEs add and remove
// _acme-challenge TXT values, CNAME delegation, explicit record names, rcode errors, and the
// propagation wait on authoritative servers.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "challenges/dns_query.hpp"
#include "challenges/solvers.hpp"
#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "named_fixture.hpp"

namespace brokertls {
namespace {

using namespace std::chrono_literals;

// base64url(SHA-256(key authorization)), computed with `openssl dgst -sha256 -binary | base64`.
const std::string kValueA = "W7UFyVikidEhHLC5BprPdlK5EgyDQLxCpAJkecFsE4A";  // "tok-a.thumb"
const std::string kValueB = "1iPdXPwdrzcl-yxjCC0myrfwOqbwq9p9IhPHVPBOzYk";  // "tok-b.thumb"
const std::string kValueC = "hBbkinniz-oQ-yKAMCcZON9bnhxLgsTEeqndeeAOWYE";  // "tok-c.thumb"

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

ChallengeTask task(const std::string& name, const std::string& token, bool wildcard = false) {
    return {"broker", {"dns", name}, wildcard, token, token + ".thumb"};
}

class Rfc2136Test : public ::testing::Test {
  protected:
    ChallengeConfig config() const {
        ChallengeConfig c;
        c.type = ChallengeConfig::Type::Dns01;
        c.provider = ChallengeConfig::DnsProvider::Rfc2136;
        c.dns_server = named_.server();
        c.tsig_key_file = named_.key_file();
        c.resolver = named_.server();
        c.propagation_servers = {named_.server()};
        c.propagation_interval = 100ms;
        c.propagation_timeout = 5s;
        return c;
    }

    SolverContext context() {
        SolverContext c;
        c.log = [this](const std::string& line) {
            std::lock_guard lock(mutex_);
            log_ += line + "\n";
        };
        c.sleep = [this](std::chrono::milliseconds pause) {
            ++sleeps_;
            std::this_thread::sleep_for(pause);
            return true;
        };
        return c;
    }

    std::unique_ptr<ChallengeSolver> solver(const ChallengeConfig& c) {
        return make_rfc2136_solver(c, context());
    }

    std::string log() {
        std::lock_guard lock(mutex_);
        return log_;
    }

    test::Named named_;
    test::TempDir dir_;
    std::atomic<int> sleeps_{0};
    std::mutex mutex_;
    std::string log_;
};

TEST_F(Rfc2136Test, PresentAddsTheValueAndCleanupRemovesIt) {
    auto s = solver(config());
    EXPECT_EQ(s->type(), "dns-01");
    std::vector<ChallengeTask> tasks = {task("x.example.test", "tok-a")};
    s->present(tasks);
    EXPECT_EQ(sorted(named_.txt("_acme-challenge.x.example.test")), sorted({kValueA}));
    // The zone was found by SOA lookup, and the primary showed the value at the first check.
    EXPECT_NE(log().find("rfc2136: added TXT _acme-challenge.x.example.test. (zone example.test.) "
                         "via " +
                         named_.server()),
              std::string::npos)
        << log();
    EXPECT_NE(log().find("dns-01: waiting for 1 TXT value(s) on 1 server(s)"), std::string::npos);
    EXPECT_EQ(sleeps_, 0);

    s->cleanup(tasks);
    EXPECT_TRUE(named_.txt("_acme-challenge.x.example.test").empty());
    EXPECT_NE(log().find("rfc2136: removed TXT _acme-challenge.x.example.test."),
              std::string::npos);
}

TEST_F(Rfc2136Test, Sha512KeyWorksAndNoSecretIsLogged) {
    test::Named strong(test::default_named_zones(), "acme-512", "hmac-sha512");
    ChallengeConfig c = config();
    c.dns_server = c.resolver = strong.server();
    c.propagation_servers = {strong.server()};
    c.tsig_key_file = strong.key_file();
    auto s = solver(c);
    std::vector<ChallengeTask> tasks = {task("x.example.test", "tok-a")};
    s->present(tasks);
    EXPECT_EQ(strong.txt("_acme-challenge.x.example.test"), std::vector<std::string>{kValueA});
    s->cleanup(tasks);
    EXPECT_TRUE(strong.txt("_acme-challenge.x.example.test").empty());

    std::string key = read_file(strong.key_file());
    size_t start = key.find("secret \"") + 8;
    std::string secret = key.substr(start, key.find('"', start) - start);
    ASSERT_GT(secret.size(), 40u);
    EXPECT_EQ(log().find(secret), std::string::npos);
    EXPECT_EQ(log().find(secret.substr(0, 12)), std::string::npos);
}

TEST_F(Rfc2136Test, CleanupRemovesOnlyItsOwnValue) {
    // Two orders for the same name at once, beside a value the operator put there.
    auto first = solver(config());
    auto second = solver(config());
    std::vector<ChallengeTask> a = {task("keep.example.test", "tok-a")};
    std::vector<ChallengeTask> b = {task("keep.example.test", "tok-b")};
    first->present(a);
    second->present(b);
    EXPECT_EQ(sorted(named_.txt("_acme-challenge.keep.example.test")),
              sorted({"kept-by-operator", kValueA, kValueB}));
    first->cleanup(a);
    EXPECT_EQ(sorted(named_.txt("_acme-challenge.keep.example.test")),
              sorted({"kept-by-operator", kValueB}));
    second->cleanup(b);
    EXPECT_EQ(sorted(named_.txt("_acme-challenge.keep.example.test")),
              sorted({"kept-by-operator"}));
}

TEST_F(Rfc2136Test, WildcardAndBaseNameShareOneRecord) {
    auto s = solver(config());
    std::vector<ChallengeTask> tasks = {task("w.example.test", "tok-a", true),
                                        task("w.example.test", "tok-b")};
    s->present(tasks);
    EXPECT_EQ(sorted(named_.txt("_acme-challenge.w.example.test")), sorted({kValueA, kValueB}));
    EXPECT_NE(log().find("waiting for 2 TXT value(s) on 1 server(s)"), std::string::npos);
    s->cleanup(tasks);
    EXPECT_TRUE(named_.txt("_acme-challenge.w.example.test").empty());
}

TEST_F(Rfc2136Test, FollowsCnameDelegationIntoTheOtherZone) {
    auto s = solver(config());
    std::vector<ChallengeTask> tasks = {task("broker.example.test", "tok-c")};
    s->present(tasks);
    EXPECT_EQ(sorted(named_.txt("broker.acme-delegate.test")), sorted({kValueC}));
    EXPECT_NE(log().find("added TXT broker.acme-delegate.test. (zone acme-delegate.test.)"),
              std::string::npos)
        << log();
    s->cleanup(tasks);
    EXPECT_TRUE(named_.txt("broker.acme-delegate.test").empty());
}

TEST_F(Rfc2136Test, CnameLoopIsAnError) {
    auto s = solver(config());
    std::vector<ChallengeTask> tasks = {task("loop.example.test", "tok-a")};
    std::string message = test::error_of([&] { s->present(tasks); }, ErrorKind::Input);
    EXPECT_NE(message.find("dns-01: _acme-challenge.loop.example.test.: CNAME loop"),
              std::string::npos)
        << message;
    s->cleanup(tasks);  // nothing was added; must not throw
}

TEST_F(Rfc2136Test, ChallengeDomainsNameTheRecordExplicitly) {
    ChallengeConfig c = config();
    c.challenge_domains["y.example.test"] = "y-explicit.acme-delegate.test";
    c.zone = "acme-delegate.test";
    auto s = solver(c);
    std::vector<ChallengeTask> tasks = {task("y.example.test", "tok-a")};
    s->present(tasks);
    EXPECT_EQ(sorted(named_.txt("y-explicit.acme-delegate.test")), sorted({kValueA}));
    EXPECT_TRUE(named_.txt("_acme-challenge.y.example.test").empty());
    s->cleanup(tasks);
    EXPECT_TRUE(named_.txt("y-explicit.acme-delegate.test").empty());
}

TEST_F(Rfc2136Test, WrongSecretIsRejectedWithNotauth) {
    ChallengeConfig c = config();
    c.tsig_key_file = dir_ / "wrong-secret.key";
    test::write_tsig_key(c.tsig_key_file, named_.key_name());  // same name, another secret
    auto s = solver(c);
    std::vector<ChallengeTask> tasks = {task("x.example.test", "tok-a")};
    std::string message = test::error_of([&] { s->present(tasks); }, ErrorKind::Input);
    EXPECT_EQ(message, "rfc2136: UPDATE of _acme-challenge.x.example.test. refused by " +
                           named_.server() +
                           ": NOTAUTH (TSIG key rejected with BADSIG: check tsig_key_file)");
    EXPECT_TRUE(named_.txt("_acme-challenge.x.example.test").empty());
    s->cleanup(tasks);  // fails the same way: logged only
    EXPECT_NE(log().find("rfc2136: cleanup of x.example.test failed: rfc2136: UPDATE of "),
              std::string::npos)
        << log();
}

TEST_F(Rfc2136Test, UnknownKeyNameIsRejectedWithBadkey) {
    ChallengeConfig c = config();
    c.tsig_key_file = dir_ / "stranger.key";
    test::write_tsig_key(c.tsig_key_file, "stranger");
    std::string message = test::error_of(
        [&] { solver(c)->present({task("x.example.test", "tok-a")}); }, ErrorKind::Input);
    EXPECT_NE(message.find(": NOTAUTH (TSIG key rejected with BADKEY: check tsig_key_file)"),
              std::string::npos)
        << message;
}

TEST_F(Rfc2136Test, WeakKeyIsRefusedBeforeAnyNetworkTraffic) {
    ChallengeConfig c = config();
    c.tsig_key_file = dir_ / "md5.key";
    test::write_tsig_key(c.tsig_key_file, named_.key_name(), "hmac-md5");
    // Nothing listens here: any DNS traffic would fail differently.
    c.dns_server = c.resolver = "127.0.0.1:1";
    std::string message = test::error_of(
        [&] { solver(c)->present({task("x.example.test", "tok-a")}); }, ErrorKind::Input);
    EXPECT_EQ(message.rfind(c.tsig_key_file.string() + ": ", 0), 0u) << message;
    EXPECT_NE(message.find("hmac-md5 is too weak"), std::string::npos) << message;
}

TEST_F(Rfc2136Test, RcodesOfRefusedUpdatesAreExplained) {
    test::Named locked({{"example.test", {}, false}});
    ChallengeConfig c = config();
    c.dns_server = c.resolver = locked.server();
    c.tsig_key_file = locked.key_file();
    std::string message = test::error_of(
        [&] { solver(c)->present({task("x.example.test", "tok-a")}); }, ErrorKind::Input);
    EXPECT_EQ(message, "rfc2136: UPDATE of _acme-challenge.x.example.test. refused by " +
                           locked.server() +
                           ": REFUSED (the key may not update zone example.test.: check the "
                           "server's allow-update or update-policy)");

    c = config();
    c.zone = "acme-delegate.test";  // the record is in example.test
    message = test::error_of([&] { solver(c)->present({task("x.example.test", "tok-a")}); },
                             ErrorKind::Input);
    EXPECT_NE(message.find("refused by " + named_.server() +
                           ": NOTZONE (_acme-challenge.x.example.test. is not in zone "
                           "acme-delegate.test.: check zone)"),
              std::string::npos)
        << message;
}

TEST_F(Rfc2136Test, SilentServerIsANetworkError) {
    ChallengeConfig c = config();
    c.zone = "example.test";
    c.dns_server = "127.0.0.1:" + std::to_string(test::free_port());
    auto start = std::chrono::steady_clock::now();
    std::string message = test::error_of(
        [&] { solver(c)->present({task("x.example.test", "tok-a")}); }, ErrorKind::Io);
    EXPECT_NE(message.find("rfc2136: UPDATE of _acme-challenge.x.example.test.: no answer from " +
                           c.dns_server),
              std::string::npos)
        << message;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST_F(Rfc2136Test, PropagationTimesOutWhenAServerNeverShowsTheValue) {
    test::Named stale;  // serves the same zones but never gets the update
    ChallengeConfig c = config();
    c.propagation_servers = {named_.server(), stale.server()};
    c.propagation_timeout = 1s;
    auto s = solver(c);
    std::vector<ChallengeTask> tasks = {task("x.example.test", "tok-a")};
    auto start = std::chrono::steady_clock::now();
    std::string message = test::error_of([&] { s->present(tasks); }, ErrorKind::Io);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(message, "dns-01: _acme-challenge.x.example.test.: value not visible on " +
                           stale.server() + " after 1 s");
    EXPECT_GE(took, 1s);
    EXPECT_LT(took, 3s);
    EXPECT_GE(sleeps_, 5);  // polled every 100 ms
    EXPECT_EQ(sorted(named_.txt("_acme-challenge.x.example.test")), sorted({kValueA}));
    s->cleanup(tasks);
    EXPECT_TRUE(named_.txt("_acme-challenge.x.example.test").empty());
}

// When the last query to the late server failed, the timeout says why (PropagationCheck's
// last_problem), not only that the value was missing.
TEST_F(Rfc2136Test, PropagationTimeoutNamesWhyTheLastQueryFailed) {
    std::string silent = "127.0.0.1:" + std::to_string(test::free_port());  // nothing answers
    ChallengeConfig c = config();
    c.propagation_servers = {named_.server(), silent};
    c.propagation_timeout = 1s;
    auto s = solver(c);
    std::vector<ChallengeTask> tasks = {task("x.example.test", "tok-a")};
    std::string message = test::error_of([&] { s->present(tasks); }, ErrorKind::Io);
    std::string expected = "dns-01: _acme-challenge.x.example.test.: value not visible on " +
                           silent + " after 1 s (dns: _acme-challenge.x.example.test. TXT: no " +
                           "answer from " + silent + ": ";
    EXPECT_EQ(message.substr(0, expected.size()), expected) << message;
    EXPECT_EQ(message.back(), ')') << message;
    s->cleanup(tasks);
    EXPECT_TRUE(named_.txt("_acme-challenge.x.example.test").empty());
}

TEST_F(Rfc2136Test, StopDuringThePropagationWait) {
    test::Named stale;
    ChallengeConfig c = config();
    c.propagation_servers = {stale.server()};
    SolverContext ctx = context();
    int asked = 0;
    ctx.sleep = [&](std::chrono::milliseconds pause) {
        ++asked;
        EXPECT_EQ(pause, 100ms);
        return false;  // the module is stopping
    };
    auto s = make_rfc2136_solver(c, ctx);
    std::vector<ChallengeTask> tasks = {task("x.example.test", "tok-a")};
    std::string message = test::error_of([&] { s->present(tasks); }, ErrorKind::State);
    EXPECT_EQ(message, "stopped");
    EXPECT_EQ(asked, 1);
    s->cleanup(tasks);
    EXPECT_TRUE(named_.txt("_acme-challenge.x.example.test").empty());
}

TEST_F(Rfc2136Test, ZoneNameserversAreFoundByNs) {
    DnsClient resolver(parse_dns_endpoint(named_.server(), "resolver"));
    EXPECT_EQ(find_zone(resolver, "_acme-challenge.a.b.example.test"), "example.test.");
    auto hosts = zone_nameservers(resolver, "example.test");
    ASSERT_EQ(hosts, std::vector<std::string>{"ns1.example.test."});
    EXPECT_EQ(host_addresses(resolver, hosts.front()), std::vector<std::string>{"127.0.0.1"});
}

}  // namespace
}  // namespace brokertls
