// The CA's append-only index (index.jsonl) and the directory lock.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "brokertls/ca/index.hpp"
#include "brokertls/ca/lock.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

using test::error_of;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TimePoint whole_seconds_now() {
    return std::chrono::floor<seconds>(SystemClock::now());
}

IndexEntry make_entry(const std::string& serial, const std::string& name, TimePoint not_after) {
    IndexEntry e;
    e.serial = serial;
    e.name = name;
    e.subject = "CN=" + name;
    e.subject_alt_names = {"DNS:" + name + ".local", "IP:10.0.0.1"};
    e.profile = "server";
    e.key_type = "ecdsa-p256";
    e.not_before = not_after - Days(397);
    e.not_after = not_after;
    e.fingerprint = std::string(64, 'a');
    return e;
}

void append_raw(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << bytes;
    ASSERT_TRUE(out.good());
}

std::vector<std::string> lines_of(const fs::path& path) {
    std::vector<std::string> lines;
    std::istringstream in(read_file(path));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

class IndexTest : public ::testing::Test {
  protected:
    IndexTest() : index_(dir_ / "index.jsonl"), now_(whole_seconds_now()) {}

    test::TempDir dir_;
    CertificateIndex index_;
    TimePoint now_;
};

TEST_F(IndexTest, MissingFileReadsEmpty) {
    EXPECT_FALSE(fs::exists(index_.path()));
    EXPECT_TRUE(index_.read().empty());
    EXPECT_FALSE(fs::exists(index_.path()));  // reading does not create it
}

TEST_F(IndexTest, IssuedEntriesRoundTrip) {
    IndexEntry a = make_entry("0A1B", "broker", now_ + Days(30));
    IndexEntry b = make_entry("7F00FF", "dev-1", now_ + Days(60));
    b.profile = "client";
    b.key_type = "ed25519";
    b.subject_alt_names.clear();
    b.fingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    index_.append_issued({a, b});

    std::vector<IndexEntry> entries = index_.read();
    ASSERT_EQ(entries.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        const IndexEntry& want = i == 0 ? a : b;
        const IndexEntry& got = entries[i];
        EXPECT_EQ(got.serial, want.serial);
        EXPECT_EQ(got.name, want.name);
        EXPECT_EQ(got.subject, want.subject);
        EXPECT_EQ(got.subject_alt_names, want.subject_alt_names);
        EXPECT_EQ(got.profile, want.profile);
        EXPECT_EQ(got.key_type, want.key_type);
        EXPECT_EQ(got.not_before, want.not_before);
        EXPECT_EQ(got.not_after, want.not_after);
        EXPECT_EQ(got.fingerprint, want.fingerprint);
        EXPECT_FALSE(got.revoked_at.has_value());
        EXPECT_EQ(got.reason, RevocationReason::Unspecified);
        EXPECT_EQ(got.status(now_), IndexEntry::Status::Valid);
    }
    EXPECT_EQ(lines_of(index_.path()).size(), 2u);
}

TEST_F(IndexTest, AppendsKeepIssueOrder) {
    for (int i = 0; i < 5; ++i)
        index_.append_issued(
            {make_entry("0" + std::to_string(i), "n" + std::to_string(i), now_ + Days(1))});
    std::vector<IndexEntry> entries = index_.read();
    ASSERT_EQ(entries.size(), 5u);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(entries[i].serial, "0" + std::to_string(i));
}

TEST_F(IndexTest, RevocationIsApplied) {
    index_.append_issued(
        {make_entry("0A", "a", now_ + Days(30)), make_entry("0B", "b", now_ + Days(30))});
    TimePoint at = now_ - seconds(5);
    index_.append_revocation("0B", at, RevocationReason::KeyCompromise);

    std::vector<IndexEntry> entries = index_.read();
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_FALSE(entries[0].revoked_at.has_value());
    EXPECT_EQ(entries[0].status(now_), IndexEntry::Status::Valid);
    ASSERT_TRUE(entries[1].revoked_at.has_value());
    EXPECT_EQ(*entries[1].revoked_at, at);
    EXPECT_EQ(entries[1].reason, RevocationReason::KeyCompromise);
    EXPECT_EQ(entries[1].status(now_), IndexEntry::Status::Revoked);

    // The revocation is one more line; the issued line is never rewritten.
    std::vector<std::string> lines = lines_of(index_.path());
    ASSERT_EQ(lines.size(), 3u);
    nlohmann::json last = nlohmann::json::parse(lines[2]);
    EXPECT_EQ(last.at("revoke"), "0B");
    EXPECT_EQ(last.at("reason"), "keyCompromise");
    EXPECT_EQ(last.at("at"), to_iso8601(at));
}

TEST_F(IndexTest, ExpiredStatus) {
    index_.append_issued(
        {make_entry("01", "old", now_ - Days(1)), make_entry("02", "old-revoked", now_ - Days(1))});
    index_.append_revocation("02", now_ - Days(2), RevocationReason::Superseded);
    std::vector<IndexEntry> entries = index_.read();
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].status(now_), IndexEntry::Status::Expired);
    EXPECT_EQ(entries[0].status(now_ - Days(2)), IndexEntry::Status::Valid);
    EXPECT_EQ(entries[1].status(now_), IndexEntry::Status::Revoked);  // revoked wins
    EXPECT_EQ(entries[1].reason, RevocationReason::Superseded);
}

