#pragma once
// Notices when watched files (certificates, keys, CRLs, trust anchor files or directories,
// brokertls.json) have new, complete content. It knows nothing of what the files hold.
//
// With inotify it watches the files' directories, not the files, because certificates are
// replaced by rename; one watch per directory, so 30,000 files in a few directories cost a few
// watches and nothing while idle. What cannot be watched (no inotify, a directory that does not
// exist yet, the max_user_watches limit) is polled with stat at `poll_interval`.
//
// A changed file is reported once its content hash is the same on two reads `settle` apart, so
// a file being written, or a key and a certificate written one after the other, are not reported
// half-way (as Envoy re-reads rotated files until their hash is stable).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

namespace brokertls {

struct FileWatcherOptions {
    enum class Mode {
        Auto,  // inotify where it works, polling for what it cannot watch
        Poll,  // stat only, every poll_interval (network file systems; tests of the fallback)
    };
    Mode mode = Mode::Auto;
    std::chrono::milliseconds poll_interval{250};
    // Two reads of a changed file this far apart must agree before it is reported.
    std::chrono::milliseconds settle{50};
    // With inotify, every file is still stat'ed this often: a safety net for changes inotify
    // cannot see (a parent directory renamed away and replaced, a network mount). 30,000 stats
    // cost about 0.1-0.3 s of CPU here: every 5 minutes that is under 0.1 % of a core.
    std::chrono::milliseconds rescan_interval{std::chrono::minutes(5)};
};

class FileWatcher {
  public:
    explicit FileWatcher(FileWatcherOptions options = {});
    FileWatcher(const FileWatcher&) = delete;
    FileWatcher& operator=(const FileWatcher&) = delete;
    ~FileWatcher();

    // The files (or directories: a change of any file directly inside counts) to watch. Files
    // already watched keep their state; new ones are read now, and what they hold now is the
    // baseline: call this before loading them, so a change in between is reported, not missed.
    // A path that does not exist is watched for its creation. Safe while another thread waits.
    void set_files(const std::vector<std::filesystem::path>& files);

    // Blocks until at least one watched file has new stable content (or was deleted), `timeout`
    // passes, or `stop` is requested; returns the changed paths, as given to set_files, each
    // once per change. Files that change together are returned together: while another changed
    // file is still settling the report waits for it (at most 20 x settle). A file whose content
    // is back to what was last reported is not reported. One thread waits at a time.
    std::vector<std::filesystem::path> wait(std::chrono::milliseconds timeout,
                                            std::stop_token stop = {});

    // What the watcher does, for logs and tests.
    struct Stats {
        bool inotify = false;          // false: everything is polled
        std::size_t files = 0;         // paths watched
        std::size_t watched_dirs = 0;  // directories with an inotify watch
        std::size_t polled_dirs = 0;   // directories polled (missing, over the limit, Poll mode)
        std::size_t settling = 0;      // changed files waiting for their content to be stable
        std::uint64_t stat_calls = 0;  // since construction
        std::uint64_t content_reads = 0;
        std::string watch_problem;  // the last reason a watch could not be set up ("" if none)
        bool waiting = false;       // a thread is blocked in wait()
    };
    Stats stats() const;

  private:
    struct State;
    std::unique_ptr<State> state_;
    mutable std::mutex mutex_;
};

}  // namespace brokertls
