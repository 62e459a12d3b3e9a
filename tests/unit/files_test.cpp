// Crash-safe file writes: exact modes, replace/refuse, no temporary files left, batches.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;

using test::error_of;

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.rfind(prefix, 0) == 0;
}

// Every entry under `dir`, relative to it ("a", "sub", "sub/b").
std::set<std::string> listing(const fs::path& dir) {
    std::set<std::string> out;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        out.insert(fs::relative(entry.path(), dir).string());
    return out;
}

mode_t mode_of(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

// Sets the process umask for the scope of one test.
class UmaskGuard {
  public:
    explicit UmaskGuard(mode_t mask) : old_(::umask(mask)) {}
    UmaskGuard(const UmaskGuard&) = delete;
    UmaskGuard& operator=(const UmaskGuard&) = delete;
    ~UmaskGuard() { ::umask(old_); }

  private:
    mode_t old_;
};

TEST(FilesWriteTest, ExactModeWhateverTheUmask) {
    test::TempDir tmp;  // made before the umask changes, so it stays writable for non-root
    for (mode_t mask : {mode_t{077}, mode_t{022}, mode_t{0}, mode_t{0277}}) {
        fs::path dir = tmp / std::to_string(mask);
        fs::create_directory(dir);
        UmaskGuard guard(mask);
        write_file_atomic(dir / "private.key", "secret", kPrivateMode);
        write_file_atomic(dir / "public.pem", "public", kPublicMode);
        write_file_atomic(dir / "default.pem", "public");
        EXPECT_EQ(mode_of(dir / "private.key"), 0600u) << "umask " << std::oct << mask;
        EXPECT_EQ(mode_of(dir / "public.pem"), 0644u) << "umask " << std::oct << mask;
        EXPECT_EQ(mode_of(dir / "default.pem"), 0644u) << "umask " << std::oct << mask;
        EXPECT_EQ(read_file(dir / "private.key"), "secret");
    }
}

TEST(FilesWriteTest, ReplacesContentAndMode) {
    test::TempDir dir;
    auto path = dir / "crl.pem";
    write_file_atomic(path, "first version, longer than the second", kPublicMode);
    write_file_atomic(path, "second", kPrivateMode);
    EXPECT_EQ(read_file(path), "second");
    EXPECT_EQ(mode_of(path), 0600u);
    EXPECT_EQ(listing(dir.path()), std::set<std::string>{"crl.pem"});
}

TEST(FilesWriteTest, BinaryAndEmptyData) {
    test::TempDir dir;
    std::string binary("\0\x01\xff\n\r\0tail", 9);
    write_file_atomic(dir / "blob", binary);
    EXPECT_EQ(read_file(dir / "blob"), binary);
    write_file_atomic(dir / "empty", "");
    EXPECT_EQ(read_file(dir / "empty"), "");
    EXPECT_EQ(fs::file_size(dir / "empty"), 0u);
}

TEST(FilesWriteTest, RefuseCreatesANewFile) {
    test::TempDir dir;
    write_file_atomic(dir / "ca.key", "key", kPrivateMode, Overwrite::Refuse);
    EXPECT_EQ(read_file(dir / "ca.key"), "key");
    EXPECT_EQ(mode_of(dir / "ca.key"), 0600u);
    EXPECT_EQ(listing(dir.path()), std::set<std::string>{"ca.key"});
}

TEST(FilesWriteTest, RefuseKeepsAnExistingFile) {
    test::TempDir dir;
    auto path = dir / "ca.key";
    write_file_atomic(path, "original", kPrivateMode);
    std::string msg =
        error_of([&] { write_file_atomic(path, "replacement", kPrivateMode, Overwrite::Refuse); },
                 ErrorKind::State);
    EXPECT_TRUE(starts_with(msg, path.string() + ": ")) << msg;
    EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
    EXPECT_EQ(read_file(path), "original");
    EXPECT_EQ(listing(dir.path()), std::set<std::string>{"ca.key"});
}

TEST(FilesWriteTest, NoTemporaryFilesLeftBehind) {
    test::TempDir dir;
    for (int i = 0; i < 20; ++i)
        write_file_atomic(dir / ("f" + std::to_string(i % 4)), std::to_string(i));
    EXPECT_EQ(listing(dir.path()), (std::set<std::string>{"f0", "f1", "f2", "f3"}));
    EXPECT_EQ(read_file(dir / "f3"), "19");
}

TEST(FilesWriteTest, MissingDirectoryNamesThePath) {
    test::TempDir dir;
    auto path = dir / "no-such-dir" / "cert.pem";
    std::string msg = error_of([&] { write_file_atomic(path, "x"); }, ErrorKind::Io);
    EXPECT_TRUE(starts_with(msg, path.string() + ": ")) << msg;
    EXPECT_TRUE(listing(dir.path()).empty());
}

TEST(FilesWriteTest, ReplacingADirectoryFailsCleanly) {
    test::TempDir dir;
    fs::create_directory(dir / "certs");
    fs::path target = dir / "certs";
    std::string msg = error_of([&] { write_file_atomic(target, "x"); }, ErrorKind::Io);
    EXPECT_TRUE(starts_with(msg, target.string() + ": ")) << msg;
    EXPECT_EQ(listing(dir.path()), std::set<std::string>{"certs"});
    EXPECT_TRUE(fs::is_directory(target));
}

TEST(FilesReadTest, MissingFileNamesThePath) {
    test::TempDir dir;
    auto path = dir / "missing.pem";
    std::string msg = error_of([&] { read_file(path); }, ErrorKind::Input);
    EXPECT_TRUE(starts_with(msg, path.string() + ": cannot read")) << msg;
}

TEST(FilesReadTest, DirectoryIsNotAnEmptyFile) {
    test::TempDir dir;
    std::string msg = error_of([&] { read_file(dir.path()); }, ErrorKind::Input);
    EXPECT_TRUE(starts_with(msg, dir.path().string() + ": cannot read")) << msg;
}

TEST(FilesReadTest, ErrorsSayWhy) {
    test::TempDir dir;
    EXPECT_EQ(error_of([&] { read_file(dir / "missing.pem"); }, ErrorKind::Input),
              (dir / "missing.pem").string() + ": cannot read: No such file or directory");
    EXPECT_EQ(error_of([&] { read_file(dir.path()); }, ErrorKind::Input),
              dir.path().string() + ": cannot read: Is a directory");
}

TEST(FilesReadTest, ReadsLargeFilesWhole) {
    test::TempDir dir;
    std::string data;
    for (int i = 0; data.size() < (3u << 20) + 7; ++i) data += std::to_string(i) + '\0';
    write_file_atomic(dir / "large", data);
    EXPECT_EQ(read_file(dir / "large"), data);
}

TEST(FilesReadTest, ReadsPastTheSizeFstatGives) {
    // /proc files report size 0; what is there is read to EOF all the same.
    struct stat st {};
    ASSERT_EQ(::stat("/proc/self/status", &st), 0);
    ASSERT_EQ(st.st_size, 0);
    std::string status = read_file("/proc/self/status");
    EXPECT_TRUE(starts_with(status, "Name:")) << status;
    EXPECT_NE(status.find("\nVmRSS:"), std::string::npos) << status;
    EXPECT_EQ(status.back(), '\n');
}

TEST(FilesBatchTest, CommitWritesEveryFile) {
    test::TempDir dir;
    fs::create_directory(dir / "certs");
    {
        AtomicBatch batch;
        batch.stage(dir / "dev.key", "key", kPrivateMode);
        batch.stage(dir / "dev.pem", "cert");
        batch.stage(dir / "certs" / "0A.pem", "cert");
        EXPECT_EQ(batch.size(), 3u);
        // Nothing is visible before the commit.
        EXPECT_FALSE(fs::exists(dir / "dev.key"));
        EXPECT_FALSE(fs::exists(dir / "dev.pem"));
        EXPECT_FALSE(fs::exists(dir / "certs" / "0A.pem"));
        batch.commit();
        EXPECT_EQ(batch.size(), 0u);
    }
    EXPECT_EQ(listing(dir.path()),
              (std::set<std::string>{"certs", "certs/0A.pem", "dev.key", "dev.pem"}));
    EXPECT_EQ(read_file(dir / "dev.key"), "key");
    EXPECT_EQ(read_file(dir / "dev.pem"), "cert");
    EXPECT_EQ(read_file(dir / "certs" / "0A.pem"), "cert");
    EXPECT_EQ(mode_of(dir / "dev.key"), 0600u);
    EXPECT_EQ(mode_of(dir / "dev.pem"), 0644u);
}

TEST(FilesBatchTest, CommitModeIgnoresUmask) {
    test::TempDir dir;
    UmaskGuard guard(077);
    AtomicBatch batch;
    batch.stage(dir / "a.pem", "a", kPublicMode);
    batch.stage(dir / "a.key", "k", kPrivateMode);
    batch.commit();
    EXPECT_EQ(mode_of(dir / "a.pem"), 0644u);
    EXPECT_EQ(mode_of(dir / "a.key"), 0600u);
}

TEST(FilesBatchTest, CommitReplacesExistingFiles) {
    test::TempDir dir;
    write_file_atomic(dir / "chain.pem", "old");
    AtomicBatch batch;
    batch.stage(dir / "chain.pem", "new");
    batch.commit(Overwrite::Allow);
    EXPECT_EQ(read_file(dir / "chain.pem"), "new");
    EXPECT_EQ(listing(dir.path()), std::set<std::string>{"chain.pem"});
}

TEST(FilesBatchTest, UncommittedBatchLeavesNothing) {
    test::TempDir dir;
    fs::create_directory(dir / "certs");
    {
        AtomicBatch batch;
        batch.stage(dir / "dev.key", "key", kPrivateMode);
        batch.stage(dir / "dev.pem", "cert");
        batch.stage(dir / "certs" / "0A.pem", "cert");
        // The temporary files exist while the batch lives...
        EXPECT_EQ(listing(dir.path()).size(), 4u);
    }
    // ...and are gone with it; no target was created.
    EXPECT_EQ(listing(dir.path()), std::set<std::string>{"certs"});
}

TEST(FilesBatchTest, FailedStageLeavesNothing) {
    test::TempDir dir;
    {
        AtomicBatch batch;
        batch.stage(dir / "ok.pem", "ok");
        auto bad = dir / "missing" / "x.pem";
        std::string msg = error_of([&] { batch.stage(bad, "x"); }, ErrorKind::Io);
        EXPECT_TRUE(starts_with(msg, bad.string() + ": ")) << msg;
        EXPECT_EQ(batch.size(), 1u);
    }
    EXPECT_TRUE(listing(dir.path()).empty());
}

TEST(FilesBatchTest, RefuseKeepsExistingFileAndLeavesNoTemporaries) {
    test::TempDir dir;
    write_file_atomic(dir / "b.pem", "original");
    {
        AtomicBatch batch;
        batch.stage(dir / "a.pem", "a");
        batch.stage(dir / "b.pem", "b");
        batch.stage(dir / "c.pem", "c");
        std::string msg = error_of([&] { batch.commit(Overwrite::Refuse); }, ErrorKind::State);
        EXPECT_TRUE(starts_with(msg, (dir / "b.pem").string() + ": ")) << msg;
    }
    EXPECT_EQ(read_file(dir / "b.pem"), "original");
    for (const auto& name : listing(dir.path()))
        EXPECT_EQ(name.find(".tmp"), std::string::npos) << "left behind: " << name;
    EXPECT_FALSE(fs::exists(dir / "c.pem"));  // not placed after the failure
}

TEST(FilesBatchTest, EmptyCommitIsANoOp) {
    test::TempDir dir;
    AtomicBatch batch;
    EXPECT_NO_THROW(batch.commit());
    EXPECT_TRUE(listing(dir.path()).empty());
}

TEST(FilesBatchTest, SyncThenCommitPlacesEverything) {
    test::TempDir dir;
    AtomicBatch batch;
    batch.stage(dir / "a.pem", "a");
    batch.sync();
    EXPECT_FALSE(fs::exists(dir / "a.pem"));  // durable, not yet visible
    batch.commit(Overwrite::Refuse);
    EXPECT_EQ(read_file(dir / "a.pem"), "a");
    EXPECT_EQ(listing(dir.path()), std::set<std::string>{"a.pem"});
}

// ---- temporary files left by a killed writer

// A PID no process has: a child that has exited and been reaped.
pid_t dead_pid() {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    return pid;
}

TEST(FilesTempTest, TemporaryFilesCarryTheWritersPid) {
    test::TempDir dir;
    AtomicBatch batch;
    batch.stage(dir / "dev-1.key", "k", kPrivateMode);
    std::set<std::string> names = listing(dir.path());
    ASSERT_EQ(names.size(), 1u);
    std::string name = *names.begin();
    EXPECT_TRUE(starts_with(name, ".dev-1.key.tmp-" + std::to_string(::getpid()) + "-")) << name;
    EXPECT_EQ(temp_file_target(name), "dev-1.key");
    // Staged files of a live writer (this process) are not stale.
    EXPECT_EQ(remove_stale_temp_files(dir.path()), 0u);
    EXPECT_EQ(listing(dir.path()).size(), 1u);
}

TEST(FilesTempTest, OnlyOurStaleTemporaryFilesAreRemoved) {
    test::TempDir dir;
    std::string dead = std::to_string(dead_pid());
    auto touch = [&](const std::string& name) { write_file_atomic(dir / name, "x"); };
    touch(".0A.pem.tmp-" + dead + "-1f2e");           // dead writer: removed
    touch(".dev-1.key.tmp-" + dead + "-abcdef0123");  // dead writer: removed
    touch(".live.pem.tmp-1-abc");                     // PID 1 runs: kept
    touch(".old.pem.tmp-1-abc");                      // PID 1, but two hours old: removed
    fs::last_write_time(dir / ".old.pem.tmp-1-abc",
                        fs::file_time_type::clock::now() - std::chrono::hours(2));
    for (const std::string& other : std::vector<std::string>{
             "crl.pem", "notours.tmp-" + dead + "-ab", ".x.tmp-" + dead + "-xyz", ".x.tmp-" + dead,
             ".x.tmp-abc-12", ".tmp-" + dead + "-ab"})
        touch(other);  // not of our shape: kept
    std::set<std::string> before = listing(dir.path());
    EXPECT_EQ(remove_stale_temp_files(dir.path()), 3u);
    std::set<std::string> after = listing(dir.path());
    EXPECT_EQ(before.size() - after.size(), 3u);
    EXPECT_TRUE(after.count(".live.pem.tmp-1-abc"));
    EXPECT_TRUE(after.count("crl.pem"));
    EXPECT_FALSE(after.count(".0A.pem.tmp-" + dead + "-1f2e"));
    EXPECT_FALSE(after.count(".old.pem.tmp-1-abc"));
    EXPECT_EQ(remove_stale_temp_files(dir / "missing"), 0u);  // no directory, nothing to do
}

TEST(FilesTempTest, TargetOfATemporaryName) {
    EXPECT_EQ(temp_file_target(".dev-1.chain.pem.tmp-42-0f"), "dev-1.chain.pem");
    EXPECT_EQ(temp_file_target("dev-1.key"), std::nullopt);
    EXPECT_EQ(temp_file_target(".dev-1.key.tmp-42"), std::nullopt);
    EXPECT_EQ(temp_file_target(".tmp-42-0f"), std::nullopt);
}

TEST(FilesDirectoryTest, EnsureDirectoryCreatesParentsWithMode) {
    test::TempDir dir;
    UmaskGuard guard(0);
    auto nested = dir / "ca" / "certs" / "by-serial";
    ensure_directory(nested, 0700);
    EXPECT_TRUE(fs::is_directory(nested));
    EXPECT_EQ(mode_of(dir / "ca"), 0700u);
    EXPECT_EQ(mode_of(nested), 0700u);
    EXPECT_NO_THROW(ensure_directory(nested, 0700));  // already there
}

TEST(FilesDirectoryTest, SyncMissingDirectoryNamesIt) {
    test::TempDir dir;
    auto missing = dir / "gone";
    std::string msg = error_of([&] { sync_directory(missing); }, ErrorKind::Io);
    EXPECT_TRUE(starts_with(msg, missing.string() + ": ")) << msg;
    EXPECT_NO_THROW(sync_directory(dir.path()));
}

}  // namespace
}  // namespace brokertls
