#include "watch/file_watcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <optional>
#include <set>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "brokertls/crypto/digest.hpp"
#include "brokertls/store/fd.hpp"
#include "path_resolver.hpp"
#include "threads.hpp"

namespace brokertls {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Every way a directory entry can get new content or be replaced, deleted or renamed, and the
// directory itself going away. IN_MODIFY lets a file still being written keep postponing its
// report.
constexpr std::uint32_t kDirEvents = IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM |
                                     IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF |
                                     IN_MOVE_SELF | IN_ONLYDIR;
constexpr std::uint32_t kDirGone = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT;
// A report waits for other files still settling at most this many settle times, so a file that
// never stops changing cannot hold back the others for ever.
constexpr int kHoldFactor = 20;
// Timestamps are coarse (a kernel tick; seconds on some file systems): a file whose mtime is
// this close to when it was read may change again without its stat changing, so polling reads it
// again ("racy" as git calls it).
constexpr std::int64_t kRacyNs = 1'000'000'000;

std::int64_t nanoseconds(const timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// What stat says of a path: a rewrite changes mtime/ctime/size, a replacement the inode.
struct Sig {
    bool exists = false;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::uint32_t type = 0;
    std::int64_t size = 0;
    std::int64_t mtime = 0;  // ns; for a directory the newest of its entries
    std::int64_t ctime = 0;
    std::size_t entries = 0;  // for a directory: its entries' stats, hashed
    bool operator==(const Sig&) const = default;
    bool same_file(const Sig& o) const {
        return exists == o.exists && dev == o.dev && ino == o.ino && type == o.type;
    }
};

std::string errno_text(int err) {
    return std::strerror(err);
}

}  // namespace

struct FileWatcher::State {
    struct Dir;
    enum class Dep {
        Name,      // an event naming the file in this directory
        Link,      // any event here: a symlink on the way to the file may have been retargeted
        Contents,  // any event here: the watched path is this directory
    };
    struct Entry {
        fs::path path;  // as given to set_files
        fs::path abs;   // absolute, normalised
        Sig sig;
        std::string content;   // hash at the last read
        std::string reported;  // content last returned by wait (or read by set_files)
        std::optional<Clock::time_point> settle_until;  // changed: read again then
        bool ready = false;  // stable, differs from `reported`, not yet returned
        bool racy = false;
        std::uint64_t pass = 0;  // de-duplicates looks within one batch...
        std::size_t slot = 0;    // ...at this index
        struct Watch {
            Dir* dir;
            Dep dep;
            std::string name;  // Dep::Name
        };
        std::vector<Watch> deps;
    };
    struct Dir {
        fs::path path;  // real: no symlinks in it
        int wd = -1;    // -1: polled
        std::uint64_t dev = 0;
        std::uint64_t ino = 0;
        std::unordered_map<std::string, std::vector<Entry*>> names;
        std::vector<Entry*> links;
        std::vector<Entry*> contents;
        std::size_t users = 0;
    };

    FileWatcherOptions options;
    Fd inotify;
    Fd wakeup;
    std::unordered_map<std::string, std::unique_ptr<Entry>> entries;  // by path as given
    std::unordered_map<std::string, std::unique_ptr<Dir>> dirs;
    std::unordered_map<int, std::vector<Dir*>> by_wd;
    std::set<Dir*> polled;
    std::set<Entry*> active;  // settling or ready
    std::optional<Clock::time_point> ready_since;
    Clock::time_point next_poll;
    Clock::time_point next_rescan;
    std::uint64_t pass = 0;
    std::atomic<std::uint64_t> stat_calls{0};  // set_files() reads on several threads
    std::atomic<std::uint64_t> content_reads{0};
    std::string watch_problem;
    bool waiting = false;

    explicit State(FileWatcherOptions o)
        : options(o), wakeup(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
        if (wakeup.get() < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
        if (options.mode == FileWatcherOptions::Mode::Auto) {
            inotify.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
            if (inotify.get() < 0)
                watch_problem = "inotify_init1: " + errno_text(errno) +
                                " (fs.inotify.max_user_instances?); polling every file";
        }
        auto now = Clock::now();
        next_poll = now + options.poll_interval;
        next_rescan = now + options.rescan_interval;
    }

    void wake() const {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wakeup.get(), &one, sizeof one);
    }

    // ---- stat and content ----

    static Sig sig_of(const struct stat& st) {
        return Sig{true,
                   st.st_dev,
                   st.st_ino,
                   static_cast<std::uint32_t>(st.st_mode & S_IFMT),
                   st.st_size,
                   nanoseconds(st.st_mtim),
                   nanoseconds(st.st_ctim),
                   0};
    }

