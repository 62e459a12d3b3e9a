// The CA's index.jsonl, read by every brokertls-ca command that lists, revokes or builds a CRL.
// The line parser lives inside CertificateIndex::read(), so the input goes through a file.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "brokertls/ca/index.hpp"
#include "brokertls/error.hpp"

namespace {

const std::filesystem::path& index_path() {
    // RAM-backed when available: one write per input. Never destroyed: the atexit handler that
    // removes the file runs after static destructors would have run.
    static const std::filesystem::path* path = [] {
        std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
        auto* p = new std::filesystem::path(
            base / ("brokertls-fuzz-index-" + std::to_string(::getpid()) + ".jsonl"));
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove(index_path(), ec);
        });
        return p;
    }();
    return *path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    {
        std::ofstream out(index_path(), std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    try {
        for (const auto& entry : brokertls::CertificateIndex(index_path()).read())
            (void)entry.status(brokertls::TimePoint{});
    } catch (const brokertls::Error&) {
    }
    return 0;
}
