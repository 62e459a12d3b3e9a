#pragma once
// What a profile's renewal job remembers across broker restarts (mod_md's job.json): when to
// run next, how many attempts failed in a row and why, and the recent activity. Kept at
// STATE_DIR/PROFILE/job.json, written atomically; a damaged file is reported and replaced by a
// fresh state rather than stopping renewals.
//
// The file is JSON an operator can read: times are ISO 8601 UTC strings (whole seconds; null
// for "never"/"as soon as possible"), `activity` a list of events, oldest first. It holds no
// secrets (last_error is a CA's message), so it is world-readable.

#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "brokertls/crypto/time.hpp"

namespace brokertls {

struct RenewalEvent {
    std::string type;  // obtaining, obtained, failed, expiring, manual-action-required, ...
    std::string profile;
    std::string message;
    TimePoint at{};
    // {"type":..,"profile":..,"message":..,"at":"ISO8601"} on one line; invalid UTF-8 (a
    // hook's or CA's bytes) is replaced, never thrown.
    std::string to_json() const;
};

struct JobState {
    TimePoint next_run{};  // epoch: as soon as possible
    int consecutive_failures = 0;
    std::string last_error;
    std::string last_result;  // "obtained", "failed", ...
    TimePoint last_attempt{}, last_success{};
    // The CA's Retry-After of the last failure: a forced renewal waits for it, after a restart
    // too (epoch: none).
    TimePoint ca_retry_at{};
    std::string directory;              // the directory URL the last certificate came from
    std::deque<RenewalEvent> activity;  // newest last, at most activity_limit
    static constexpr std::size_t activity_limit = 20;

    // Appends the event and drops the oldest beyond activity_limit.
    void record(RenewalEvent event);
    std::string to_json() const;
    // Throws Error(Input) "SOURCE: FIELD: reason" when the text is not a job state. Missing
    // fields keep their defaults and unknown ones are ignored, so files written by other
    // versions still load.
    static JobState from_json(const std::string& text, const std::string& source);
    // A missing file gives a fresh state; a damaged or unreadable one too, with the error
    // naming the file and the reason added to `warnings`.
    static JobState load(const std::filesystem::path& file, std::vector<std::string>& warnings);
    // Atomic replace (mode 0644); creates a missing parent directory with mode 0700, as the
    // state directory also holds account keys.
    void save(const std::filesystem::path& file) const;
};

}  // namespace brokertls
