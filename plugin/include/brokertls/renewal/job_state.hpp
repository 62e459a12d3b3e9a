#pragma once
// What a profile's renewal job remembers across broker restarts (mod_md's job.json): when to
// run next, how many attempts failed in a row and why, and the recent activity. Kept at
// STATE_DIR/PROFILE/job.json, written atomically; a damaged file is reported and replaced by a
// fresh state rather than stopping renewals.

#include <deque>
#include <filesystem>
#include <optional>
#include <string>

#include "brokertls/crypto/time.hpp"

namespace brokertls {

struct RenewalEvent {
    std::string type;  // obtaining, obtained, failed, expiring, manual-action-required, ...
    std::string profile;
    std::string message;
    TimePoint at{};
    std::string to_json() const;  // {"type":..,"profile":..,"message":..,"at":"ISO8601"}
};

struct JobState {
    TimePoint next_run{};  // epoch: as soon as possible
    int consecutive_failures = 0;
    std::string last_error;
    std::string last_result;  // "obtained", "failed", ...
    TimePoint last_attempt{}, last_success{};
    std::string directory;  // the directory URL the last certificate came from
    std::deque<RenewalEvent> activity;  // newest last, at most activity_limit
    static constexpr std::size_t activity_limit = 20;

    void record(RenewalEvent event);
    std::string to_json() const;
    // Throws Error(Input) naming `source` when the text is not a job state.
    static JobState from_json(const std::string& text, const std::string& source);
    // A missing file gives a fresh state; a damaged one too, with `warning` set to the reason.
    static JobState load(const std::filesystem::path& file, std::string* warning);
    void save(const std::filesystem::path& file) const;
};

}  // namespace brokertls
