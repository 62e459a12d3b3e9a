#include "service/audit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>

#include "brokertls/error.hpp"

namespace brokertls {

AuditLog::AuditLog(std::filesystem::path file) : file_(std::move(file)) {
    fd_ = ::open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0)
        fail(ErrorKind::Io, file_.string(), std::string("cannot open: ") + strerror(errno));
}

AuditLog::~AuditLog() {
    if (fd_ >= 0) ::close(fd_);
}

void AuditLog::write(const AuditRecord& r) {
    nlohmann::json line = {{"time", to_iso8601(r.time)}, {"event", r.event},
                           {"client", r.client},         {"address", r.address},
                           {"endpoint", r.endpoint},     {"profile", r.profile},
                           {"names", r.names},           {"status", r.status}};
    if (!r.serial.empty()) line["serial"] = r.serial;
    if (!r.issuer.empty()) line["issuer"] = r.issuer;
    if (!r.reason.empty()) line["reason"] = r.reason;
    // Names come from CSRs: dump() escapes control characters, and replaces invalid UTF-8.
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard lock(mutex_);
    // An audit line that cannot be written must not stop issuance; the CA index still records
    // every certificate. The failure reaches the operator through the service's log instead.
    if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        throw Error(ErrorKind::Io, file_.string() + ": cannot append: " + strerror(errno));
}

std::vector<nlohmann::json> AuditLog::newest(std::size_t limit, const std::string& client) const {
    std::lock_guard lock(mutex_);
    std::ifstream in(file_);
    std::deque<nlohmann::json> kept;
    std::string line;
    while (std::getline(in, line)) {
        auto record = nlohmann::json::parse(line, nullptr, false);
        if (record.is_discarded() || !record.is_object()) continue;  // a line cut by a crash
        if (!client.empty() && record.value("client", "") != client) continue;
        kept.push_back(std::move(record));
        if (kept.size() > limit) kept.pop_front();
    }
    return {kept.begin(), kept.end()};
}

}  // namespace brokertls
