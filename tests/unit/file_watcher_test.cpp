// FileWatcher on real files, with inotify and with forced polling: a file is reported once its
// new content is complete and stable, once per change, whichever way it was replaced.

#include "watch/file_watcher.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Mode = FileWatcherOptions::Mode;
using Paths = std::vector<fs::path>;

void write_file(const fs::path& path, const std::string& content,
                std::ios::openmode mode = std::ios::trunc) {
    std::ofstream out(path, std::ios::binary | mode);
    out << content;
    out.close();
    ASSERT_TRUE(out) << path;
}

// As certificate tools and our own store do: a temporary file renamed over the old one.
void replace_file(const fs::path& path, const std::string& content) {
    fs::path tmp = path;
    tmp += ".tmp";
    write_file(tmp, content);
    fs::rename(tmp, path);
}

double cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

class FileWatcherTest : public ::testing::TestWithParam<Mode> {
  protected:
    // Polling every 10 ms keeps the polled runs short; the settle time is what a test needs.
    std::unique_ptr<FileWatcher> watcher(std::chrono::milliseconds settle = 50ms) {
        FileWatcherOptions options;
        options.mode = GetParam();
        options.poll_interval = 10ms;
        options.settle = settle;
        auto w = std::make_unique<FileWatcher>(options);
        EXPECT_EQ(w->stats().inotify, GetParam() == Mode::Auto);
        return w;
    }

    // Every report (one wait() result each) until `reports` of them came; bounded.
    std::vector<Paths> reports(FileWatcher& w, std::size_t count,
                               std::chrono::milliseconds timeout = 10s) {
        std::vector<Paths> out;
        test::eventually(
            [&] {
                if (auto changed = w.wait(50ms); !changed.empty()) out.push_back(changed);
                return out.size() >= count;
            },
            timeout, 0ms);
        return out;
    }

    // Waits (bounded) until the watcher has noticed a change and is waiting for it to settle;
    // whatever it reports meanwhile goes to `early`.
    bool settling(FileWatcher& w, std::vector<Paths>& early) {
        return test::eventually(
            [&] {
                if (auto changed = w.wait(1ms); !changed.empty()) early.push_back(changed);
                return w.stats().settling > 0;
            },
            10s, 0ms);
    }

    // Nothing more is reported within a few settle and poll times.
    Paths more(FileWatcher& w, std::chrono::milliseconds settle = 50ms) {
        return w.wait(4 * settle + 50ms);
    }

    test::TempDir tmp;
};

TEST_P(FileWatcherTest, AFileRenamedIntoPlaceIsReportedOnce) {
    fs::path cert = tmp / "server.crt";
    write_file(cert, "old certificate");
    auto w = watcher();
    w->set_files({cert});
    replace_file(cert, "new certificate");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{cert}});
    EXPECT_EQ(more(*w), Paths{});
}

TEST_P(FileWatcherTest, AKeyAndItsCertificateWrittenOneAfterTheOtherAreReportedTogether) {
    // Documented choice: one report holds both, because a report waits for every file still
    // settling (the certificate) before it returns the one that is stable (the key).
    fs::path key = tmp / "server.key", cert = tmp / "server.crt";
    write_file(key, "old key");
    write_file(cert, "old certificate");
    auto w = watcher(300ms);
    w->set_files({cert, key});
    replace_file(key, "new key");
    std::vector<Paths> early;
    ASSERT_TRUE(settling(*w, early));  // the key was seen before the certificate is written
    // The writer's pause between the two files (not synchronisation): well inside the settle
    // time, and long enough that the key is stable while the certificate is not.
    std::this_thread::sleep_for(100ms);
    replace_file(cert, "new certificate");
    auto got = reports(*w, 1);
    EXPECT_EQ(early, std::vector<Paths>{});
    EXPECT_EQ(got, (std::vector<Paths>{{cert, key}}));
    EXPECT_EQ(more(*w, 300ms), Paths{});
}

TEST_P(FileWatcherTest, AFileRewrittenInPlaceInTwoHalvesIsReportedOnlyAfterTheSecondHalf) {
    fs::path crl = tmp / "ca.crl";
    write_file(crl, "old revocation list");
    auto w = watcher(300ms);
    w->set_files({crl});
    write_file(crl, "first half of the new list, ");
    std::vector<Paths> early;
    ASSERT_TRUE(settling(*w, early));
    EXPECT_EQ(early, std::vector<Paths>{}) << "reported half-way";
    write_file(crl, "second half", std::ios::app);
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{crl}});
    EXPECT_EQ(more(*w, 300ms), Paths{});
}

TEST_P(FileWatcherTest, AFileBackToItsReportedContentWithinTheSettleTimeIsNotReported) {
    fs::path cert = tmp / "server.crt";
    write_file(cert, "the certificate");
    auto w = watcher(300ms);
    w->set_files({cert});
    write_file(cert, "a certificate in between");
    std::vector<Paths> early;
    ASSERT_TRUE(settling(*w, early));
    write_file(cert, "the certificate");
    EXPECT_TRUE(test::eventually(
        [&] {
            if (auto changed = w->wait(10ms); !changed.empty()) early.push_back(changed);
            return w->stats().settling == 0;
        },
        10s, 0ms));
    EXPECT_EQ(early, std::vector<Paths>{});
    // And a real change afterwards still is.
    replace_file(cert, "a new certificate");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{cert}});
}