    Sig stat_one(const fs::path& path, struct stat& st) {
        ++stat_calls;
        if (::stat(path.c_str(), &st) != 0) return {};
        return sig_of(st);
    }

    Sig stat_sig(const fs::path& path) {
        struct stat st {};
        Sig sig = stat_one(path, st);
        if (sig.type != S_IFDIR) return sig;
        // A file rewritten inside a directory changes its own stat, not the directory's.
        std::string all;
        std::error_code ec;
        for (const auto& item : fs::directory_iterator(path, ec)) {
            Sig c = stat_one(item.path(), st);
            all += item.path().filename().native() + ':' + std::to_string(c.ino) + ':' +
                   std::to_string(c.size) + ':' + std::to_string(c.mtime) + ':' +
                   std::to_string(c.ctime) + ';';
            sig.mtime = std::max(sig.mtime, c.mtime);
        }
        sig.entries = std::hash<std::string>{}(all);
        return sig;
    }

    // SHA-256 of the file's bytes, chained over 64 KiB blocks so a large CRL never sits in memory
    // whole; for a directory, of the names and contents of the files directly in it. `sig`, if
    // given, gets the stat of a regular file as opened (saving a stat per file in set_files).
    std::string content_of(const fs::path& path, Sig* sig = nullptr) {
        ++content_reads;
        Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
        if (fd.get() < 0) return errno == ENOENT ? "missing" : "error: " + errno_text(errno);
        struct stat st {};
        ++stat_calls;
        if (::fstat(fd.get(), &st) != 0) return "error: " + errno_text(errno);
        if (sig && S_ISREG(st.st_mode)) *sig = sig_of(st);
        if (S_ISDIR(st.st_mode)) {
            std::vector<fs::path> names;
            std::error_code ec;
            for (const auto& item : fs::directory_iterator(path, ec)) names.push_back(item.path());
            std::sort(names.begin(), names.end());
            std::string listing;
            for (const auto& name : names) {
                bool file = fs::is_regular_file(name, ec);
                listing +=
                    name.filename().native() + '=' + (file ? content_of(name) : "other") + '\n';
            }
            return "directory " + sha256_hex(listing);
        }
        if (!S_ISREG(st.st_mode)) return "special";
        // Up to the size fstat saw (no extra read for the end of a small file): a file still
        // growing reads differently next time, and is not stable yet.
        std::string digest;
        thread_local std::vector<char> buffer(64 * 1024);
        std::int64_t left = st.st_size;
        do {
            ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return "error: " + errno_text(errno);
            if (n == 0) break;
            digest.append(buffer.data(), static_cast<std::size_t>(n));
            digest = sha256_hex(digest);
            left -= n;
        } while (left > 0);
        return "file " + digest;
    }

    std::string read(Entry& e, bool with_sig = false) {
        std::string content = content_of(e.abs, with_sig ? &e.sig : nullptr);
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        e.racy = e.sig.exists && e.sig.mtime + kRacyNs > nanoseconds(now);
        return content;
    }

    // ---- directories and inotify watches ----

    void try_watch(Dir& d) {
        if (inotify.get() < 0 || d.wd >= 0) return;
        int wd = ::inotify_add_watch(inotify.get(), d.path.c_str(), kDirEvents);
        if (wd < 0) {
            int err = errno;
            if (err == ENOSPC)
                watch_problem = d.path.string() +
                                ": inotify watch limit reached (fs.inotify.max_user_watches); "
                                "polling this directory";
            else if (err != ENOENT && err != ENOTDIR)
                watch_problem = d.path.string() + ": inotify_add_watch: " + errno_text(err) +
                                "; polling this directory";
            return;
        }
        struct stat st {};
        ++stat_calls;
        if (::stat(d.path.c_str(), &st) == 0) {
            d.dev = st.st_dev;
            d.ino = st.st_ino;
        }
        d.wd = wd;
        by_wd[wd].push_back(&d);
        polled.erase(&d);
    }

    void drop_watch(Dir& d) {
        if (d.wd >= 0) {
            auto& users = by_wd[d.wd];
            users.erase(std::find(users.begin(), users.end(), &d));
            if (users.empty()) {
                ::inotify_rm_watch(inotify.get(), d.wd);  // EINVAL when the kernel dropped it
                by_wd.erase(d.wd);
            }
            d.wd = -1;
        }
        polled.insert(&d);
    }

