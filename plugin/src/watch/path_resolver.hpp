#pragma once

#include <atomic>
// Follows the symlinks in a path as the kernel would, and remembers in which directories it met
// them: a change in any of those can make the path name a different file (a certificate
// symlink retargeted, Kubernetes swapping its ..data link).

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

namespace brokertls {

struct Resolved {
    std::filesystem::path target;                  // no symlinks left; the missing rest as given
    std::vector<std::filesystem::path> link_dirs;  // resolved directories holding a symlink met
    bool directory = false;                        // the target is a directory
};

class PathResolver {
  public:
    // Counts each lstat in `stat_calls`.
    explicit PathResolver(std::atomic<std::uint64_t>& stat_calls) : stat_calls_(stat_calls) {}
    // `path` must be absolute and lexically normal. Directories are resolved once per resolver,
    // so many files in one directory cost one lstat each.
    Resolved resolve(const std::filesystem::path& path);
    // The same, remembered for the next call: for the directories many files share.
    const Resolved& resolve_directory(const std::filesystem::path& dir, int depth = 0);

  private:
    Resolved resolve(const std::filesystem::path& path, int depth);
    std::unordered_map<std::string, Resolved> dirs_;
    std::atomic<std::uint64_t>& stat_calls_;
};

}  // namespace brokertls