TEST(IndexStatusTest, NamesRoundTrip) {
    for (auto s :
         {IndexEntry::Status::Valid, IndexEntry::Status::Revoked, IndexEntry::Status::Expired})
        EXPECT_EQ(parse_status(status_name(s)), s);
    EXPECT_EQ(status_name(IndexEntry::Status::Valid), "valid");
    EXPECT_EQ(status_name(IndexEntry::Status::Revoked), "revoked");
    EXPECT_EQ(status_name(IndexEntry::Status::Expired), "expired");
    EXPECT_EQ(parse_status("Valid"), std::nullopt);
    EXPECT_EQ(parse_status("unknown"), std::nullopt);
    EXPECT_EQ(parse_status(""), std::nullopt);
}

TEST_F(IndexTest, TornLastLineIsIgnoredThenCut) {
    index_.append_issued(
        {make_entry("0A", "a", now_ + Days(30)), make_entry("0B", "b", now_ + Days(30))});
    append_raw(index_.path(), R"({"serial":"0C","name":"c","subj)");  // a crash mid-append

    std::vector<IndexEntry> entries = index_.read();
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[1].serial, "0B");

    index_.append_issued({make_entry("0D", "d", now_ + Days(30))});
    std::vector<std::string> lines = lines_of(index_.path());
    ASSERT_EQ(lines.size(), 3u);
    for (const auto& line : lines)
        EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded()) << line;
    EXPECT_FALSE(contains(read_file(index_.path()), "subj\""));
    EXPECT_FALSE(contains(read_file(index_.path()), "\"0C\""));
    std::string content = read_file(index_.path());
    EXPECT_EQ(content.back(), '\n');

    entries = index_.read();
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[2].serial, "0D");
}

TEST_F(IndexTest, TornRevocationIsIgnoredThenCut) {
    index_.append_issued({make_entry("0A", "a", now_ + Days(30))});
    append_raw(index_.path(), R"({"revoke":"0A","at":"20)");
    std::vector<IndexEntry> entries = index_.read();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_FALSE(entries[0].revoked_at.has_value());

    index_.append_revocation("0A", now_, RevocationReason::CessationOfOperation);
    entries = index_.read();
    ASSERT_EQ(entries.size(), 1u);
    ASSERT_TRUE(entries[0].revoked_at.has_value());
    EXPECT_EQ(*entries[0].revoked_at, now_);
    EXPECT_EQ(lines_of(index_.path()).size(), 2u);
}

TEST_F(IndexTest, UnterminatedLineThatParsesIsStillTorn) {
    // The whole entry but not its newline reached the disk. read() must agree with what the
    // next append keeps: that append cuts the line, so read() must not report it either.
    index_.append_issued({make_entry("0A", "a", now_ + Days(30))});
    std::string full = read_file(index_.path());
    full.pop_back();  // drop '\n': a complete line, unterminated
    append_raw(index_.path(), full.replace(full.find("\"0A\""), 4, "\"0B\""));

    std::vector<IndexEntry> before = index_.read();
    index_.append_issued({make_entry("0C", "c", now_ + Days(30))});
    std::vector<IndexEntry> after = index_.read();
    ASSERT_EQ(before.size(), 1u);
    EXPECT_EQ(before[0].serial, "0A");
    ASSERT_EQ(after.size(), 2u);
    EXPECT_EQ(after[0].serial, "0A");
    EXPECT_EQ(after[1].serial, "0C");
}

