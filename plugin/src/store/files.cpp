#include "brokertls/store/files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <sstream>
#include <utility>

#include "brokertls/error.hpp"
#include "brokertls/store/fd.hpp"

namespace brokertls {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail_errno(const fs::path& path, std::string_view what, int err) {
    fail(ErrorKind::Io, path.string(), std::string(what) + ": " + std::strerror(err));
}

constexpr std::string_view kTempMarker = ".tmp-";

// ".TARGET.tmp-PID-RANDOM": the PID lets a later command tell a dead writer's leftovers from a
// live writer's files (remove_stale_temp_files).
fs::path temp_name_for(const fs::path& target) {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    std::ostringstream name;
    name << '.' << target.filename().string() << kTempMarker << ::getpid() << '-' << std::hex
         << rng();
    return target.parent_path() / name.str();
}

bool all_of_class(std::string_view text, int (*is)(int)) {
    return !text.empty() && std::all_of(text.begin(), text.end(),
                                        [&](char c) { return is(static_cast<unsigned char>(c)); });
}

struct TempName {
    std::string target;
    pid_t pid = 0;
};

std::optional<TempName> parse_temp_name(std::string_view name) {
    if (name.size() < 2 || name[0] != '.') return std::nullopt;
    size_t marker = name.rfind(kTempMarker);
    if (marker == std::string_view::npos || marker < 2) return std::nullopt;
    std::string_view rest = name.substr(marker + kTempMarker.size());
    size_t dash = rest.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    std::string_view pid_text = rest.substr(0, dash), random = rest.substr(dash + 1);
    if (!all_of_class(pid_text, ::isdigit) || pid_text.size() > 9 || random.size() > 16 ||
        !all_of_class(random, ::isxdigit))
        return std::nullopt;
    TempName parsed{std::string(name.substr(1, marker - 1)), 0};
    std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), parsed.pid);
    return parsed;
}

bool process_gone(pid_t pid) {
    return pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH);
}

// Writes `data` to a new temporary file beside `target`; fsyncs it when `sync` is set.
fs::path write_temp(const fs::path& target, std::string_view data, mode_t mode, bool sync) {
    fs::path temp = temp_name_for(target);
    Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (fd.get() < 0) fail_errno(target, "cannot create", errno);
    try {
        // The umask may have narrowed the mode; the caller's mode is what we promise.
        if (::fchmod(fd.get(), mode) != 0) fail_errno(target, "cannot set mode", errno);
        write_all(fd.get(), data, target);
        if (sync && ::fsync(fd.get()) != 0) fail_errno(target, "cannot sync", errno);
        if (::close(fd.release()) != 0) fail_errno(target, "cannot close", errno);
    } catch (...) {
        ::unlink(temp.c_str());
        throw;
    }
    return temp;
}

void rename_into_place(const fs::path& temp, const fs::path& target, Overwrite overwrite) {
    if (overwrite == Overwrite::Refuse) {
        // link() fails with EEXIST instead of replacing, so a concurrent writer cannot be lost.
        if (::link(temp.c_str(), target.c_str()) != 0) {
            int err = errno;
            ::unlink(temp.c_str());
            if (err == EEXIST)
                fail(ErrorKind::State, target.string(),
                     "already exists (use --force to overwrite)");
            fail_errno(target, "cannot create", err);
        }
        ::unlink(temp.c_str());
        return;
    }
    if (::rename(temp.c_str(), target.c_str()) != 0) {
        int err = errno;
        ::unlink(temp.c_str());
        fail_errno(target, "cannot replace", err);
    }
}

fs::path directory_of(const fs::path& path) {
    fs::path dir = path.parent_path();
    return dir.empty() ? fs::path(".") : dir;
}

}  // namespace

Fd open_or_fail(const fs::path& path, int flags, mode_t mode) {
    Fd fd(::open(path.c_str(), flags, mode));
    if (fd.get() < 0) fail_errno(path, "cannot open", errno);
    return fd;
}

void write_all(int fd, std::string_view data, const fs::path& path) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            fail_errno(path, "cannot write", errno);
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
}

std::string read_file(const fs::path& path) {
    auto cannot_read = [&](int err) {
        fail(ErrorKind::Input, path.string(), std::string("cannot read: ") + std::strerror(err));
    };
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) cannot_read(errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) cannot_read(errno);
    // A directory opens, and then reads nothing: that is no empty file.
    if (S_ISDIR(st.st_mode)) cannot_read(EISDIR);
    // One buffer of the size fstat gives, read into directly (a string stream copied the data
    // twice); then on to EOF through a small buffer, for a file that grew meanwhile and for
    // files whose size says nothing (/proc, pipes).
    std::string data(S_ISREG(st.st_mode) ? static_cast<std::size_t>(st.st_size) : 0, '\0');
    std::size_t got = 0;
    char more[4096];
    for (;;) {
        bool inside = got < data.size();
        ssize_t n = inside ? ::read(fd.get(), data.data() + got, data.size() - got)
                           : ::read(fd.get(), more, sizeof more);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) cannot_read(errno);
        if (n == 0) break;
        if (!inside) data.append(more, static_cast<std::size_t>(n));  // data.size() was got
        got += static_cast<std::size_t>(n);
    }
    data.resize(got);  // shorter when the file shrank meanwhile
    return data;
}

