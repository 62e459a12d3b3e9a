#pragma once
// A fresh brokertls-ca directory per test, and the command lines that run the real CLI on it.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support.hpp"

namespace brokertls::test {

class CaDirTest : public ::testing::Test {
  protected:
    // `brokertls-ca COMMAND --dir DIR ARGS...` for run() or a background process.
    std::vector<std::string> ca(std::vector<std::string> args) const {
        args.insert(args.begin() + 1, {"--dir", dir_.string()});
        args.insert(args.begin(), ca_binary());
        return args;
    }

    void SetUp() override {
        RunResult r = run(ca({"init"}));
        ASSERT_EQ(r.exit_code, 0) << describe(r);
    }

    TempDir tmp_;
    std::filesystem::path dir_ = tmp_ / "ca";
    std::filesystem::path out_ = tmp_ / "out";
};

}  // namespace brokertls::test