    // The watch no longer covers what is at d.path now (renamed away, replaced)?
    bool stale(Dir& d) {
        if (d.wd < 0) return false;
        struct stat st {};
        ++stat_calls;
        return ::stat(d.path.c_str(), &st) != 0 || st.st_dev != d.dev || st.st_ino != d.ino;
    }

    Dir& dir(const fs::path& path) {
        auto& slot = dirs[path.native()];
        if (!slot) {
            slot = std::make_unique<Dir>();
            slot->path = path;
            polled.insert(slot.get());
            try_watch(*slot);
        }
        return *slot;
    }

    void add_dep(Entry& e, Dir& d, Dep dep, const std::string& name = {}) {
        if (dep == Dep::Name)
            d.names[name].push_back(&e);
        else
            (dep == Dep::Link ? d.links : d.contents).push_back(&e);
        ++d.users;
        e.deps.push_back({&d, dep, name});
    }

    void remove_deps(Entry& e, const std::vector<Entry::Watch>& deps) {
        for (const auto& [d, dep, name] : deps) {
            if (dep == Dep::Name) {
                auto it = d->names.find(name);
                it->second.erase(std::find(it->second.begin(), it->second.end(), &e));
                if (it->second.empty()) d->names.erase(it);
            } else {
                auto& list = dep == Dep::Link ? d->links : d->contents;
                list.erase(std::find(list.begin(), list.end(), &e));
            }
            if (--d->users == 0) {
                drop_watch(*d);
                polled.erase(d);
                dirs.erase(d->path.native());
            }
        }
    }

    // Watches what the entry's path depends on: the directory holding its name, the directory
    // holding what it resolves to, every directory holding a symlink on the way, and the path
    // itself when it is a directory.
    void attach(Entry& e, PathResolver& resolver) {
        fs::path parent = resolver.resolve_directory(e.abs.parent_path()).target;
        add_dep(e, dir(parent), Dep::Name, e.abs.filename().native());
        Resolved full = resolver.resolve(e.abs);
        if (full.target != parent / e.abs.filename())
            add_dep(e, dir(full.target.parent_path()), Dep::Name, full.target.filename().native());
        std::sort(full.link_dirs.begin(), full.link_dirs.end());
        full.link_dirs.erase(std::unique(full.link_dirs.begin(), full.link_dirs.end()),
                             full.link_dirs.end());
        for (const auto& link_dir : full.link_dirs) add_dep(e, dir(link_dir), Dep::Link);
        if (full.directory) add_dep(e, dir(full.target), Dep::Contents);
    }

    // Re-attaches after the path was replaced: a symlink may point elsewhere now. The new
    // watches are set up before the old ones go, so a directory in both keeps its watch.
    void reattach(Entry& e) {
        auto old = std::exchange(e.deps, {});
        PathResolver resolver(stat_calls);
        attach(e, resolver);
        remove_deps(e, old);
    }

    // ---- noticing changes ----

    void look(Entry& e, bool named, Clock::time_point now) {
        Sig sig = stat_sig(e.abs);
        bool changed = !(sig == e.sig);
        if (!sig.same_file(e.sig)) reattach(e);
        e.sig = sig;
        if (e.settle_until) {
            // Still being written: read it once it has been quiet for the settle time.
            if (named || changed) e.settle_until = now + options.settle;
            return;
        }
        if (!named && !changed && !e.racy) return;
        std::string content = read(e);
        if (content == e.content) return;  // touched, or the same bytes rewritten
        e.content = std::move(content);
        e.ready = false;
        e.settle_until = now + options.settle;
        active.insert(&e);
    }

    void look_all(const std::vector<std::pair<Entry*, bool>>& candidates, Clock::time_point now) {
        ++pass;
        std::vector<std::pair<Entry*, bool>> unique;
        for (auto [e, named] : candidates) {
            if (e->pass == pass) {
                // Seen in this batch already: an event naming it wins.
                unique[e->slot].second = unique[e->slot].second || named;
                continue;
            }
            e->pass = pass;
            e->slot = unique.size();
            unique.emplace_back(e, named);
        }
        for (auto [e, named] : unique) look(*e, named, now);
    }

    static void users_of(const Dir& d, bool named, std::vector<std::pair<Entry*, bool>>& out) {
        for (const auto& [name, list] : d.names)
            for (Entry* e : list) out.emplace_back(e, named);
        for (Entry* e : d.links) out.emplace_back(e, named);
        for (Entry* e : d.contents) out.emplace_back(e, named);
    }

