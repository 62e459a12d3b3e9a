#include "brokertls/ca/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "brokertls/error.hpp"

namespace brokertls {

DirectoryLock::DirectoryLock(const std::filesystem::path& lock_file, Mode mode,
                             std::chrono::milliseconds timeout) {
    fd_ = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0)
        fail(ErrorKind::Io, lock_file.string(),
             std::string("cannot open lock: ") + std::strerror(errno));
    int op = (mode == Mode::Exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto pause = std::chrono::milliseconds(1);
    // flock() has no timed form; poll with a short, growing pause up to the deadline.
    while (::flock(fd_, op) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int err = errno;
            ::close(fd_);
            fail(ErrorKind::Io, lock_file.string(),
                 std::string("cannot lock: ") + std::strerror(err));
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            ::close(fd_);
            fail(ErrorKind::State, lock_file.string(),
                 "another brokertls-ca command holds the lock (waited " +
                     std::to_string(timeout.count()) + " ms)");
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
}

DirectoryLock::~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace brokertls
