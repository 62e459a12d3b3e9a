#pragma once
// Runs `fn`, expects it to throw brokertls::Error of `kind`, and returns the message (so a test
// can check that it names the file and the reason).

#include <gtest/gtest.h>

#include <string>

#include "brokertls/error.hpp"

namespace brokertls::test {

template <class Fn>
std::string error_of(Fn&& fn, ErrorKind kind) {
    try {
        fn();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no brokertls::Error thrown";
    return "";
}

}  // namespace brokertls::test
