#pragma once
// Notices changes to a set of files by polling inode, size and mtime. Polling (rather than
// inotify) also sees files replaced by rename, directories re-created and network mounts. A
// file counts as changed only once two consecutive polls agree on its new state, so a
// certificate and key written one after the other are not picked up half-way (as Envoy does).

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace brokertls {

class FileWatch {
  public:
    void set_files(const std::vector<std::filesystem::path>& files);
    // The files that changed (and have been stable for one poll) since they were last reported.
    std::vector<std::filesystem::path> poll();

  private:
    struct State {
        std::string seen;    // fingerprint at the last poll
        std::string stable;  // fingerprint last reported
    };
    std::map<std::filesystem::path, State> files_;
};

}  // namespace brokertls
