// Several brokertls-ca processes on one CA directory at the same time: the directory lock must
// queue them so that every certificate is issued once, recorded once, and the index stays valid.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ca_dir_test.hpp"
#include "support.hpp"

namespace brokertls::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

std::vector<std::string> lines_of(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// Runs every command line at once, each in its own process; returns their results in order.
std::vector<RunResult> run_together(const std::vector<std::vector<std::string>>& commands) {
    std::vector<RunResult> results(commands.size());
    std::latch start(static_cast<std::ptrdiff_t>(commands.size()));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < commands.size(); ++i) {
        threads.emplace_back([&, i] {
            start.arrive_and_wait();  // release all processes together
            results[i] = run(commands[i], "", 120s);
        });
    }
    for (auto& t : threads) t.join();
    return results;
}

using CaConcurrencyTest = CaDirTest;

TEST_F(CaConcurrencyTest, ParallelBatchesAreAllIssuedAndIndexedOnce) {
    std::vector<std::vector<std::string>> commands;
    for (int p = 1; p <= 4; ++p)
        commands.push_back(ca({"issue", "client", "--count", "25", "--prefix",
                               "p" + std::to_string(p) + "-", "--out", out_.string()}));
    std::vector<RunResult> results = run_together(commands);
    for (const auto& r : results) ASSERT_EQ(r.exit_code, 0) << describe(r);

    // index.jsonl: 100 lines, each valid JSON, each name once, 100 distinct serials.
    std::vector<std::string> lines = lines_of(dir_ / "index.jsonl");
    ASSERT_EQ(lines.size(), 100u);
    std::map<std::string, int> names;
    std::set<std::string> serials;
    for (const auto& line : lines) {
        json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
        ++names[j.at("name").get<std::string>()];
        serials.insert(j.at("serial").get<std::string>());
    }
    EXPECT_EQ(serials.size(), 100u);
    ASSERT_EQ(names.size(), 100u);
    for (int p = 1; p <= 4; ++p) {
        for (int i = 1; i <= 25; ++i) {
            std::string name = "p" + std::to_string(p) + "-" + std::to_string(i);
            EXPECT_EQ(names[name], 1) << name;
            EXPECT_TRUE(fs::exists(out_ / (name + ".crt"))) << name;
            EXPECT_TRUE(fs::exists(out_ / (name + ".key"))) << name;
        }
    }
    // Every issued certificate has its copy in certs/.
    for (const auto& serial : serials)
        EXPECT_TRUE(fs::exists(dir_ / "certs" / (serial + ".pem"))) << serial;

    // `list --json` agrees with the file.
    RunResult r = run(ca({"list", "--json"}));
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    json list = json::parse(r.out);
    ASSERT_EQ(list.size(), 100u);
    std::set<std::string> listed_names, listed_serials;
    for (const auto& e : list) {
        listed_names.insert(e.at("name").get<std::string>());
        listed_serials.insert(e.at("serial").get<std::string>());
        EXPECT_EQ(e.at("status"), "valid");
    }
    EXPECT_EQ(listed_serials, serials);
    EXPECT_EQ(listed_names.size(), 100u);
}

TEST_F(CaConcurrencyTest, RacingForTheSameNamesOnlyOneWins) {
    std::vector<std::vector<std::string>> commands(
        4, ca({"issue", "client", "--count", "10", "--prefix", "dev-", "--out", out_.string()}));
    std::vector<RunResult> results = run_together(commands);
    int winners = 0;
    for (const auto& r : results) {
        if (r.exit_code == 0) {
            ++winners;
        } else {
            EXPECT_EQ(r.exit_code, 2) << describe(r);
            EXPECT_NE(r.err.find("already exists"), std::string::npos) << describe(r);
        }
    }
    EXPECT_EQ(winners, 1);
    std::vector<std::string> lines = lines_of(dir_ / "index.jsonl");
    EXPECT_EQ(lines.size(), 10u);
    std::set<std::string> names;
    for (const auto& line : lines) names.insert(json::parse(line).at("name").get<std::string>());
    EXPECT_EQ(names.size(), 10u);
}

TEST_F(CaConcurrencyTest, ParallelRevocationsAllReachTheCrl) {
    RunResult r = run(ca(
        {"issue", "client", "--count", "6", "--prefix", "r-", "--out", out_.string(), "--json"}));
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    std::set<std::string> serials;
    for (const auto& e : json::parse(r.out)) serials.insert(e.at("serial").get<std::string>());

    std::vector<std::vector<std::string>> commands;
    for (int i = 1; i <= 6; ++i)
        commands.push_back(ca({"revoke", (out_ / ("r-" + std::to_string(i) + ".crt")).string()}));
    // Readers run alongside the writers.
    for (int i = 0; i < 3; ++i) commands.push_back(ca({"list", "--json"}));
    for (const auto& result : run_together(commands))
        ASSERT_EQ(result.exit_code, 0) << describe(result);

    r = run(ca({"list", "--status", "revoked", "--json"}));
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    std::set<std::string> revoked;
    for (const auto& e : json::parse(r.out)) revoked.insert(e.at("serial").get<std::string>());
    EXPECT_EQ(revoked, serials);

    // The last CRL written lists all six, and each revoke wrote a CRL of its own number.
    r = run({"openssl", "crl", "-in", (dir_ / "crl.pem").string(), "-noout", "-text"});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    for (const auto& serial : serials)
        EXPECT_NE(r.out.find("Serial Number: " + serial), std::string::npos) << serial;
    std::vector<std::string> number = lines_of(dir_ / "crlnumber");
    ASSERT_EQ(number.size(), 1u);
    EXPECT_EQ(number[0], "6");
}

}  // namespace
}  // namespace brokertls::test
