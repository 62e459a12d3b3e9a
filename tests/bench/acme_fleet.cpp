// COUNT certificate profiles renewed at once by CertificatePipeline, as tests/bench/acme_bench.sh
// runs it: a generated brokertls.json with profiles p000, p001, ... (one name each,
// pNNN.bench.test) on one ACME issuer answering http-01 with the built-in responder, and an empty
// state directory. configure() deploys the temporary self-signed certificates and every profile is
// due at once; the clock runs from configure() until every profile has its CA certificate
// deployed. Prints the wall time and the peak RSS (getrusage ru_maxrss) of the process on the
// last line of stdout; exits 1 when not every profile got its certificate within DEADLINE.
//
// Usage: acme_fleet DIRECTORY_URL CA_BUNDLE HTTP01_LISTEN WORK_DIR COUNT MAX_CONCURRENT
//        [DEADLINE_SECONDS (120)]

#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "brokertls/store/files.hpp"
#include "config/config.hpp"
#include "pipeline/pipeline.hpp"

using namespace brokertls;
namespace fs = std::filesystem;

namespace {

double peak_rss_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

std::string profile_name(int i) {
    char name[16];
    std::snprintf(name, sizeof name, "p%03d", i);
    return name;
}

nlohmann::json fleet_config(const std::string& directory, const fs::path& ca_bundle,
                            const std::string& listen, int count, int max_concurrent) {
    nlohmann::json profiles = nlohmann::json::object();
    for (int i = 0; i < count; ++i) {
        std::string name = profile_name(i);
        profiles[name] = {
            {"source", "acme"},
            {"acme", {{"issuer", "pebble"}}},
            {"names", {name + ".bench.test"}},
            {"deploy", {{"cert", "live/" + name + ".crt"}, {"key", "live/" + name + ".key"}}}};
    }
    return {{"issuers",
             {{"pebble",
               {{"type", "acme"},
                {"directory", directory},
                {"email", "bench@example.com"},
                {"ca_bundle", fs::absolute(ca_bundle).string()},
                {"challenge", {{"type", "http-01"}, {"listen", listen}}}}}}},
            {"certificate_profiles", profiles},
            {"renewal", {{"max_concurrent_orders", max_concurrent}}},
            {"events", {{"mqtt_topic", ""}}},
            {"state_dir", "state"}};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7 && argc != 8) {
        std::cerr << "usage: acme_fleet DIRECTORY_URL CA_BUNDLE HTTP01_LISTEN WORK_DIR COUNT "
                     "MAX_CONCURRENT [DEADLINE_SECONDS]\n";
        return 2;
    }
    const int count = std::stoi(argv[5]);
    const int max_concurrent = std::stoi(argv[6]);
    const auto deadline_after = std::chrono::seconds(argc == 8 ? std::stoi(argv[7]) : 120);
    try {
        fs::path dir = argv[4];
        fs::create_directories(dir);
        fs::path file = fs::absolute(dir) / "brokertls.json";
        write_file_atomic(file,
                          fleet_config(argv[1], argv[2], argv[3], count, max_concurrent).dump(2));
        Config config = load_config(file);

        // Completion is counted from the pipeline's events rather than by polling status(),
        // which reads every deployed certificate and would load the process being measured.
        std::mutex mutex;
        std::condition_variable changed;
        int obtained = 0, failed = 0;
        CertificatePipeline::Hooks hooks;
        hooks.log = [&](const std::string& line) {
            std::lock_guard lock(mutex);
            std::cerr << line << '\n';
        };
        hooks.event = [&](const RenewalEvent& event) {
            std::lock_guard lock(mutex);
            std::cerr << event.to_json() << '\n';
            if (event.type == "obtained") ++obtained;
            if (event.type == "failed") ++failed;
            changed.notify_all();
        };
        CertificatePipeline pipeline(hooks);
        double rss_before = peak_rss_mb();

        auto started = std::chrono::steady_clock::now();
        pipeline.configure(config, SystemClock::now());
        pipeline.start();
        bool done;
        {
            std::unique_lock lock(mutex);
            done = changed.wait_until(lock, started + deadline_after,
                                      [&] { return obtained >= count; });
        }
        std::chrono::duration<double> wall = std::chrono::steady_clock::now() - started;
        pipeline.stop();

        // Every profile must serve its CA certificate, not the temporary one.
        int served = 0;
        for (const auto& [name, st] : pipeline.status()) {
            if (st.job.last_result == "obtained" && !st.temporary && !st.subject.empty())
                ++served;
            else
                std::cerr << name << ": not obtained: " << st.job.last_result << " "
                          << st.job.last_error << '\n';
        }
        if (!done || served != count) {
            std::cerr << "acme_fleet: " << served << " of " << count << " profiles obtained after "
                      << wall.count() << " s\n";
            return 1;
        }
        std::printf(
            "%d profiles at once (max_concurrent_orders %d): %.2f s wall, peak RSS %.1f MB "
            "(%.1f MB before configure), failed attempts: %d\n",
            count, max_concurrent, wall.count(), peak_rss_mb(), rss_before, failed);
    } catch (const std::exception& e) {
        std::cerr << "acme_fleet: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
