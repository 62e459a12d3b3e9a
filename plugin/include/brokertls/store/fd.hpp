#pragma once
// An owned file descriptor, closed when it goes out of scope, and the writes every store user
// needs (a short write or EINTR is not an error).

#include <unistd.h>

#include <filesystem>
#include <string_view>
#include <utility>

namespace brokertls {

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    ~Fd() { reset(); }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

  private:
    int fd_;
};

// Opens `path`; throws Error(Io) "PATH: cannot open: REASON".
Fd open_or_fail(const std::filesystem::path& path, int flags, mode_t mode = 0);

// Writes all of `data`; throws Error(Io) "PATH: cannot write: REASON".
void write_all(int fd, std::string_view data, const std::filesystem::path& path);

}  // namespace brokertls
