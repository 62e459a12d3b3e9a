// The renewal engine (CertificatePipeline) end to end: configurations parsed from brokertls.json
// text, a real Pebble, the real solvers (built-in http-01 and tls-alpn-01 responders, a webroot
// served by python's http.server, exec and manual dns-01), and what an operator sees: the
// deployed files, status(), job.json, events and log lines. Pebble resolves names through
// pebble-challtestsrv (every name is 127.0.0.1), whose http-01 port is left to our solvers.

#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include "acme/jws.hpp"
#include "brokertls/crypto/handles.hpp"
#include "brokertls/store/files.hpp"
#include "named_fixture.hpp"
#include "pebble_fixture.hpp"
#include "pipeline/pipeline.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using test::PebbleFixture;
using test::PebbleOptions;
using test::verifies;

constexpr std::chrono::milliseconds kWait = 30s;

template <class Predicate>
bool eventually(Predicate&& done, std::chrono::milliseconds timeout = kWait) {
    return test::eventually(done, timeout, 20ms);
}

// What the renewer reports through its hooks, from whichever thread.
class Recorder {
  public:
    CertificatePipeline::Hooks hooks() {
        CertificatePipeline::Hooks h;
        h.deployed = [this] { ++deployed; };
        h.event = [this](const RenewalEvent& e) {
            std::lock_guard lock(mutex_);
            events_.push_back(e);
            if (on_event) on_event(e);
        };
        h.log = [this](const std::string& line) {
            std::lock_guard lock(mutex_);
            lines_.push_back(line);
        };
        return h;
    }
    std::vector<RenewalEvent> events(const std::string& profile) const {
        std::lock_guard lock(mutex_);
        std::vector<RenewalEvent> out;
        for (const auto& e : events_)
            if (e.profile == profile) out.push_back(e);
        return out;
    }
    std::vector<std::string> types(const std::string& profile) const {
        std::vector<std::string> out;
        for (const auto& e : events(profile)) out.push_back(e.type);
        return out;
    }
    int count(const std::string& profile, const std::string& type) const {
        auto t = types(profile);
        return static_cast<int>(std::count(t.begin(), t.end(), type));
    }
    std::vector<std::string> lines() const {
        std::lock_guard lock(mutex_);
        return lines_;
    }
    bool logged(const std::string& text) const {
        for (const auto& line : lines())
            if (line.find(text) != std::string::npos) return true;
        return false;
    }
    std::string log_text() const {
        std::string out;
        for (const auto& line : lines()) out += line + "\n";
        return out;
    }

    std::atomic<int> deployed{0};
    // Called under the recorder's lock, in event order.
    std::function<void(const RenewalEvent&)> on_event;

  private:
    mutable std::mutex mutex_;
    std::vector<RenewalEvent> events_;
    std::vector<std::string> lines_;
};

json http01_challenge(const PebbleFixture& pebble) {
    return {{"type", "http-01"}, {"listen", "127.0.0.1:" + std::to_string(pebble.http01_port())}};
}

// A configuration in `dir` (relative paths resolve there), renewed by a renewer whose hooks
// feed `recorder`. Declared before the renewer, the recorder outlives its threads.
class RenewalSetup {
  public:
    RenewalSetup() : renewer(recorder.hooks()) {
        doc = {{"issuers", json::object()},
               {"certificate_profiles", json::object()},
               {"state_dir", "state"}};
    }

    void issuer(const std::string& name, json value) { doc["issuers"][name] = std::move(value); }
    void profile(const std::string& name, const std::string& issuer_name,
                 std::vector<std::string> names) {
        doc["certificate_profiles"][name] = {
            {"source", "acme"},
            {"acme", {{"issuer", issuer_name}}},
            {"names", std::move(names)},
            {"deploy", {{"cert", name + ".crt"}, {"key", name + ".key"}}}};
    }
    Config config() const { return parse_config(doc.dump(), dir / "brokertls.json"); }
    bool configure(CertificatePipeline& r) {
        return r.configure(config(), SystemClock::now()).deployed;
    }
    bool configure() { return configure(renewer); }

    fs::path cert(const std::string& name) const { return dir / (name + ".crt"); }
    fs::path key(const std::string& name) const { return dir / (name + ".key"); }
    fs::path job_dir(const std::string& name) const {
        return dir.path() / "state" / "profiles" / name;
    }
    std::vector<Certificate> chain(const std::string& name) const {
        return Certificate::load_chain(cert(name));
    }
    std::string fingerprint(const std::string& name) const {
        return chain(name).front().fingerprint_sha256();
    }
    json job_json(const std::string& name) const {
        return json::parse(read_file(job_dir(name) / "job.json"));
    }
    CertificatePipeline::Status status(const std::string& name) const {
        return renewer.status().at(name);
    }