    void drain_events(Clock::time_point now) {
        if (inotify.get() < 0) return;
        std::vector<std::pair<Entry*, bool>> candidates;
        std::set<std::string> lost;
        bool overflow = false;
        alignas(inotify_event) char events[16 * 1024];
        for (;;) {
            ssize_t n = ::read(inotify.get(), events, sizeof events);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;  // EAGAIN: drained
            for (char* p = events; p < events + n;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(p);
                p += sizeof(inotify_event) + ev->len;
                if (ev->mask & IN_Q_OVERFLOW) {
                    overflow = true;
                    continue;
                }
                auto it = by_wd.find(ev->wd);
                if (it == by_wd.end()) continue;  // a watch dropped already
                for (Dir* d : it->second) {
                    if (ev->mask & kDirGone) {
                        lost.insert(d->path.native());
                        continue;
                    }
                    if (ev->len > 0)
                        if (auto named = d->names.find(ev->name); named != d->names.end())
                            for (Entry* e : named->second) candidates.emplace_back(e, true);
                    for (Entry* e : d->links) candidates.emplace_back(e, false);
                    for (Entry* e : d->contents) candidates.emplace_back(e, true);
                }
            }
        }
        // A directory deleted or renamed away: watch what is at its path now (it may be back
        // already) or poll it until it is; what was in it may have changed.
        for (const auto& path : lost)
            if (auto it = dirs.find(path); it != dirs.end()) {
                drop_watch(*it->second);
                try_watch(*it->second);
                users_of(*it->second, true, candidates);
            }
        // Events were lost: look at everything (stat; content only where stat changed).
        if (overflow) rescan(now, candidates);
        look_all(candidates, now);
    }

    void rescan(Clock::time_point now, std::vector<std::pair<Entry*, bool>>& candidates) {
        std::vector<Dir*> all;
        for (auto& [path, d] : dirs) all.push_back(d.get());
        for (Dir* d : all)
            if (stale(*d)) {
                drop_watch(*d);
                try_watch(*d);
                users_of(*d, true, candidates);
            }
        for (auto& [path, e] : entries) candidates.emplace_back(e.get(), false);
        (void)now;
    }

    void poll_pass(Clock::time_point now) {
        std::vector<std::pair<Entry*, bool>> candidates;
        std::vector<Dir*> todo(polled.begin(), polled.end());
        for (Dir* d : todo) {
            try_watch(*d);
            // Just watched: anything may have happened before the watch.
            users_of(*d, d->wd >= 0, candidates);
        }
        look_all(candidates, now);
        next_poll = now + options.poll_interval;
    }

    void check_settled(Clock::time_point now) {
        std::vector<Entry*> due;
        for (Entry* e : active)
            if (e->settle_until && *e->settle_until <= now) due.push_back(e);
        for (Entry* e : due) {
            Sig sig = stat_sig(e->abs);
            if (!sig.same_file(e->sig)) reattach(*e);
            e->sig = sig;
            std::string content = read(*e);
            if (content != e->content) {
                e->content = std::move(content);
                e->settle_until = now + options.settle;
                continue;
            }
            e->settle_until.reset();
            e->ready = e->content != e->reported;
            if (!e->ready) {
                active.erase(e);
            } else if (!ready_since) {
                ready_since = now;
            }
        }
    }

    bool settling() const {
        return std::any_of(active.begin(), active.end(),
                           [](const Entry* e) { return e->settle_until.has_value(); });
    }

    // The ready files, once nothing else is settling (or they waited long enough).
    std::vector<fs::path> take_ready(Clock::time_point now) {
        bool any_ready =
            std::any_of(active.begin(), active.end(), [](const Entry* e) { return e->ready; });
        if (!any_ready) {
            ready_since.reset();
            return {};
        }
        bool held_long = now - *ready_since >= kHoldFactor * options.settle;
        if (settling() && !held_long) return {};
        if (!polled.empty() && !held_long) {
            // Polling may not have noticed yet a file written together with the ready ones.
            poll_pass(now);
            if (settling()) return {};
        }
        std::vector<Entry*> out;
        for (Entry* e : active)
            if (e->ready) out.push_back(e);
        std::vector<fs::path> paths;
        for (Entry* e : out) {
            e->reported = e->content;
            e->ready = false;
            if (!e->settle_until) active.erase(e);
            paths.push_back(e->path);
        }
        std::sort(paths.begin(), paths.end());
        ready_since.reset();
        return paths;
    }

    Clock::time_point next_wakeup(Clock::time_point deadline) const {
        Clock::time_point at = std::min(deadline, next_rescan);
        if (!polled.empty()) at = std::min(at, next_poll);
        for (const Entry* e : active)
            if (e->settle_until) at = std::min(at, *e->settle_until);
        if (ready_since) at = std::min(at, *ready_since + kHoldFactor * options.settle);
        return at;
    }

