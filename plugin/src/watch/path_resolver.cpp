#include "path_resolver.hpp"

#include <sys/stat.h>

namespace brokertls {
namespace fs = std::filesystem;

namespace {
constexpr int kMaxSymlinks = 40;  // as the kernel's MAXSYMLINKS; more is a loop
}

Resolved PathResolver::resolve(const fs::path& path) {
    return resolve(path, 0);
}

const Resolved& PathResolver::resolve_directory(const fs::path& dir, int depth) {
    auto cached = dirs_.find(dir.native());
    if (cached == dirs_.end()) cached = dirs_.emplace(dir.native(), resolve(dir, depth)).first;
    return cached->second;
}

Resolved PathResolver::resolve(const fs::path& path, int depth) {
    if (!path.has_relative_path()) return {path, {}};
    const Resolved& dir = resolve_directory(path.parent_path(), depth);
    fs::path here = dir.target / path.filename();
    struct stat st {};
    ++stat_calls_;
    bool exists = ::lstat(here.c_str(), &st) == 0;
    if (depth < kMaxSymlinks && exists && S_ISLNK(st.st_mode)) {
        std::error_code ec;
        fs::path link = fs::read_symlink(here, ec);
        if (!ec) {
            fs::path next = (link.is_absolute() ? link : dir.target / link).lexically_normal();
            if (!next.has_filename() && next.has_relative_path()) next = next.parent_path();
            Resolved out = resolve(next, depth + 1);
            out.link_dirs.push_back(dir.target);
            out.link_dirs.insert(out.link_dirs.end(), dir.link_dirs.begin(), dir.link_dirs.end());
            return out;
        }
    }
    return {here, dir.link_dirs, exists && S_ISDIR(st.st_mode)};
}

}  // namespace brokertls