    // Waits for the `n`th event of `type` for `name` and for its job to finish (job.json is
    // written by then).
    bool settled(const std::string& name, const std::string& type, int n = 1) {
        return eventually(
            [&] { return recorder.count(name, type) >= n && !renewer.status().at(name).running; });
    }

    test::TempDir dir;
    Recorder recorder;
    CertificatePipeline renewer;
    json doc;
};

// One Pebble for the tests that need no special configuration; its http-01 port is ours.
class AcmeRenewalTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        PebbleOptions options;
        options.challtestsrv_http01 = false;
        pebble_ = new PebbleFixture(options);
    }
    static void TearDownTestSuite() {
        delete pebble_;
        pebble_ = nullptr;
    }

    AcmeRenewalTest() : pebble(*pebble_) {}

    static PebbleFixture* pebble_;
    PebbleFixture& pebble;
    RenewalSetup s;
};
PebbleFixture* AcmeRenewalTest::pebble_ = nullptr;

TEST_F(AcmeRenewalTest, ANewProfileServesATemporaryCertificateUntilPebblesArrives) {
    s.issuer("pebble", pebble.issuer_json(http01_challenge(pebble)));
    s.profile("web", "pebble", {"web.example"});

    ASSERT_TRUE(s.configure());
    // The listener can start at once: a self-signed stand-in is deployed.
    ASSERT_TRUE(fs::exists(s.cert("web")));
    EXPECT_TRUE(is_temporary(s.chain("web").front()));
    EXPECT_TRUE(s.status("web").temporary);
    EXPECT_TRUE(
        s.recorder.logged("certificate profile web: no certificate yet: serving a "
                          "temporary self-signed certificate"));
    EXPECT_EQ(s.recorder.deployed, 0);

    s.renewer.start();
    ASSERT_TRUE(s.settled("web", "obtained")) << s.recorder.log_text();

    auto chain = s.chain("web");
    EXPECT_FALSE(is_temporary(chain.front()));
    EXPECT_TRUE(verifies(chain, pebble.roots_pem(0)));
    EXPECT_TRUE(chain.front().matches_key(PrivateKey::load(s.key("web"))));
    EXPECT_EQ(chain.front().subject_alt_names(),
              std::vector<SubjectAltName>{classify_name("web.example")});
    EXPECT_EQ(fs::status(s.key("web")).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);

    auto st = s.status("web");
    EXPECT_EQ(st.job.last_result, "obtained");
    EXPECT_EQ(st.job.consecutive_failures, 0);
    EXPECT_TRUE(st.job.last_error.empty());
    EXPECT_FALSE(st.temporary);
    EXPECT_FALSE(st.running);
    EXPECT_EQ(st.fingerprint, chain.front().fingerprint_sha256());
    EXPECT_EQ(st.issuer, "pebble");
    EXPECT_EQ(st.job.directory, pebble.directory_url());
    // Nothing is due for hours: the next run is a periodic check.
    EXPECT_GT(st.next_run, SystemClock::now() + 1h);
    EXPECT_TRUE(s.renewer.idle());

    EXPECT_EQ(s.recorder.types("web"), (std::vector<std::string>{"obtaining", "obtained"}));
    auto events = s.recorder.events("web");
    EXPECT_NE(events[0].message.find("ordering a certificate for web.example from " +
                                     pebble.directory_url()),
              std::string::npos)
        << events[0].message;
    EXPECT_NE(events[1].message.find(chain.front().fingerprint_sha256()), std::string::npos)
        << events[1].message;
    EXPECT_EQ(s.recorder.deployed, 1);

    json job = s.job_json("web");
    EXPECT_EQ(job["last_result"], "obtained");
    EXPECT_EQ(job["consecutive_failures"], 0);
    EXPECT_EQ(job["directory"], pebble.directory_url());
    EXPECT_TRUE(job["last_success"].is_string());
    ASSERT_EQ(job["activity"].size(), 2u);
    EXPECT_EQ(job["activity"][0]["type"], "obtaining");
    EXPECT_EQ(job["activity"][1]["type"], "obtained");
    EXPECT_FALSE(fs::exists(s.job_dir("web") / "staging"));
}

