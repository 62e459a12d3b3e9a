#pragma once

#include <chrono>
#include <filesystem>

namespace brokertls {

// An flock() on a file in the CA directory. A second command waits for it (bounded) instead of
// failing, so concurrent `brokertls-ca issue` runs queue up rather than corrupt the index.
class DirectoryLock {
  public:
    enum class Mode { Shared, Exclusive };
    DirectoryLock(const std::filesystem::path& lock_file, Mode mode,
                  std::chrono::milliseconds timeout);
    DirectoryLock(const DirectoryLock&) = delete;
    DirectoryLock& operator=(const DirectoryLock&) = delete;
    ~DirectoryLock();

  private:
    int fd_ = -1;
};

}  // namespace brokertls
