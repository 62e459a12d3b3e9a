#include "brokertls/ca/index.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "brokertls/error.hpp"
#include "brokertls/identity.hpp"
#include "brokertls/store/fd.hpp"

namespace brokertls {

using nlohmann::json;

namespace {

json to_json(const IndexEntry& e) {
    return json{{"serial", e.serial},
                {"name", e.name},
                {"subject", e.subject},
                {"sans", e.subject_alt_names},
                {"profile", e.profile},
                {"key_type", e.key_type},
                {"not_before", to_iso8601(e.not_before)},
                {"not_after", to_iso8601(e.not_after)},
                {"fingerprint", e.fingerprint}};
}

// Thrown for a bad field; read() adds the file and line.
struct FieldError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void bad_field(std::string_view field, std::string_view reason) {
    throw FieldError("field '" + std::string(field) + "': " + std::string(reason));
}

const json& field(const json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end()) bad_field(name, "missing");
    return *it;
}

std::string string_field(const json& j, const char* name) {
    const json& v = field(j, name);
    if (!v.is_string()) bad_field(name, "not a string");
    return v.get<std::string>();
}

bool is_hex(std::string_view text, bool upper) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [&](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) ||
               (upper ? (c >= 'A' && c <= 'F') : (c >= 'a' && c <= 'f'));
    });
}

std::string serial_field(const json& j, const char* name) {
    std::string serial = string_field(j, name);
    if (!is_hex(serial, /*upper=*/true))
        bad_field(name, "not uppercase hex: '" + printable(serial) + "'");
    return serial;
}

TimePoint time_field(const json& j, const char* name) {
    std::string text = string_field(j, name);
    try {
        return from_iso8601(text);
    } catch (const std::exception&) {
        bad_field(name, "not a time (YYYY-MM-DDTHH:MM:SSZ): '" + printable(text) + "'");
    }
}

IndexEntry entry_from_json(const json& j) {
    IndexEntry e;
    e.serial = serial_field(j, "serial");
    e.name = string_field(j, "name");
    e.subject = string_field(j, "subject");
    const json& sans = field(j, "sans");
    if (!sans.is_array() ||
        !std::all_of(sans.begin(), sans.end(), [](const json& s) { return s.is_string(); }))
        bad_field("sans", "not a list of strings");
    e.subject_alt_names = sans.get<std::vector<std::string>>();
    e.profile = string_field(j, "profile");
    e.key_type = j.contains("key_type") ? string_field(j, "key_type") : "";
    e.not_before = time_field(j, "not_before");
    e.not_after = time_field(j, "not_after");
    e.fingerprint = string_field(j, "fingerprint");
    if (e.fingerprint.size() != 64 || !is_hex(e.fingerprint, /*upper=*/false))
        bad_field("fingerprint", "not a SHA-256 (64 lowercase hex digits)");
    return e;
}

// Cuts a torn last line (no trailing newline) so the next append starts on a fresh line.
void drop_torn_tail(int fd, const std::filesystem::path& path) {
    struct stat st {};
    if (fstat(fd, &st) != 0 || st.st_size == 0) return;
    char last = 0;
    if (pread(fd, &last, 1, st.st_size - 1) == 1 && last == '\n') return;
    off_t end = st.st_size;
    off_t keep = 0;
    char buf[4096];
    while (end > 0 && keep == 0) {
        off_t start = std::max<off_t>(0, end - static_cast<off_t>(sizeof buf));
        ssize_t n = pread(fd, buf, static_cast<size_t>(end - start), start);
        if (n <= 0) break;
        for (ssize_t i = n - 1; i >= 0; --i)
            if (buf[i] == '\n') {
                keep = start + i + 1;
                break;
            }
        end = start;
    }
    if (ftruncate(fd, keep) != 0)
        fail(ErrorKind::Io, path.string(), std::string("cannot repair: ") + std::strerror(errno));
}

}  // namespace

IndexEntry::Status IndexEntry::status(TimePoint now) const {
    if (revoked_at) return Status::Revoked;
    if (not_after < now) return Status::Expired;
    return Status::Valid;
}