TEST_F(AcmeRenewalTest, RenewNowReplacesTheCertificateAndArchivesThePreviousOne) {
    s.issuer("pebble", pebble.issuer_json(http01_challenge(pebble)));
    s.profile("web", "pebble", {"renew.example"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(s.settled("web", "obtained")) << s.recorder.log_text();
    std::string first = s.fingerprint("web");
    // The temporary certificate is not worth archiving.
    EXPECT_FALSE(fs::exists(s.job_dir("web") / "archive"));

    EXPECT_FALSE(s.renewer.renew_now("no-such-profile", SystemClock::now()));
    ASSERT_TRUE(s.renewer.renew_now("web", SystemClock::now()));
    ASSERT_TRUE(s.settled("web", "obtained", 2)) << s.recorder.log_text();

    std::string second = s.fingerprint("web");
    EXPECT_NE(second, first);
    EXPECT_EQ(s.status("web").fingerprint, second);
    EXPECT_TRUE(verifies(s.chain("web"), pebble.roots_pem(0)));
    EXPECT_EQ(s.recorder.deployed, 2);

    std::vector<fs::path> archived;
    for (const auto& entry : fs::directory_iterator(s.job_dir("web") / "archive"))
        archived.push_back(entry.path());
    ASSERT_EQ(archived.size(), 1u);
    auto old_chain = Certificate::load_chain(archived[0] / "cert.pem");
    EXPECT_EQ(old_chain.front().fingerprint_sha256(), first);
    EXPECT_TRUE(old_chain.front().matches_key(PrivateKey::load(archived[0] / "key.pem")));
    EXPECT_EQ(fs::status(archived[0] / "key.pem").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
}

// A dns-01 exec hook that sets `value` (a shell word) through challtestsrv's management API.
std::string txt_hook(const PebbleFixture& pebble, const std::string& value) {
    std::string script = R"(#!/bin/sh
# present|cleanup RECORD VALUE NAME
case "$1" in
present) exec curl -sf -X POST -d "{\"host\":\"$2.\",\"value\":\"@VALUE@\"}" @API@/set-txt ;;
cleanup) exec curl -sf -X POST -d "{\"host\":\"$2.\"}" @API@/clear-txt ;;
esac
exit 2
)";
    auto put = [&](const std::string& mark, const std::string& text) {
        for (auto at = script.find(mark); at != std::string::npos; at = script.find(mark))
            script.replace(at, mark.size(), text);
    };
    put("@API@", "http://127.0.0.1:" + std::to_string(pebble.challtestsrv_port()));
    put("@VALUE@", value);
    return script;
}

TEST_F(AcmeRenewalTest, AFailedValidationBacksOffAndTheBackoffSurvivesARestart) {
    fs::path hook = s.dir / "dns-hook.sh";
    write_file_atomic(hook, txt_hook(pebble, "wrong"), 0755);
    s.issuer("pebble", pebble.issuer_json({{"type", "dns-01"},
                                           {"provider", "exec"},
                                           {"command", hook.string()},
                                           {"timeout", "10s"}}));
    s.profile("exec", "pebble", {"exec.example"});
    s.configure();
    std::string temporary = s.fingerprint("exec");
    s.renewer.start();
    ASSERT_TRUE(s.settled("exec", "failed")) << s.recorder.log_text();
    auto failed_at = SystemClock::now();

    auto st = s.status("exec");
    EXPECT_EQ(st.job.last_result, "failed");
    EXPECT_EQ(st.job.consecutive_failures, 1);
    EXPECT_NE(st.job.last_error.find("unauthorized"), std::string::npos) << st.job.last_error;
    // Pebble 2.4's detail (later versions say "Incorrect TXT record ...").
    EXPECT_NE(st.job.last_error.find(
                  "(exec.example) dns-01: unauthorized: Correct value not found for DNS challenge"),
              std::string::npos)
        << st.job.last_error;
    // The first retry is a minute away (± 20 %).
    EXPECT_GT(st.next_run, failed_at + 40s);
    EXPECT_LT(st.next_run, failed_at + 80s);
    // What is served did not change.
    EXPECT_TRUE(st.temporary);
    EXPECT_EQ(s.fingerprint("exec"), temporary);
    EXPECT_EQ(s.recorder.deployed, 0);
    auto events = s.recorder.events("exec");
    ASSERT_EQ(s.recorder.types("exec"), (std::vector<std::string>{"obtaining", "failed"}));
    EXPECT_NE(events[1].message.find("(attempt 1, next at "), std::string::npos)
        << events[1].message;

    json job = s.job_json("exec");
    EXPECT_EQ(job["last_result"], "failed");
    EXPECT_EQ(job["consecutive_failures"], 1);
    EXPECT_EQ(job["last_error"], st.job.last_error);
    EXPECT_EQ(from_iso8601(job["next_run"].get<std::string>()),
              std::chrono::floor<std::chrono::seconds>(st.next_run));

    // A restarted broker keeps the backoff instead of asking the CA again at once.
    s.renewer.stop();
    Recorder recorder;
    CertificatePipeline restarted(recorder.hooks());
    EXPECT_FALSE(s.configure(restarted));  // the temporary certificate is still good
    auto kept = restarted.status().at("exec");
    EXPECT_EQ(kept.job.consecutive_failures, 1);
    EXPECT_GT(kept.next_run, SystemClock::now() + 30s);
    restarted.start();
    EXPECT_TRUE(restarted.idle());
    EXPECT_FALSE(restarted.status().at("exec").running);

    // The operator fixes the hook and asks for a renewal.
    write_file_atomic(hook, txt_hook(pebble, "$3"), 0755);
    ASSERT_TRUE(restarted.renew_now("exec", SystemClock::now()));
    ASSERT_TRUE(eventually([&] {
        auto now = restarted.status().at("exec");
        return now.job.last_result == "obtained" && !now.running;
    })) << recorder.log_text();
    auto fixed = restarted.status().at("exec");
    EXPECT_EQ(fixed.job.consecutive_failures, 0);
    EXPECT_TRUE(fixed.job.last_error.empty());
    EXPECT_FALSE(fixed.temporary);
    EXPECT_TRUE(verifies(s.chain("exec"), pebble.roots_pem(0)));
    EXPECT_EQ(s.job_json("exec")["consecutive_failures"], 0);
}

