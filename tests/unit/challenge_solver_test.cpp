#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "brokertls/store/files.hpp"
#include "challenges/solver.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using test::error_of;

mode_t mode_of(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

ChallengeTask task(std::string token, std::string name = "a.example.com") {
    ChallengeTask t;
    t.profile = "mqtt";
    t.identifier = {"dns", std::move(name)};
    t.token = std::move(token);
    t.key_authorization = t.token + ".thumbprint";
    return t;
}

TEST(Dns01TxtValueTest, IsUnpaddedBase64urlOfSha256) {
    // Computed offline with the RFC 8555 §8.3 example token and the RFC 7638 §3.1 example
    // thumbprint:
    //   printf '%s' 'LoqXc...uX0.NzbLs...C9Xs' | openssl dgst -sha256 -binary |
    //     base64 | tr '+/' '-_' | tr -d '='
    EXPECT_EQ(dns01_txt_value("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0."
                              "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"),
              "_cC5rvB9vM8qzT3MTBcTeVpQwtbNypBXyQnE4fhM9QQ");
    // printf '' | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '='
    EXPECT_EQ(dns01_txt_value(""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
}

class WebrootTest : public ::testing::Test {
  protected:
    WebrootTest() {
        config_.type = ChallengeConfig::Type::Http01;
        config_.webroot = root_.path();
        context_.log = [this](const std::string& line) { log_.push_back(line); };
    }
    std::unique_ptr<ChallengeSolver> solver() { return make_solver(config_, context_, gate_); }
    fs::path challenge_dir() const { return root_.path() / ".well-known" / "acme-challenge"; }

    test::TempDir root_;
    ChallengeConfig config_;
    SolverContext context_;
    ManualGate gate_;
    std::vector<std::string> log_;
};

TEST_F(WebrootTest, WritesWorldReadableTokenFilesWhateverTheUmask) {
    auto s = solver();
    EXPECT_EQ(s->type(), "http-01");
    mode_t old = ::umask(077);
    std::vector<ChallengeTask> tasks{task("tok-1_A"), task("tok2", "b.example.com")};
    s->present(tasks);
    ::umask(old);
    EXPECT_EQ(read_file(challenge_dir() / "tok-1_A"), "tok-1_A.thumbprint");
    EXPECT_EQ(read_file(challenge_dir() / "tok2"), "tok2.thumbprint");
    EXPECT_EQ(mode_of(challenge_dir() / "tok-1_A"), 0644u);
    EXPECT_EQ(mode_of(challenge_dir()), 0755u);
    EXPECT_EQ(mode_of(root_.path() / ".well-known"), 0755u);
    // Only the token files: no temporary file left beside them.
    EXPECT_EQ(std::distance(fs::directory_iterator(challenge_dir()), fs::directory_iterator()), 2);

    s->cleanup(tasks);
    EXPECT_FALSE(fs::exists(root_.path() / ".well-known"));  // we created it, now empty
    EXPECT_TRUE(log_.empty());
}

TEST_F(WebrootTest, CleanupKeepsTheOperatorsDirectoriesAndOtherOrdersFiles) {
    fs::create_directories(challenge_dir());
    std::ofstream(challenge_dir() / "operators-file") << "x";
    auto first = solver();
    auto second = solver();
    first->present({task("one")});
    second->present({task("two")});
    first->cleanup({task("one")});
    EXPECT_FALSE(fs::exists(challenge_dir() / "one"));
    EXPECT_EQ(read_file(challenge_dir() / "two"), "two.thumbprint");
    second->cleanup({task("two")});
    EXPECT_TRUE(fs::exists(challenge_dir() / "operators-file"));
    // Cleaning up what is already gone is quiet.
    second->cleanup({task("two")});
    EXPECT_TRUE(log_.empty());
}

TEST_F(WebrootTest, MissingWebrootIsAnErrorNamingIt) {
    config_.webroot = root_.path() / "missing";
    auto message = error_of([&] { solver()->present({task("tok")}); }, ErrorKind::Input);
    EXPECT_EQ(message, "http-01 webroot " + (root_.path() / "missing").string() +
                           ": not an existing directory");
    EXPECT_FALSE(fs::exists(root_.path() / "missing"));
}

TEST_F(WebrootTest, RefusesTokensThatAreNotBase64url) {
    auto message = error_of([&] { solver()->present({task("../../escape")}); }, ErrorKind::Input);
    EXPECT_NE(message.find("\"../../escape\" is not base64url"), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(root_.path() / ".well-known"));
}

class MakeSolverTest : public ::testing::Test {
  protected:
    std::unique_ptr<ChallengeSolver> make() { return make_solver(config_, context_, gate_); }
    ChallengeConfig config_;
    SolverContext context_;
    ManualGate gate_;
};

TEST_F(MakeSolverTest, Http01WithoutWebrootIsTheBuiltInResponder) {
    config_.type = ChallengeConfig::Type::Http01;
    config_.listen = "not-an-address";
    auto s = make();
    EXPECT_EQ(s->type(), "http-01");
    // The responder reads `listen` when it starts (no socket is opened for a bad address).
    EXPECT_EQ(error_of([&] { s->present({task("tok")}); }, ErrorKind::Input),
              "http-01: listen \"not-an-address\": expected ADDRESS:PORT");
}

TEST_F(MakeSolverTest, Http01WithWebrootWritesFiles) {
    test::TempDir root;
    config_.type = ChallengeConfig::Type::Http01;
    config_.webroot = root.path();
    auto s = make();
    s->present({task("tok")});
    EXPECT_TRUE(fs::exists(root.path() / ".well-known/acme-challenge/tok"));
    s->cleanup({task("tok")});
}

TEST_F(MakeSolverTest, TlsAlpn01IsTheTlsResponder) {
    config_.type = ChallengeConfig::Type::TlsAlpn01;
    config_.listen = "[::1]:70000";
    auto s = make();
    EXPECT_EQ(s->type(), "tls-alpn-01");
    EXPECT_EQ(error_of([&] { s->present({task("tok")}); }, ErrorKind::Input),
              "tls-alpn-01: listen \"[::1]:70000\": port must be a number from 0 to 65535");
}

TEST_F(MakeSolverTest, Dns01ExecRunsTheConfiguredCommand) {
    config_.type = ChallengeConfig::Type::Dns01;
    config_.provider = ChallengeConfig::DnsProvider::Exec;
    config_.command = "/nonexistent/brokertls-hook";
    auto s = make();
    EXPECT_EQ(s->type(), "dns-01");
    auto message = error_of([&] { s->present({task("tok")}); }, ErrorKind::Io);
    EXPECT_NE(message.find("/nonexistent/brokertls-hook: cannot start"), std::string::npos)
        << message;
}

TEST_F(MakeSolverTest, Dns01ManualWaitsOnTheGate) {
    config_.type = ChallengeConfig::Type::Dns01;
    config_.provider = ChallengeConfig::DnsProvider::Manual;
    config_.timeout = std::chrono::seconds(0);
    std::vector<std::string> events;
    context_.event = [&](const std::string& type, const std::string& profile, const std::string&) {
        events.push_back(type + " " + profile);
    };
    auto s = make();
    EXPECT_EQ(s->type(), "dns-01");
    EXPECT_EQ(error_of([&] { s->present({task("tok")}); }, ErrorKind::State),
              "mqtt: manual dns-01 not resumed within 0s");
    EXPECT_EQ(events, std::vector<std::string>{"manual-action-required mqtt"});
}

}  // namespace
}  // namespace brokertls
