#pragma once
// Where brokertls-service keeps what it must remember: the certificate cache now; devices,
// credentials, budgets and the queue as they come. Keys are relative paths of lower-case
// segments ("cache/ab/ab12....pem"). One implementation on the filesystem here; the cluster
// issue adds one on etcd behind the same interface.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace brokertls {

enum class Durability {
    Durable,  // survives a crash once put() returns (fsync)
    Cache,    // may be lost in a crash, never seen half-written
};

class ServiceStore {
  public:
    virtual ~ServiceStore() = default;
    virtual std::optional<std::string> get(const std::string& key) const = 0;
    // Values are private (0600): credentials are among them.
    virtual void put(const std::string& key, std::string_view value, Durability durability) = 0;
    // False when there was nothing to remove. Of concurrent removers only one gets true (a
    // one-time token is spent once).
    virtual bool remove(const std::string& key) = 0;
};

// Throws Error(Usage) for a key that is not lower-case segments of [a-z0-9._-] joined by '/'
// (no empty, "." or ".." segment), at most 255 bytes.
void check_store_key(const std::string& key);

// Files under `dir` (created 0700, checked like every state directory).
std::unique_ptr<ServiceStore> make_file_store(const std::filesystem::path& dir);

}  // namespace brokertls