TEST_F(AcmeRenewalTest, ADirectorySwitchRenewsAtOnceFromTheNewCa) {
    PebbleOptions options;
    options.challtestsrv_http01 = false;
    PebbleFixture production(options);

    s.issuer("le", pebble.issuer_json(http01_challenge(pebble)));
    s.profile("web", "le", {"switch.example"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(s.settled("web", "obtained")) << s.recorder.log_text();
    EXPECT_TRUE(verifies(s.chain("web"), pebble.roots_pem(0)));

    s.issuer("le", production.issuer_json(http01_challenge(production)));
    EXPECT_FALSE(s.configure());  // what is deployed stays until the new one is there
    ASSERT_TRUE(s.settled("web", "obtained", 2)) << s.recorder.log_text();

    auto events = s.recorder.events("web");
    ASSERT_EQ(s.recorder.types("web"),
              (std::vector<std::string>{"obtaining", "obtained", "obtaining", "obtained"}));
    EXPECT_NE(events[2].message.find("from " + production.directory_url() +
                                     " (the issuer's directory changed from " +
                                     pebble.directory_url() + ")"),
              std::string::npos)
        << events[2].message;
    auto chain = s.chain("web");
    EXPECT_TRUE(verifies(chain, production.roots_pem(0)));
    EXPECT_FALSE(verifies(chain, pebble.roots_pem(0)));
    EXPECT_EQ(s.status("web").job.directory, production.directory_url());
    EXPECT_EQ(s.job_json("web")["directory"], production.directory_url());
    EXPECT_TRUE(s.recorder.logged("issuer le: directory changed from " + pebble.directory_url() +
                                  " to " + production.directory_url() + ": creating a new account"))
        << s.recorder.log_text();

    // Back to the first directory across a restart: the state on disk says where the deployed
    // certificate came from, so the restarted renewer renews at once, with the kept account.
    s.renewer.stop();
    s.issuer("le", pebble.issuer_json(http01_challenge(pebble)));
    Recorder recorder;
    CertificatePipeline restarted(recorder.hooks());
    EXPECT_FALSE(s.configure(restarted));
    restarted.start();
    ASSERT_TRUE(eventually([&] {
        return recorder.count("web", "obtained") == 1 && !restarted.status().at("web").running;
    })) << recorder.log_text();
    EXPECT_TRUE(verifies(s.chain("web"), pebble.roots_pem(0)));
    EXPECT_NE(recorder.events("web").front().message.find("(the issuer's directory changed from " +
                                                          production.directory_url() + ")"),
              std::string::npos);
    EXPECT_TRUE(recorder.logged("to " + pebble.directory_url() + ": using the account kept for it"))
        << recorder.log_text();
}

TEST_F(AcmeRenewalTest, ProfilesOfOneIssuerSwitchDirectoryTogether) {
    PebbleOptions options;
    options.challtestsrv_http01 = false;
    PebbleFixture production(options);
    s.issuer("le", pebble.issuer_json(http01_challenge(pebble)));
    const std::vector<std::string> profiles = {"s1", "s2", "s3", "s4", "s5", "s6"};
    for (const auto& p : profiles) s.profile(p, "le", {p + ".together.example"});
    s.doc["renewal"] = {{"max_concurrent_orders", 6}};
    s.configure();
    s.renewer.start();
    for (const auto& p : profiles)
        ASSERT_TRUE(s.settled(p, "obtained")) << p << s.recorder.log_text();

    s.issuer("le", production.issuer_json(http01_challenge(production)));
    s.configure();
    for (const auto& p : profiles)
        ASSERT_TRUE(s.settled(p, "obtained", 2))
            << p << s.recorder.log_text() << s.status(p).job.last_error;
    for (const auto& p : profiles) {
        EXPECT_EQ(s.recorder.count(p, "failed"), 0) << p << s.status(p).job.last_error;
        EXPECT_TRUE(verifies(s.chain(p), production.roots_pem(0))) << p;
    }
    // One account per directory, shared by every profile.
    std::map<std::string, std::set<std::string>> accounts;
    std::regex account(R"re(issuer le: account (\S+) at (\S+)$)re");
    std::smatch m;
    for (const auto& line : s.recorder.lines())
        if (std::regex_search(line, m, account)) accounts[m[2].str()].insert(m[1].str());
    EXPECT_EQ(accounts[pebble.directory_url()].size(), 1u) << s.recorder.log_text();
    EXPECT_EQ(accounts[production.directory_url()].size(), 1u) << s.recorder.log_text();
    EXPECT_EQ(accounts.size(), 2u);
}

TEST_F(AcmeRenewalTest, ManualDns01WaitsForTheOperatorsResume) {
    s.issuer("hand", pebble.issuer_json({{"type", "dns-01"}, {"provider", "manual"}}));
    s.profile("manual", "hand", {"manual.example"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(eventually([&] { return s.status("manual").waiting_for_operator; }))
        << s.recorder.log_text();
    ASSERT_EQ(s.recorder.count("manual", "manual-action-required"), 1);
    EXPECT_TRUE(s.status("manual").running);

    // The operator reads the record from the log.
    std::regex wanted(R"re(set TXT (\S+) "([A-Za-z0-9_-]{43})")re");
    std::smatch match;
    std::string line;
    for (const auto& l : s.recorder.lines())
        if (std::regex_search(l, match, wanted)) line = l;
    ASSERT_FALSE(line.empty()) << s.recorder.log_text();
    std::regex_search(line, match, wanted);
    EXPECT_EQ(line.rfind("issuer hand: manual dns-01 for manual: ", 0), 0u) << line;
    EXPECT_EQ(match[1].str(), "_acme-challenge.manual.example");
    EXPECT_NE(s.recorder.events("manual").back().message.find(match[2].str()), std::string::npos);

    pebble.set_txt(match[1].str(), match[2].str());
    EXPECT_FALSE(s.renewer.resume("nobody-waits"));
    EXPECT_TRUE(s.renewer.resume("manual"));
    ASSERT_TRUE(s.settled("manual", "obtained")) << s.recorder.log_text();
    pebble.clear_txt(match[1].str());
    EXPECT_TRUE(verifies(s.chain("manual"), pebble.roots_pem(0)));
    EXPECT_FALSE(s.status("manual").waiting_for_operator);
    EXPECT_EQ(s.status("manual").job.consecutive_failures, 0);
    EXPECT_TRUE(
        s.recorder.logged("manual dns-01 for manual: you may now remove TXT "
                          "_acme-challenge.manual.example \"" +
                          match[2].str() + "\""));
}

TEST_F(AcmeRenewalTest, ManualDns01NobodyResumesFailsAfterItsTimeout) {
    s.issuer("hand",
             pebble.issuer_json({{"type", "dns-01"}, {"provider", "manual"}, {"timeout", "2s"}}));
    s.profile("forgotten", "hand", {"forgotten.example"});
    s.configure();
    auto started = std::chrono::steady_clock::now();
    s.renewer.start();
    ASSERT_TRUE(s.settled("forgotten", "failed")) << s.recorder.log_text();
    EXPECT_GE(std::chrono::steady_clock::now() - started, 2s);
    auto st = s.status("forgotten");
    EXPECT_NE(st.job.last_error.find("forgotten: manual dns-01 not resumed within 2s"),
              std::string::npos)
        << st.job.last_error;
    EXPECT_EQ(st.job.consecutive_failures, 1);
    EXPECT_FALSE(st.waiting_for_operator);
    EXPECT_TRUE(st.temporary);
    EXPECT_EQ(s.recorder.types("forgotten"),
              (std::vector<std::string>{"obtaining", "manual-action-required", "failed"}));
}

TEST_F(AcmeRenewalTest, AReloadDuringAnOrderKeepsTheJobAndItsOutcome) {
    s.issuer("hand", pebble.issuer_json({{"type", "dns-01"}, {"provider", "manual"}}));
    s.profile("reload", "hand", {"reload.example"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(eventually([&] { return s.status("reload").waiting_for_operator; }))
        << s.recorder.log_text();

    // The broker reloads its configuration while the order waits.
    EXPECT_FALSE(s.configure());
    EXPECT_TRUE(s.status("reload").running);

    std::string message = s.recorder.events("reload").back().message;
    std::smatch match;
    ASSERT_TRUE(std::regex_search(message, match, std::regex(R"re(set TXT (\S+) "([^"]+)")re")))
        << message;
    pebble.set_txt(match[1].str(), match[2].str());
    ASSERT_TRUE(s.renewer.resume("reload"));
    ASSERT_TRUE(s.settled("reload", "obtained")) << s.recorder.log_text();
    pebble.clear_txt(match[1].str());
    // The order's outcome is the job's state, and the job is free to run again.
    ASSERT_TRUE(eventually([&] {
        auto st = s.status("reload");
        return !st.running && st.job.last_result == "obtained";
    })) << "running "
        << s.status("reload").running << ", last_result " << s.status("reload").job.last_result;
    EXPECT_EQ(s.status("reload").job.directory, pebble.directory_url());
    EXPECT_GT(s.status("reload").next_run, SystemClock::now() + 1h);
    EXPECT_TRUE(s.renewer.idle());
}

TEST_F(AcmeRenewalTest, AShutdownDuringAnOrderIsNoFailure) {
    s.issuer("hand", pebble.issuer_json({{"type", "dns-01"}, {"provider", "manual"}}));
    s.profile("waiting", "hand", {"shutdown.example"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(eventually([&] { return s.status("waiting").waiting_for_operator; }))
        << s.recorder.log_text();

    auto started = std::chrono::steady_clock::now();
    s.renewer.stop();  // the broker shuts down while the operator has not resumed yet
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    EXPECT_EQ(s.recorder.count("waiting", "failed"), 0) << s.recorder.log_text();
    EXPECT_EQ(s.status("waiting").job.consecutive_failures, 0);
    EXPECT_TRUE(s.recorder.logged("certificate profile waiting: order interrupted by shutdown"))
        << s.recorder.log_text();
    EXPECT_EQ(s.job_json("waiting")["consecutive_failures"], 0);

    // The next start orders at once: nothing failed, so nothing backs off.
    Recorder recorder;
    CertificatePipeline restarted(recorder.hooks());
    s.configure(restarted);
    EXPECT_LE(restarted.status().at("waiting").next_run, SystemClock::now());
}

TEST_F(AcmeRenewalTest, HooksAreOptional) {
    s.issuer("pebble", pebble.issuer_json(http01_challenge(pebble)));
    s.profile("quiet", "pebble", {"quiet.example"});
    CertificatePipeline quiet(CertificatePipeline::Hooks{});
    EXPECT_TRUE(s.configure(quiet));
    quiet.start();
    ASSERT_TRUE(eventually([&] {
        auto st = quiet.status().at("quiet");
        return !st.running && st.job.last_result == "obtained";
    }));
    EXPECT_TRUE(verifies(s.chain("quiet"), pebble.roots_pem(0)));
}

TEST_F(AcmeRenewalTest, TlsAlpn01ResponderObtains) {
    s.issuer("pebble", pebble.issuer_json(
                           {{"type", "tls-alpn-01"},
                            {"listen", "127.0.0.1:" + std::to_string(pebble.tls_alpn01_port())}}));
    s.profile("alpn", "pebble", {"alpn.example"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(s.settled("alpn", "obtained")) << s.recorder.log_text();
    EXPECT_TRUE(verifies(s.chain("alpn"), pebble.roots_pem(0)));
    EXPECT_TRUE(s.recorder.logged("profile alpn: 1 tls-alpn-01 challenge(s) ready"))
        << s.recorder.log_text();
}

TEST_F(AcmeRenewalTest, Http01WebrootServedByAnotherWebServer) {
    fs::path webroot = s.dir / "www";
    fs::create_directory(webroot);
    test::Process server({"/usr/bin/python3", "-u", "-m", "http.server", "--bind", "127.0.0.1",
                          "--directory", webroot.string(), std::to_string(pebble.http01_port())},
                         s.dir / "http.server.log");
    ASSERT_TRUE(test::wait_for_port(pebble.http01_port(), 10s)) << server.log();

    json challenge = {{"type", "http-01"}, {"webroot", webroot.string()}};
    s.issuer("pebble", pebble.issuer_json(challenge));
    s.profile("site", "pebble", {"site.example", "www.site.example"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(s.settled("site", "obtained")) << s.recorder.log_text() << server.log();
    EXPECT_TRUE(verifies(s.chain("site"), pebble.roots_pem(0)));

    // python served both token files, and they (and the directories made for them) are gone.
    std::string log = server.log();
    std::regex served(R"re("GET /\.well-known/acme-challenge/[A-Za-z0-9_-]+ HTTP/1\.1" 200)re");
    auto hits =
        std::distance(std::sregex_iterator(log.begin(), log.end(), served), std::sregex_iterator());
    EXPECT_GE(hits, 2) << log;
    EXPECT_FALSE(fs::exists(webroot / ".well-known")) << "token files left behind";
}

TEST_F(AcmeRenewalTest, MaxConcurrentOrdersIsNeverExceeded) {
    s.issuer("pebble", pebble.issuer_json(http01_challenge(pebble)));
    s.doc["renewal"] = {{"max_concurrent_orders", 2}};
    const std::vector<std::string> profiles = {"c1", "c2", "c3", "c4", "c5", "c6"};
    for (const auto& p : profiles) s.profile(p, "pebble", {p + ".many.example"});

    int in_flight = 0, most_in_flight = 0;
    s.recorder.on_event = [&](const RenewalEvent& e) {
        if (e.type == "obtaining") most_in_flight = std::max(most_in_flight, ++in_flight);
        if (e.type == "obtained" || e.type == "failed") --in_flight;
    };
    s.configure();
    s.renewer.start();
    int most_running = 0;
    ASSERT_TRUE(eventually([&] {
        auto all = s.renewer.status();
        int running = 0, done = 0;
        for (const auto& [name, st] : all) {
            running += st.running ? 1 : 0;
            done += st.job.last_result == "obtained" && !st.running ? 1 : 0;
        }
        most_running = std::max(most_running, running);
        return done == static_cast<int>(profiles.size());
    })) << s.recorder.log_text();

    for (const auto& p : profiles) {
        EXPECT_EQ(s.recorder.types(p), (std::vector<std::string>{"obtaining", "obtained"})) << p;
        EXPECT_TRUE(verifies(s.chain(p), pebble.roots_pem(0))) << p;
    }
    EXPECT_LE(most_running, 2);
    EXPECT_EQ(most_in_flight, 2);  // two at once did happen, never three
    EXPECT_EQ(s.recorder.deployed, 6);
}

TEST_F(AcmeRenewalTest, AnIpAddressIsValidatedOverHttp01) {
    s.issuer("pebble", pebble.issuer_json(http01_challenge(pebble)));
    s.profile("ip", "pebble", {"127.0.0.1"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(s.settled("ip", "obtained")) << s.recorder.log_text();
    auto chain = s.chain("ip");
    EXPECT_TRUE(verifies(chain, pebble.roots_pem(0)));
    auto sans = chain.front().subject_alt_names();
    EXPECT_NE(
        std::find(sans.begin(), sans.end(), SubjectAltName{SubjectAltName::Type::Ip, "127.0.0.1"}),
        sans.end());
}

TEST(AcmeRenewalOutage, PebbleDownLeavesTheDeployedCertificateInPlace) {
    PebbleOptions options;
    options.challtestsrv_http01 = false;
    PebbleFixture pebble(options);
    RenewalSetup s;
    s.issuer("pebble", pebble.issuer_json(http01_challenge(pebble)));
    s.profile("web", "pebble", {"outage.example"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(s.settled("web", "obtained")) << s.recorder.log_text();
    std::string served = s.fingerprint("web");
    std::string cert_pem = read_file(s.cert("web")), key_pem = read_file(s.key("web"));

    pebble.stop_pebble();
    ASSERT_TRUE(s.renewer.renew_now("web", SystemClock::now()));
    ASSERT_TRUE(s.settled("web", "failed")) << s.recorder.log_text();
    auto st = s.status("web");
    EXPECT_EQ(st.job.consecutive_failures, 1);
    EXPECT_NE(st.job.last_error.find(pebble.directory_url()), std::string::npos)
        << st.job.last_error;
    EXPECT_EQ(st.fingerprint, served);
    EXPECT_EQ(read_file(s.cert("web")), cert_pem);
    EXPECT_EQ(read_file(s.key("web")), key_pem);
    EXPECT_EQ(s.recorder.deployed, 1);
    EXPECT_FALSE(fs::exists(s.job_dir("web") / "staging"));

    pebble.restart();  // a new Pebble: new roots, and our account is unknown to it
    ASSERT_TRUE(s.renewer.renew_now("web", SystemClock::now() + 10min));
    ASSERT_TRUE(s.settled("web", "obtained", 2)) << s.recorder.log_text();
    EXPECT_NE(s.fingerprint("web"), served);
    EXPECT_TRUE(verifies(s.chain("web"), pebble.roots_pem(0)));
    EXPECT_EQ(s.status("web").job.consecutive_failures, 0);
    EXPECT_TRUE(s.recorder.logged("the CA no longer knows account")) << s.recorder.log_text();
}

TEST(AcmeRenewalEab, TheBindingIsSentWhenConfiguredAndMissedWhenNot) {
    const std::string mac = base64url("a 32-byte HMAC key for the test!");
    PebbleOptions options;
    options.challtestsrv_http01 = false;
    options.eab_required = true;
    options.eab_keys = {{"kid-1", mac}};
    PebbleFixture pebble(options);
    RenewalSetup s;
    json bound = pebble.issuer_json(http01_challenge(pebble));
    bound["eab"] = {{"key_id", "kid-1"}, {"hmac_key", mac}};
    s.issuer("bound", bound);
    s.issuer("unbound", pebble.issuer_json(http01_challenge(pebble)));
    s.profile("with", "bound", {"eab.example"});
    s.profile("without", "unbound", {"no-eab.example"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(s.settled("with", "obtained")) << s.recorder.log_text();
    ASSERT_TRUE(s.settled("without", "failed")) << s.recorder.log_text();
    EXPECT_TRUE(verifies(s.chain("with"), pebble.roots_pem(0)));
    auto refused = s.status("without");
    EXPECT_NE(refused.job.last_error.find("the CA requires External Account Binding"),
              std::string::npos)
        << refused.job.last_error;
    EXPECT_TRUE(refused.temporary);
    EXPECT_EQ(refused.job.consecutive_failures, 1);
}

// A recursive named on 127.0.0.1 that forwards every question to `upstream` (the test's
// authoritative named). Pebble asks its DNS server one question and expects a resolver's
// complete answer; an authoritative-only named answers _acme-challenge.broker.example.test
// with the CNAME alone, without the TXT in the delegated zone, as a real resolver would add.
class ForwardingResolver {
  public:
    explicit ForwardingResolver(const test::Named& upstream) {
        std::string dir = dir_.path().string();
        for (int attempt = 0; attempt < 3; ++attempt) {
            int port = test::free_port();
            std::string conf =
                "options {\n"
                "  directory \"" +
                dir +
                "\";\n"
                "  listen-on port " +
                std::to_string(port) +
                " { 127.0.0.1; };\n"
                "  listen-on-v6 { none; };\n"
                "  pid-file \"" +
                dir +
                "/named.pid\";\n"
                "  session-keyfile \"" +
                dir +
                "/session.key\";\n"
                "  managed-keys-directory \"" +
                dir +
                "\";\n"
                "  recursion yes;\n"
                "  allow-recursion { 127.0.0.1; };\n"
                "  forwarders { 127.0.0.1 port " +
                std::to_string(upstream.port()) +
                "; };\n"
                "  forward only;\n"
                "  dnssec-validation no;\n"
                "  max-ncache-ttl 0;\n"
                "};\n"
                "controls { };\n";
            write_file_atomic(dir_ / "named.conf", conf);
            process_ = std::make_unique<test::Process>(
                std::vector<std::string>{"/usr/sbin/named", "-g", "-n", "1", "-c",
                                         (dir_ / "named.conf").string(), "-p",
                                         std::to_string(port)},
                dir_ / ("named-" + std::to_string(port) + ".log"));
            bool up = process_->wait_for_log(" running\n", 15s);
            std::string log = process_->log();
            if (up && log.find("could not listen") == std::string::npos &&
                log.find("address in use") == std::string::npos) {
                port_ = port;
                return;
            }
            process_->stop();
        }
        throw std::runtime_error("forwarding named did not start: " + process_->log());
    }
    std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

  private:
    test::TempDir dir_;
    int port_ = 0;
    std::unique_ptr<test::Process> process_;
};

// dns-01 through RFC 2136 UPDATEs to a real BIND, which Pebble validates against (through a
// resolver in front of it).
TEST(AcmeRenewalRfc2136, UpdatesBindFollowsTheCnameAndCleansUp) {
    test::Named named;
    ForwardingResolver resolver(named);
    PebbleOptions options;
    options.dns_server = resolver.server();
    PebbleFixture pebble(options);
    RenewalSetup s;
    s.issuer("bind", pebble.issuer_json({{"type", "dns-01"},
                                         {"provider", "rfc2136"},
                                         {"server", named.server()},
                                         {"tsig_key_file", named.key_file().string()},
                                         {"resolver", named.server()},
                                         {"propagation_servers", {named.server()}},
                                         {"propagation_interval", "200ms"},
                                         {"propagation_timeout", "10s"}}));
    // _acme-challenge.broker.example.test is a CNAME into acme-delegate.test.
    s.profile("delegated", "bind", {"broker.example.test"});
    s.profile("wild", "bind", {"*.wild.example.test", "wild.example.test"});
    s.configure();
    s.renewer.start();
    ASSERT_TRUE(s.settled("delegated", "obtained"))
        << s.recorder.log_text() << s.status("delegated").job.last_error;
    ASSERT_TRUE(s.settled("wild", "obtained")) << s.recorder.log_text();

    EXPECT_TRUE(verifies(s.chain("delegated"), pebble.roots_pem(0)));
    EXPECT_TRUE(verifies(s.chain("wild"), pebble.roots_pem(0)));
    auto sans = s.chain("wild").front().subject_alt_names();
    for (const char* name : {"*.wild.example.test", "wild.example.test"})
        EXPECT_NE(std::find(sans.begin(), sans.end(), classify_name(name)), sans.end()) << name;
    EXPECT_TRUE(s.recorder.logged("rfc2136: added TXT broker.acme-delegate.test."))
        << s.recorder.log_text();
    // Two values on one record for the wildcard and its base name.
    EXPECT_TRUE(s.recorder.logged("profile wild: 2 dns-01 challenge(s) ready"))
        << s.recorder.log_text();
    EXPECT_TRUE(named.txt("broker.acme-delegate.test").empty());
    EXPECT_TRUE(named.txt("_acme-challenge.wild.example.test").empty());
}

}  // namespace
}  // namespace brokertls