TEST_F(IndexTest, WholeFileTorn) {
    append_raw(index_.path(), R"({"serial":"0A")");
    EXPECT_TRUE(index_.read().empty());
    index_.append_issued({make_entry("0B", "b", now_ + Days(30))});
    std::vector<IndexEntry> entries = index_.read();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].serial, "0B");
    EXPECT_EQ(lines_of(index_.path()).size(), 1u);
}

TEST_F(IndexTest, CorruptMiddleLineNamesFileAndLine) {
    index_.append_issued({make_entry("0A", "a", now_ + Days(30))});
    append_raw(index_.path(), "this is not json\n");
    index_.append_issued({make_entry("0B", "b", now_ + Days(30))});
    std::string msg = error_of([&] { index_.read(); }, ErrorKind::Input);
    EXPECT_TRUE(contains(msg, "index.jsonl:2")) << msg;
    EXPECT_TRUE(contains(msg, index_.path().string() + ":2: ")) << msg;
    EXPECT_TRUE(contains(msg, "corrupt entry")) << msg;
}

TEST_F(IndexTest, CorruptLineNumberCountsBlankLines) {
    index_.append_issued({make_entry("0A", "a", now_ + Days(30))});
    append_raw(index_.path(), "\n{\"serial\":\"0B\"}\n");  // line 3 lacks required fields
    index_.append_issued({make_entry("0C", "c", now_ + Days(30))});
    std::string msg = error_of([&] { index_.read(); }, ErrorKind::Input);
    EXPECT_TRUE(contains(msg, "index.jsonl:3")) << msg;
}

TEST_F(IndexTest, BadDateIsCorrupt) {
    nlohmann::json j = {{"serial", "0A"},
                        {"name", "a"},
                        {"subject", "CN=a"},
                        {"sans", nlohmann::json::array()},
                        {"profile", "client"},
                        {"not_before", "yesterday"},
                        {"not_after", "2030-01-01T00:00:00Z"},
                        {"fingerprint", "ab"}};
    append_raw(index_.path(), j.dump() + "\n");
    std::string msg = error_of([&] { index_.read(); }, ErrorKind::Input);
    EXPECT_TRUE(contains(msg, "index.jsonl:1")) << msg;
}

TEST_F(IndexTest, RevocationOfUnknownSerialIsCorrupt) {
    index_.append_issued({make_entry("0A", "a", now_ + Days(30))});
    index_.append_revocation("0FFF", now_, RevocationReason::KeyCompromise);
    std::string msg = error_of([&] { index_.read(); }, ErrorKind::Input);
    EXPECT_TRUE(contains(msg, "index.jsonl:2")) << msg;
    EXPECT_TRUE(contains(msg, "unknown serial")) << msg;
}

TEST_F(IndexTest, UnreadablePathIsAnError) {
    // A directory where the index should be: not "missing", so not silently empty.
    fs::create_directory(index_.path());
    std::string msg = error_of([&] { index_.read(); }, ErrorKind::Input);
    EXPECT_TRUE(contains(msg, index_.path().string() + ": cannot read")) << msg;
    msg = error_of([&] { index_.append_issued({make_entry("0A", "a", now_)}); }, ErrorKind::Io);
    EXPECT_TRUE(contains(msg, index_.path().string() + ": ")) << msg;
}

TEST_F(IndexTest, PrepareAppendCutsATornTailAndTruncateUndoesAppends) {
    index_.append_issued({make_entry("0A", "a", now_ + Days(30))});
    std::string first_line = read_file(index_.path());
    append_raw(index_.path(), "{\"serial\":\"0B\",");  // torn
    std::uintmax_t size = index_.prepare_append();
    EXPECT_EQ(size, first_line.size());
    EXPECT_EQ(read_file(index_.path()), first_line);
    index_.append_issued({make_entry("0C", "c", now_ + Days(30))});
    index_.append_revocation("0A", now_, RevocationReason::Superseded);
    ASSERT_EQ(index_.read().size(), 2u);
    index_.truncate(size);
    EXPECT_EQ(read_file(index_.path()), first_line);
    ASSERT_EQ(index_.read().size(), 1u);
    EXPECT_FALSE(index_.read()[0].revoked_at.has_value());
}

TEST_F(IndexTest, PrepareAppendRefusesAnIndexThatCannotBeWritten) {
    fs::create_directory(index_.path());
    std::string msg = error_of([&] { index_.prepare_append(); }, ErrorKind::Io);
    EXPECT_TRUE(contains(msg, index_.path().string() + ": cannot open")) << msg;
}