void sync_directory(const fs::path& dir) {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) fail_errno(dir, "cannot open directory", errno);
    if (::fsync(fd.get()) != 0 && errno != EINVAL) fail_errno(dir, "cannot sync directory", errno);
}

void ensure_directory(const fs::path& dir, mode_t mode) {
    if (dir.empty() || fs::is_directory(dir)) return;
    ensure_directory(dir.parent_path(), mode);
    if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST)
        fail_errno(dir, "cannot create directory", errno);
}

void write_file_atomic(const fs::path& path, std::string_view data, mode_t mode,
                       Overwrite overwrite) {
    fs::path temp = write_temp(path, data, mode, /*sync=*/true);
    rename_into_place(temp, path, overwrite);
    sync_directory(directory_of(path));
}

void write_file_unsynced(const fs::path& path, std::string_view data, mode_t mode) {
    rename_into_place(write_temp(path, data, mode, /*sync=*/false), path, Overwrite::Allow);
}

std::optional<std::string> temp_file_target(std::string_view file_name) {
    auto parsed = parse_temp_name(file_name);
    if (!parsed) return std::nullopt;
    return parsed->target;
}

size_t remove_stale_temp_files(const fs::path& dir) {
    constexpr auto kMaxAge = std::chrono::hours(1);  // a writer's PID may have been reused
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    size_t removed = 0;
    auto now = fs::file_time_type::clock::now();
    for (; !ec && it != end; it.increment(ec)) {
        auto parsed = parse_temp_name(it->path().filename().string());
        if (!parsed || !it->is_regular_file(ec)) continue;
        bool old = now - it->last_write_time(ec) > kMaxAge;
        if (parsed->pid == ::getpid() && !old) continue;
        if (!process_gone(parsed->pid) && !old) continue;
        if (::unlink(it->path().c_str()) == 0) ++removed;
    }
    return removed;
}

AtomicBatch::~AtomicBatch() {
    for (const auto& s : staged_) ::unlink(s.temp.c_str());
}

void AtomicBatch::stage(const fs::path& path, std::string_view data, mode_t mode) {
    synced_ = false;
    staged_.push_back({path, write_temp(path, data, mode, /*sync=*/false)});
}

void AtomicBatch::sync() {
    // One syncfs() per filesystem makes every staged file durable before any becomes visible.
    std::set<fs::path> dirs;
    for (const auto& s : staged_) dirs.insert(directory_of(s.target));
    for (const auto& dir : dirs) {
        Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (fd.get() < 0 || ::syncfs(fd.get()) != 0) fail_errno(dir, "cannot sync", errno);
    }
    synced_ = true;
}

void AtomicBatch::commit(Overwrite overwrite) {
    if (staged_.empty()) return;
    if (!synced_) sync();
    std::set<fs::path> dirs;
    for (const auto& s : staged_) dirs.insert(directory_of(s.target));
    std::vector<Staged> pending = std::move(staged_);
    staged_.clear();
    synced_ = false;
    size_t done = 0;
    try {
        for (; done < pending.size(); ++done) {
            rename_into_place(pending[done].temp, pending[done].target, overwrite);
        }
    } catch (...) {
        for (size_t i = done + 1; i < pending.size(); ++i) ::unlink(pending[i].temp.c_str());
        // Refuse mode created every target it placed, so removing them restores the state
        // before the batch (a clash raced in by another process). Allow mode has nothing to undo
        // that the renames did not already replace.
        if (overwrite == Overwrite::Refuse)
            for (size_t i = 0; i < done; ++i) ::unlink(pending[i].target.c_str());
        throw;
    }
    for (const auto& dir : dirs) sync_directory(dir);
}

void ensure_private_directory(const fs::path& state_dir, const fs::path& dir) {
    auto relative = dir.lexically_relative(state_dir);
    if (relative.empty() || *relative.begin() == "..")
        fail(ErrorKind::Usage, dir.string(),
             "not inside the state directory " + state_dir.string());
    fs::path path = state_dir;
    auto check = [](const fs::path& p) {
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0)
            fail(ErrorKind::Io, p.string(), std::string("cannot stat: ") + std::strerror(errno));
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        if (!S_ISDIR(st.st_mode)) fail(ErrorKind::Io, p.string(), "not a directory");
        if (st.st_uid != ::geteuid() && st.st_uid != 0)
            fail(ErrorKind::Io, p.string(),
                 "owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " +
                     std::to_string(::geteuid()) +
                     ") or root: another user could replace keys "
                     "and certificates in it");
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
            fail(ErrorKind::Io, p.string(),
                 std::string("mode ") + mode +
                     " lets group or others write into it, and so replace keys and certificates "
                     "in it (chmod go-w it)");
    };
    ensure_directory(path, 0700);
    check(path);
    for (const auto& part : relative) {
        if (part == ".") continue;
        path /= part;
        if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
            fail(ErrorKind::Io, path.string(),
                 std::string("cannot create directory: ") + std::strerror(errno));
        check(path);
    }
}

}  // namespace brokertls