TEST_P(FileWatcherTest, ADeletedFileIsReported) {
    fs::path crl = tmp / "ca.crl", other = tmp / "other.crl";
    write_file(crl, "revocation list");
    write_file(other, "other list");
    auto w = watcher();
    w->set_files({crl, other});
    fs::remove(crl);
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{crl}});
    write_file(crl, "revocation list back");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{crl}});
    EXPECT_EQ(more(*w), Paths{});
}

TEST_P(FileWatcherTest, ADirectoryRemovedAndCreatedAgainIsWatchedAgain) {
    fs::path dir = tmp / "certs", cert = dir / "server.crt";
    fs::create_directory(dir);
    write_file(cert, "old certificate");
    auto w = watcher();
    w->set_files({cert});
    fs::remove_all(dir);
    fs::create_directory(dir);
    write_file(cert, "new certificate");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{cert}});
    // The new directory is watched, not the deleted one.
    replace_file(cert, "newer certificate");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{cert}});
    EXPECT_EQ(more(*w), Paths{});
}

TEST_P(FileWatcherTest, AFileInADirectoryThatDoesNotExistYetIsReportedWhenItAppears) {
    fs::path cert = tmp / "not" / "yet" / "server.crt";
    auto w = watcher();
    w->set_files({cert});
    EXPECT_EQ(w->wait(20ms), Paths{});
    fs::create_directories(cert.parent_path());
    write_file(cert, "first certificate");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{cert}});
    replace_file(cert, "second certificate");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{cert}});
    if (GetParam() == Mode::Auto) {
        EXPECT_EQ(w->stats().polled_dirs, 0u);
    }
}

TEST_P(FileWatcherTest, ASymlinkRetargetedIsReportedAndItsNewTargetWatched) {
    fs::path live = tmp / "live", archive = tmp / "archive";
    fs::create_directory(live);
    fs::create_directory(archive);
    write_file(archive / "cert1.pem", "certificate 1");
    write_file(archive / "cert2.pem", "certificate 2");
    fs::path link = live / "cert.pem";
    fs::create_symlink("../archive/cert1.pem", link);
    auto w = watcher();
    w->set_files({link});
    // The target rewritten in place counts.
    write_file(archive / "cert1.pem", "certificate 1, rewritten");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{link}});
    // Retargeted atomically, as certbot's live/ links are.
    fs::create_symlink("../archive/cert2.pem", live / "cert.pem.new");
    fs::rename(live / "cert.pem.new", link);
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{link}});
    // Now the new target is watched, and the old one no longer counts.
    write_file(archive / "cert1.pem", "certificate 1, unused");
    EXPECT_EQ(more(*w), Paths{});
    write_file(archive / "cert2.pem", "certificate 2, rewritten");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{link}});
}

TEST_P(FileWatcherTest, ASecretVolumeSwappingItsDataLinkIsReported) {
    // Kubernetes: tls.crt -> ..data/tls.crt, ..data -> ..2024_1; an update writes ..2024_2 and
    // renames a new ..data link over the old one.
    fs::path volume = tmp / "secret";
    fs::create_directories(volume / "..2024_1");
    fs::create_directories(volume / "..2024_2");
    write_file(volume / "..2024_1" / "tls.crt", "certificate 1");
    write_file(volume / "..2024_2" / "tls.crt", "certificate 2");
    fs::create_symlink("..2024_1", volume / "..data");
    fs::create_symlink("..data/tls.crt", volume / "tls.crt");
    auto w = watcher();
    w->set_files({volume / "tls.crt"});
    fs::create_symlink("..2024_2", volume / "..data_tmp");
    fs::rename(volume / "..data_tmp", volume / "..data");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{volume / "tls.crt"}});
    fs::remove_all(volume / "..2024_1");
    EXPECT_EQ(more(*w), Paths{});
}

TEST_P(FileWatcherTest, AWatchedDirectoryIsReportedWhenAFileInItChanges) {
    fs::path anchors = tmp / "anchors";
    fs::create_directory(anchors);
    write_file(anchors / "a.pem", "anchor a");
    auto w = watcher();
    w->set_files({anchors});
    write_file(anchors / "b.pem", "anchor b");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{anchors}});
    write_file(anchors / "a.pem", "anchor a, renewed");
    EXPECT_EQ(reports(*w, 1), std::vector<Paths>{{anchors}});
    EXPECT_EQ(more(*w), Paths{});
}