std::string_view status_name(IndexEntry::Status status) {
    switch (status) {
        case IndexEntry::Status::Valid:
            return "valid";
        case IndexEntry::Status::Revoked:
            return "revoked";
        case IndexEntry::Status::Expired:
            return "expired";
    }
    return "unknown";
}

std::optional<IndexEntry::Status> parse_status(std::string_view name) {
    for (auto s :
         {IndexEntry::Status::Valid, IndexEntry::Status::Revoked, IndexEntry::Status::Expired})
        if (status_name(s) == name) return s;
    return std::nullopt;
}

std::vector<IndexEntry> CertificateIndex::read() const {
    std::vector<IndexEntry> entries;
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec))  // an ifstream would open it and read nothing
        fail(ErrorKind::Input, path_.string(),
             std::string("cannot read: ") + std::strerror(EISDIR));
    std::ifstream in(path_);
    if (!in) {
        if (!std::filesystem::exists(path_)) return entries;
        fail(ErrorKind::Input, path_.string(), std::string("cannot read: ") + std::strerror(errno));
    }
    std::unordered_map<std::string, size_t> by_serial;
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        // getline hit EOF without '\n': a torn final append. Ignore it even when it parses, as
        // the next append cuts it off; otherwise list/revoke could see an entry that vanishes.
        if (in.eof()) break;
        json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        try {
            if (j.is_discarded()) throw std::runtime_error("not JSON");
            if (!j.is_object()) throw std::runtime_error("not a JSON object");
            if (j.contains("revoke")) {
                std::string serial = serial_field(j, "revoke");
                auto it = by_serial.find(serial);
                if (it == by_serial.end())
                    bad_field("revoke", "revokes an unknown serial " + serial);
                IndexEntry& e = entries[it->second];
                e.revoked_at = time_field(j, "at");
                std::string reason =
                    j.contains("reason") ? string_field(j, "reason") : "unspecified";
                auto parsed = parse_revocation_reason(reason);
                if (!parsed) bad_field("reason", "unknown reason '" + printable(reason) + "'");
                e.reason = *parsed;
            } else {
                entries.push_back(entry_from_json(j));
                by_serial.emplace(entries.back().serial, entries.size() - 1);
            }
        } catch (const std::exception& e) {
            fail(ErrorKind::Input, path_.string() + ":" + std::to_string(line_no),
                 std::string("corrupt entry: ") + e.what());
        }
    }
    return entries;
}

void CertificateIndex::append_lines(const std::string& lines) const {
    Fd file = open_or_fail(path_, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int fd = file.get();
    drop_torn_tail(fd, path_);
    write_all(fd, lines, path_);
    if (::fdatasync(fd) != 0)
        fail(ErrorKind::Io, path_.string(), std::string("cannot sync: ") + std::strerror(errno));
}

std::uintmax_t CertificateIndex::prepare_append() const {
    Fd file = open_or_fail(path_, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int fd = file.get();
    drop_torn_tail(fd, path_);
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        fail(ErrorKind::Io, path_.string(), std::string("cannot stat: ") + std::strerror(errno));
    return static_cast<std::uintmax_t>(st.st_size);
}

void CertificateIndex::truncate(std::uintmax_t size) const {
    Fd file = open_or_fail(path_, O_WRONLY | O_CLOEXEC);
    int fd = file.get();
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0 || ::fdatasync(fd) != 0)
        fail(ErrorKind::Io, path_.string(),
             std::string("cannot roll back: ") + std::strerror(errno));
}

void CertificateIndex::append_issued(const std::vector<IndexEntry>& entries) const {
    std::string lines;
    for (const auto& e : entries) lines += to_json(e).dump() + "\n";
    append_lines(lines);
}

void CertificateIndex::append_revocation(const std::string& serial, TimePoint at,
                                         RevocationReason reason) const {
    json j{{"revoke", serial}, {"at", to_iso8601(at)}, {"reason", revocation_reason_name(reason)}};
    append_lines(j.dump() + "\n");
}

}  // namespace brokertls