TEST_F(IndexTest, CorruptFieldIsNamed) {
    nlohmann::json j = {{"serial", "0a"},
                        {"name", "a"},
                        {"subject", "CN=a"},
                        {"sans", nlohmann::json::array()},
                        {"profile", "client"},
                        {"not_before", "2020-01-01T00:00:00Z"},
                        {"not_after", "2030-01-01T00:00:00Z"},
                        {"fingerprint", std::string(64, 'a')}};
    append_raw(index_.path(), j.dump() + "\n");
    std::string msg = error_of([&] { index_.read(); }, ErrorKind::Input);
    EXPECT_TRUE(contains(msg, ":1: corrupt entry: field 'serial': not uppercase hex: '0a'")) << msg;
}

// ---- DirectoryLock ----

class LockTest : public ::testing::Test {
  protected:
    fs::path lock_file() const { return dir_ / "lock"; }
    test::TempDir dir_;
};

using Mode = DirectoryLock::Mode;
constexpr std::chrono::milliseconds kShort{200};

TEST_F(LockTest, ExclusiveExcludesExclusive) {
    DirectoryLock first(lock_file(), Mode::Exclusive, kShort);
    auto start = std::chrono::steady_clock::now();
    std::string msg = error_of([&] { DirectoryLock second(lock_file(), Mode::Exclusive, kShort); },
                               ErrorKind::State);
    auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(contains(msg, lock_file().string() + ": ")) << msg;
    EXPECT_TRUE(contains(msg, "lock")) << msg;
    EXPECT_GE(waited, kShort);  // it waited for the lock before giving up
}

TEST_F(LockTest, ExclusiveExcludesShared) {
    DirectoryLock first(lock_file(), Mode::Exclusive, kShort);
    error_of([&] { DirectoryLock second(lock_file(), Mode::Shared, kShort); }, ErrorKind::State);
}

TEST_F(LockTest, SharedExcludesExclusive) {
    DirectoryLock first(lock_file(), Mode::Shared, kShort);
    error_of([&] { DirectoryLock second(lock_file(), Mode::Exclusive, kShort); }, ErrorKind::State);
}

TEST_F(LockTest, SharedLocksCoexist) {
    DirectoryLock first(lock_file(), Mode::Shared, kShort);
    DirectoryLock second(lock_file(), Mode::Shared, kShort);
    DirectoryLock third(lock_file(), Mode::Shared, std::chrono::milliseconds(0));
}

TEST_F(LockTest, ReleasedOnDestruction) {
    {
        DirectoryLock first(lock_file(), Mode::Exclusive, kShort);
        error_of([&] { DirectoryLock second(lock_file(), Mode::Exclusive, kShort); },
                 ErrorKind::State);
    }
    EXPECT_NO_THROW(DirectoryLock(lock_file(), Mode::Exclusive, std::chrono::milliseconds(0)));
    { DirectoryLock shared(lock_file(), Mode::Shared, kShort); }
    EXPECT_NO_THROW(DirectoryLock(lock_file(), Mode::Exclusive, std::chrono::milliseconds(0)));
}

TEST_F(LockTest, WaiterGetsTheLockWhenReleased) {
    auto holder = std::make_unique<DirectoryLock>(lock_file(), Mode::Exclusive, kShort);
    std::promise<void> started;
    std::future<void> started_future = started.get_future();
    std::future<bool> acquired = std::async(std::launch::async, [&] {
        started.set_value();
        DirectoryLock waiter(lock_file(), Mode::Exclusive, seconds(30));
        return true;
    });
    started_future.wait();
    holder.reset();  // release; the waiter takes the lock whether it already polled or not
    EXPECT_TRUE(acquired.get());
}

TEST_F(LockTest, CreatesThePrivateLockFile) {
    DirectoryLock lock(lock_file(), Mode::Exclusive, kShort);
    struct stat st {};
    ASSERT_EQ(::stat(lock_file().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0077, 0u);
}

TEST_F(LockTest, MissingDirectoryNamesThePath) {
    fs::path missing = dir_ / "no-such-dir" / "lock";
    std::string msg =
        error_of([&] { DirectoryLock lock(missing, Mode::Exclusive, kShort); }, ErrorKind::Io);
    EXPECT_TRUE(contains(msg, missing.string() + ": ")) << msg;
}

}  // namespace
}  // namespace brokertls
