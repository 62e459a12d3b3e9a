#pragma once
// Crash-safe file writes: data goes to a temporary file in the same directory, is fsynced, then
// renamed over the target and the directory fsynced. A reader sees the old file or the new one,
// never half of either. Private keys are created with mode 0600 from the first byte.

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace brokertls {

inline constexpr mode_t kPrivateMode = 0600;
inline constexpr mode_t kPublicMode = 0644;

enum class Overwrite { Refuse, Allow };

// Reads a whole file; throws Error(Input) "PATH: cannot read: REASON".
std::string read_file(const std::filesystem::path& path);

void write_file_atomic(const std::filesystem::path& path, std::string_view data,
                       mode_t mode = kPublicMode, Overwrite overwrite = Overwrite::Allow);

// For data a crash may lose but nobody may see half-written (a cache): a temporary file renamed
// over the target, without the fsyncs. A reader sees the old file, the new one, or after a
// crash possibly an empty one, which a cache treats as absent.
void write_file_unsynced(const std::filesystem::path& path, std::string_view data,
                         mode_t mode = kPublicMode);

// Several files written as one step: stage() writes each to a temporary file, commit() makes
// them all durable with one filesystem sync, then renames each into place and syncs the
// directories. This is what lets `brokertls-ca issue --count 1000` stay fast without giving up
// crash safety. Destroying an uncommitted batch removes its temporary files.
class AtomicBatch {
  public:
    AtomicBatch() = default;
    AtomicBatch(const AtomicBatch&) = delete;
    AtomicBatch& operator=(const AtomicBatch&) = delete;
    ~AtomicBatch();

    void stage(const std::filesystem::path& path, std::string_view data, mode_t mode = kPublicMode);
    // Makes every staged file durable (one syncfs per filesystem) without making any visible:
    // a caller can record what the batch holds (an index entry) between sync() and commit().
    void sync();
    // Renames every staged file into place (after sync() unless that was done). On a failure
    // the targets placed so far are removed again when `overwrite` is Refuse.
    void commit(Overwrite overwrite = Overwrite::Allow);
    size_t size() const { return staged_.size(); }

  private:
    struct Staged {
        std::filesystem::path target;
        std::filesystem::path temp;
    };
    std::vector<Staged> staged_;
    bool synced_ = false;
};

// Temporary files are named ".TARGET.tmp-PID-RANDOM" beside their target. A process killed
// between staging and renaming leaves them behind; this removes those of `dir` whose writer is
// gone (PID not running) or that are older than an hour, and returns how many it removed.
// Only files of that exact shape are touched.
size_t remove_stale_temp_files(const std::filesystem::path& dir);

// For a temporary file name of the shape above, the file name of its target; else nullopt.
std::optional<std::string> temp_file_target(std::string_view file_name);

// fsync of a directory, so a rename or create inside it survives a crash.
void sync_directory(const std::filesystem::path& dir);

// Creates the directory (and parents) if missing, with `mode` for the ones it creates.
void ensure_directory(const std::filesystem::path& dir, mode_t mode = 0755);

// Creates `dir` (state_dir itself or a directory under it) and the missing directories between
// them with mode 0700, and checks state_dir and every directory below it down to `dir`: each
// must be owned by this user (or root) and not writable by group or others unless sticky.
// Account keys and staged certificates are written there, and whoever may write a directory
// may swap what is in it. Throws Error(Io) "PATH: mode 0777 ..." naming the path and the
// reason.
void ensure_private_directory(const std::filesystem::path& state_dir,
                              const std::filesystem::path& dir);

}  // namespace brokertls
