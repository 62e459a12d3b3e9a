#include <algorithm>
#include <mutex>
#include <set>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "service/store.hpp"

namespace brokertls {
namespace fs = std::filesystem;

void check_store_key(const std::string& key) {
    auto bad = [&](const std::string& why) { fail(ErrorKind::Usage, "store key", why); };
    if (key.empty() || key.size() > 255) bad("must be 1 to 255 bytes");
    std::size_t start = 0;
    while (start <= key.size()) {
        std::size_t end = std::min(key.find('/', start), key.size());
        std::string_view segment(key.data() + start, end - start);
        if (segment.empty() || segment == "." || segment == "..")
            bad("has an empty, \".\" or \"..\" segment");
        if (!std::all_of(segment.begin(), segment.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                       c == '-';
            }))
            bad("may hold only a-z, 0-9, '.', '_', '-' and '/'");
        start = end + 1;
    }
}

namespace {

class FileStore final : public ServiceStore {
  public:
    explicit FileStore(fs::path dir) : dir_(std::move(dir)) {
        ensure_private_directory(dir_, dir_);
    }

    std::optional<std::string> get(const std::string& key) const override {
        check_store_key(key);
        std::error_code ec;
        if (!fs::is_regular_file(dir_ / key, ec)) return std::nullopt;
        return read_file(dir_ / key);
    }

    void put(const std::string& key, std::string_view value, Durability durability) override {
        check_store_key(key);
        fs::path path = dir_ / key;
        auto write = [&] {
            ensure_checked(path.parent_path());
            if (durability == Durability::Durable)
                write_file_atomic(path, value, kPrivateMode);
            else
                write_file_unsynced(path, value, kPrivateMode);
        };
        try {
            write();
        } catch (const Error&) {
            // Its directory removed since (an operator clearing the cache): made again, once.
            std::error_code ec;
            if (fs::is_directory(path.parent_path(), ec)) throw;
            forget(path.parent_path());
            write();
        }
    }

    bool remove(const std::string& key) override {
        check_store_key(key);
        std::error_code ec;
        bool removed = fs::remove(dir_ / key, ec);
        if (ec) fail(ErrorKind::Io, (dir_ / key).string(), "cannot remove: " + ec.message());
        return removed;
    }

  private:
    // Each directory is created and its ownership and mode checked on first use, not at every
    // put: the checks cost as much as the write of a small value.
    void ensure_checked(const fs::path& dir) {
        std::lock_guard lock(mutex_);
        if (checked_.count(dir)) return;
        ensure_private_directory(dir_, dir);
        checked_.insert(dir);
    }

    void forget(const fs::path& dir) {
        std::lock_guard lock(mutex_);
        checked_.erase(dir);
    }

    fs::path dir_;
    std::mutex mutex_;
    std::set<fs::path> checked_;
};

}  // namespace

std::unique_ptr<ServiceStore> make_file_store(const fs::path& dir) {
    return std::make_unique<FileStore>(dir);
}

}  // namespace brokertls
