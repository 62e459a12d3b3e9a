#pragma once
// The service's record of what it did: one JSON line per issuance, cache hit and refusal, in
// STATE_DIR/audit.jsonl (or audit_file). The CA's own index is the durable record of what was
// signed; this log says who asked, from where, and why a request was refused.

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brokertls/crypto/time.hpp"

namespace brokertls {

struct AuditRecord {
    TimePoint time;
    std::string event;     // "issued", "cached", "refused"
    std::string client;    // auth block, client key id or certificate identity; "" = unknown
    std::string address;   // the peer's address
    std::string endpoint;  // "sign", "v1"
    std::string profile;
    std::vector<std::string> names;
    std::string serial;  // issued, cached
    std::string issuer;  // issued, cached
    int status = 200;
    std::string reason;  // refused
};

class AuditLog {
  public:
    explicit AuditLog(std::filesystem::path file);
    ~AuditLog();
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;
    // Appends one line (a single write, O_APPEND: lines of concurrent writers never mix).
    void write(const AuditRecord& record);
    // The newest `limit` records, oldest first, optionally only of one client.
    std::vector<nlohmann::json> newest(std::size_t limit, const std::string& client = "") const;

  private:
    std::filesystem::path file_;
    int fd_ = -1;
    mutable std::mutex mutex_;
};

}  // namespace brokertls
