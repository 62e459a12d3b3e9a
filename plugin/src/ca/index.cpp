#include "brokertls/ca/index.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "brokertls/error.hpp"

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

IndexEntry entry_from_json(const json& j) {
    IndexEntry e;
    e.serial = j.at("serial").get<std::string>();
    e.name = j.at("name").get<std::string>();
    e.subject = j.at("subject").get<std::string>();
    e.subject_alt_names = j.at("sans").get<std::vector<std::string>>();
    e.profile = j.at("profile").get<std::string>();
    e.key_type = j.value("key_type", "");
    e.not_before = from_iso8601(j.at("not_before").get<std::string>());
    e.not_after = from_iso8601(j.at("not_after").get<std::string>());
    e.fingerprint = j.at("fingerprint").get<std::string>();
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
            if (j.contains("revoke")) {
                auto it = by_serial.find(j.at("revoke").get<std::string>());
                if (it == by_serial.end()) throw std::runtime_error("revokes an unknown serial");
                IndexEntry& e = entries[it->second];
                e.revoked_at = from_iso8601(j.at("at").get<std::string>());
                e.reason = parse_revocation_reason(j.value("reason", "unspecified"))
                               .value_or(RevocationReason::Unspecified);
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
    int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        fail(ErrorKind::Io, path_.string(), std::string("cannot open: ") + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    drop_torn_tail(fd, path_);
    std::string_view rest = lines;
    while (!rest.empty()) {
        ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            fail(ErrorKind::Io, path_.string(),
                 std::string("cannot append: ") + std::strerror(errno));
        rest.remove_prefix(static_cast<size_t>(n));
    }
    if (::fdatasync(fd) != 0)
        fail(ErrorKind::Io, path_.string(), std::string("cannot sync: ") + std::strerror(errno));
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
