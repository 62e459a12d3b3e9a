#include "brokertls/module/file_watch.hpp"

#include <sys/stat.h>

#include <sstream>

namespace brokertls {
namespace fs = std::filesystem;

namespace {

// inode:size:mtime (ns) of the file, or of every entry for a directory; "" when missing.
// A rewrite changes mtime, a rename-replace changes the inode: no need to hash content.
std::string fingerprint(const fs::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "";
    std::ostringstream out;
    out << st.st_ino << ':' << st.st_size << ':' << st.st_mtim.tv_sec << '.' << st.st_mtim.tv_nsec;
    if (S_ISDIR(st.st_mode)) {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(path, ec))
            out << ';' << fingerprint(entry.path());
    }
    return out.str();
}

}  // namespace

void FileWatch::set_files(const std::vector<fs::path>& files) {
    std::map<fs::path, State> next;
    for (const auto& f : files) {
        auto it = files_.find(f);
        if (it != files_.end()) {
            next.emplace(f, it->second);
        } else {
            std::string fp = fingerprint(f);
            next.emplace(f, State{fp, fp});
        }
    }
    files_ = std::move(next);
}

std::vector<std::filesystem::path> FileWatch::poll() {
    std::vector<std::filesystem::path> changed;
    for (auto& [path, state] : files_) {
        std::string now = fingerprint(path);
        if (now == state.seen && now != state.stable) {
            state.stable = now;
            changed.push_back(path);
        }
        state.seen = now;
    }
    return changed;
}

}  // namespace brokertls
