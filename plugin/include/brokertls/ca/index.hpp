#pragma once
// The CA's record of every certificate it issued: an append-only file of JSON lines
// (index.jsonl). Issuing appends one line per certificate and never rewrites the file, so the
// cost of issuing does not grow with the number already issued; revoking appends a revocation
// line. Reading replays the lines. A torn last line (a crash mid-append) is ignored on read and
// cut off before the next append.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "brokertls/crypto/crl.hpp"
#include "brokertls/crypto/time.hpp"

namespace brokertls {

struct IndexEntry {
    std::string serial;  // uppercase hex
    std::string name;
    std::string subject;
    std::vector<std::string> subject_alt_names;  // "DNS:x", "IP:y", ...
    std::string profile;                         // "client", "server", "intermediate"
    std::string key_type;
    TimePoint not_before;
    TimePoint not_after;
    std::string fingerprint;  // SHA-256, lowercase hex
    std::optional<TimePoint> revoked_at;
    RevocationReason reason = RevocationReason::Unspecified;

    enum class Status { Valid, Revoked, Expired };
    Status status(TimePoint now) const;
};

std::string_view status_name(IndexEntry::Status status);
std::optional<IndexEntry::Status> parse_status(std::string_view name);

class CertificateIndex {
  public:
    explicit CertificateIndex(std::filesystem::path path) : path_(std::move(path)) {}

    // Every certificate in issue order, with revocations applied. Throws Error(Input) naming the
    // file and line of a corrupt entry.
    std::vector<IndexEntry> read() const;
    // Appends, with one write and one fsync for the whole batch.
    void append_issued(const std::vector<IndexEntry>& entries) const;
    void append_revocation(const std::string& serial, TimePoint at, RevocationReason reason) const;

    // Before a command appends: checks the index can be written (a directory or a read-only
    // file fails here, before anything is signed), cuts a torn tail, and returns the size to
    // roll back to with truncate() if the command fails after appending.
    std::uintmax_t prepare_append() const;
    // Cuts the file back to `size` (durably): undoes the appends of a failed command.
    void truncate(std::uintmax_t size) const;

    const std::filesystem::path& path() const { return path_; }

  private:
    void append_lines(const std::string& lines) const;
    std::filesystem::path path_;
};

}  // namespace brokertls
