// FileWatcher at the scale of 10,000 certificate profiles: COUNT files (30,000: key, certificate,
// chain each) in 10 directories under a fresh scratch directory, watched with inotify and with
// polling every 250 ms (today's interval). Prints, per mode: the set_files time, the CPU the
// process uses while nothing changes for 5 s (percent of one core), and the latency from a
// rename of a new file into place to its report (median and max of 20, default 50 ms settle).
//
// Usage: watch_bench [COUNT (30000)]

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "watch/file_watcher.hpp"

using namespace brokertls;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

void write_file(const fs::path& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
}

double cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void run(FileWatcherOptions::Mode mode, const std::vector<fs::path>& files) {
    FileWatcherOptions options;
    options.mode = mode;
    options.poll_interval = 250ms;
    FileWatcher watcher(options);
    const char* name = mode == FileWatcherOptions::Mode::Auto ? "inotify" : "polling 250 ms";

    auto start = Clock::now();
    watcher.set_files(files);
    std::printf("%-15s set_files(%zu): %.0f ms\n", name, files.size(), ms_since(start));

    // The files were just written: let polling's "modified within a second" re-reads pass.
    watcher.wait(1500ms);
    double cpu = cpu_seconds();
    start = Clock::now();
    auto changed = watcher.wait(5s);
    double wall = ms_since(start) / 1000;
    std::printf("%-15s idle CPU over %.1f s: %.2f %% of one core (%zu reported)\n", name, wall,
                100 * (cpu_seconds() - cpu) / wall, changed.size());

    std::vector<double> latency;
    for (int i = 0; i < 20; ++i) {
        const fs::path& file = files[(static_cast<std::size_t>(i) * 7919) % files.size()];
        fs::path tmp = file;
        tmp += ".new";
        write_file(tmp, std::string(name) + " renewed certificate " + std::to_string(i));
        start = Clock::now();
        fs::rename(tmp, file);
        auto got = watcher.wait(10s);
        if (got != std::vector<fs::path>{file}) {
            std::printf("%-15s rename %d: expected %s, got %zu paths\n", name, i, file.c_str(),
                        got.size());
            std::exit(1);
        }
        latency.push_back(ms_since(start));
    }
    std::sort(latency.begin(), latency.end());
    std::printf("%-15s rename to report: median %.1f ms, max %.1f ms (settle %lld ms)\n", name,
                (latency[9] + latency[10]) / 2, latency.back(),
                static_cast<long long>(options.settle.count()));
    auto stats = watcher.stats();
    std::printf("%-15s watched dirs %zu, polled dirs %zu, stat calls %llu, reads %llu\n", name,
                stats.watched_dirs, stats.polled_dirs,
                static_cast<unsigned long long>(stats.stat_calls),
                static_cast<unsigned long long>(stats.content_reads));
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t count = argc > 1 ? std::stoul(argv[1]) : 30000;
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/watch-bench-XXXXXX";
    if (!::mkdtemp(pattern.data())) {
        std::perror("mkdtemp");
        return 1;
    }
    fs::path root = pattern;
    std::vector<fs::path> files;
    for (std::size_t i = 0; i < count; ++i) {
        fs::path dir = root / ("profiles" + std::to_string(i % 10));
        fs::create_directories(dir);
        files.push_back(dir / ("p" + std::to_string(i) + ".pem"));
        // About the size of a P-256 certificate in PEM.
        write_file(files.back(), std::string(700, 'A') + std::to_string(i));
    }
    run(FileWatcherOptions::Mode::Auto, files);
    run(FileWatcherOptions::Mode::Poll, files);
    fs::remove_all(root);
    return 0;
}