    // Sleeps until `until`, an inotify event or a wake-up (stop, set_files).
    void block(Clock::time_point until) const {
        auto left = std::chrono::ceil<milliseconds>(until - Clock::now()).count();
        int timeout = static_cast<int>(std::clamp<decltype(left)>(left, 0, INT_MAX));
        pollfd fds[2] = {{wakeup.get(), POLLIN, 0}, {inotify.get(), POLLIN, 0}};
        int count = inotify.get() >= 0 ? 2 : 1;
        if (::poll(fds, static_cast<nfds_t>(count), timeout) > 0 && (fds[0].revents & POLLIN)) {
            std::uint64_t value = 0;
            [[maybe_unused]] auto n = ::read(wakeup.get(), &value, sizeof value);
        }
    }

    void set_files(const std::vector<fs::path>& files) {
        std::unordered_map<std::string, std::unique_ptr<Entry>> next;
        std::vector<Entry*> fresh;
        PathResolver resolver(stat_calls);
        for (const auto& file : files) {
            if (next.count(file.native())) continue;
            if (auto it = entries.find(file.native()); it != entries.end()) {
                next.emplace(file.native(), std::move(it->second));
                entries.erase(it);
                continue;
            }
            auto e = std::make_unique<Entry>();
            e->path = file;
            e->abs = fs::absolute(file).lexically_normal();
            if (!e->abs.has_filename()) e->abs = e->abs.parent_path();
            attach(*e, resolver);
            fresh.push_back(e.get());
            next.emplace(file.native(), std::move(e));
        }
        for (auto& [path, e] : entries) {
            active.erase(e.get());
            remove_deps(*e, std::exchange(e->deps, {}));
        }
        entries = std::move(next);
        // Read after the watches are in place: a change from now on is not missed. Each entry
        // on its own, spread over the cores (a broker with ten thousand certificate profiles
        // starts with twenty thousand files to read).
        for_each_parallel(fresh.size(), [&](std::size_t i) {
            Entry& e = *fresh[i];
            e.content = e.reported = read(e, true);
            if (e.sig.type != S_IFREG) e.sig = stat_sig(e.abs);  // a directory, or missing
        });
    }
};

FileWatcher::FileWatcher(FileWatcherOptions options) : state_(std::make_unique<State>(options)) {}

FileWatcher::~FileWatcher() = default;

void FileWatcher::set_files(const std::vector<fs::path>& files) {
    std::lock_guard lock(mutex_);
    state_->set_files(files);
    state_->wake();  // a waiting wait() re-plans: new directories may have to be polled
}

std::vector<fs::path> FileWatcher::wait(milliseconds timeout, std::stop_token stop) {
    const auto deadline = Clock::now() + timeout;
    State& s = *state_;
    std::stop_callback on_stop(stop, [&s] { s.wake(); });
    std::unique_lock lock(mutex_);
    for (;;) {
        if (stop.stop_requested()) return {};
        auto now = Clock::now();
        s.drain_events(now);
        if (!s.polled.empty() && now >= s.next_poll) s.poll_pass(now);
        if (now >= s.next_rescan) {
            std::vector<std::pair<State::Entry*, bool>> candidates;
            s.rescan(now, candidates);
            s.look_all(candidates, now);
            s.next_rescan = now + s.options.rescan_interval;
        }
        s.check_settled(now);
        if (auto changed = s.take_ready(now); !changed.empty()) return changed;
        if (now >= deadline) return {};
        auto until = s.next_wakeup(deadline);
        s.waiting = true;
        lock.unlock();
        s.block(until);
        lock.lock();
        s.waiting = false;
    }
}

FileWatcher::Stats FileWatcher::stats() const {
    std::lock_guard lock(mutex_);
    const State& s = *state_;
    Stats out;
    out.inotify = s.inotify.get() >= 0;
    out.files = s.entries.size();
    out.polled_dirs = s.polled.size();
    out.watched_dirs = s.dirs.size() - s.polled.size();
    out.settling =
        static_cast<std::size_t>(std::count_if(s.active.begin(), s.active.end(), [](const auto* e) {
            return e->settle_until.has_value();
        }));
    out.stat_calls = s.stat_calls.load();
    out.content_reads = s.content_reads.load();
    out.watch_problem = s.watch_problem;
    out.waiting = s.waiting;
    return out;
}

}  // namespace brokertls