TEST_P(FileWatcherTest, FilesAddedWhileAnotherThreadWaitsAreWatched) {
    fs::path first = tmp / "a" / "first.crt", second = tmp / "later" / "second.crt";
    fs::create_directory(tmp / "a");
    write_file(first, "first");
    auto w = watcher();
    w->set_files({first});
    Paths got;
    std::thread waiter([&] { got = w->wait(10s); });  // returns at the first report
    EXPECT_TRUE(test::eventually([&] { return w->stats().waiting; }, 10s));
    // A directory that does not exist yet: polled, which the blocked thread must learn.
    w->set_files({first, second});
    fs::create_directory(tmp / "later");
    write_file(second, "second");
    waiter.join();
    EXPECT_EQ(got, Paths{second});
}

TEST_P(FileWatcherTest, StopWakesABlockedWait) {
    fs::path cert = tmp / "server.crt";
    write_file(cert, "certificate");
    auto w = watcher();
    w->set_files({cert});
    std::stop_source stop;
    std::atomic<bool> returned{false};
    Paths result{"not returned"};
    std::thread waiter([&] {
        result = w->wait(std::chrono::hours(1), stop.get_token());
        returned = true;
    });
    EXPECT_TRUE(test::eventually([&] { return w->stats().waiting; }, 10s));
    stop.request_stop();
    EXPECT_TRUE(test::eventually([&] { return returned.load(); }, 5s));
    if (!returned) {
        replace_file(cert, "wakes it up so the test can end");
        w->set_files({});
    }
    waiter.join();
    EXPECT_EQ(result, Paths{});
}

TEST_P(FileWatcherTest, TenThousandFilesInTenDirectoriesCostNothingWhileIdle) {
    Paths files;
    for (int d = 0; d < 10; ++d) {
        fs::path dir = tmp / ("profiles" + std::to_string(d));
        fs::create_directory(dir);
        for (int f = 0; f < 1000; ++f) {
            files.push_back(dir / ("p" + std::to_string(f) + ".pem"));
            write_file(files.back(), "certificate " + std::to_string(d * 1000 + f));
        }
    }
    FileWatcherOptions options;
    options.mode = GetParam();
    options.poll_interval = 250ms;  // today's watch interval
    FileWatcher w(options);
    auto start = std::chrono::steady_clock::now();
    w.set_files(files);
    auto took = std::chrono::steady_clock::now() - start;
    auto before = w.stats();
    double cpu_before = cpu_seconds();
    auto wall_before = std::chrono::steady_clock::now();
    EXPECT_EQ(w.wait(1s), Paths{});
    double cpu = cpu_seconds() - cpu_before;
    double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
    auto after = w.stats();
    std::cout << (GetParam() == Mode::Auto ? "inotify" : "polling") << ": set_files(10,000) "
              << std::chrono::duration<double, std::milli>(took).count() << " ms; idle wait "
              << wall << " s used " << cpu * 1000 << " ms CPU ("
              << after.stat_calls - before.stat_calls << " stat calls)" << std::endl;
    EXPECT_EQ(after.files, 10000u);
    if (GetParam() == Mode::Auto) {
        EXPECT_EQ(after.watched_dirs, 10u);
        EXPECT_EQ(after.polled_dirs, 0u);
        EXPECT_EQ(after.stat_calls, before.stat_calls) << "stat while idle";
        EXPECT_EQ(after.content_reads, before.content_reads) << "read while idle";
    } else {
        // Polling also reads again the files written less than a second ago: their mtime may
        // not show a write in the same clock tick.
        EXPECT_EQ(after.polled_dirs, 10u);
        EXPECT_GE(after.stat_calls - before.stat_calls, 10000u) << "not one poll in a second";
    }
    // Still watching at this scale.
    replace_file(files[4321], "renewed");
    EXPECT_EQ(reports(w, 1), std::vector<Paths>{{files[4321]}});
}

INSTANTIATE_TEST_SUITE_P(Modes, FileWatcherTest, ::testing::Values(Mode::Auto, Mode::Poll),
                         [](const ::testing::TestParamInfo<Mode>& mode) {
                             return mode.param == Mode::Auto ? "Inotify" : "Polling";
                         });

// Events lost to a full inotify queue (fs.inotify.max_queued_events) are made up for by
// looking at every file.
TEST(FileWatcherInotifyTest, AChangeLostInAQueueOverflowIsStillReported) {
    test::TempDir tmp;
    fs::path cert = tmp / "server.crt";
    write_file(cert, "old certificate");
    FileWatcher w;
    w.set_files({cert});
    ASSERT_TRUE(w.stats().inotify);
    // Nobody reads the queue while these are made: two events each (create, close) overflow it.
    for (int i = 0; i < 9000; ++i) write_file(tmp / ("noise" + std::to_string(i)), "");
    replace_file(cert, "new certificate");
    std::vector<Paths> got;
    test::eventually(
        [&] {
            if (auto changed = w.wait(50ms); !changed.empty()) got.push_back(changed);
            return !got.empty();
        },
        10s, 0ms);
    EXPECT_EQ(got, std::vector<Paths>{{cert}});
}

}  // namespace
}  // namespace brokertls
