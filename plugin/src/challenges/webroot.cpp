// http-01 webroot mode: the operator's web server already serves WEBROOT on port 80; we put
// the key authorization in WEBROOT/.well-known/acme-challenge/<token> for it to serve.

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "solvers.hpp"
#include "token.hpp"

namespace brokertls {
namespace {

namespace fs = std::filesystem;

// Several orders may use one webroot at once: the directories we created are removed when the
// last token file in them goes, under one lock so a removal never races a new token's write.
std::mutex webroot_mutex;
std::set<fs::path> created_directories;

class WebrootSolver : public ChallengeSolver {
  public:
    WebrootSolver(const ChallengeConfig& config, SolverContext context)
        : webroot_(config.webroot.value_or(fs::path())), context_(std::move(context)) {}

    std::string type() const override { return "http-01"; }

    void present(const std::vector<ChallengeTask>& tasks) override {
        std::error_code ec;
        if (!fs::is_directory(webroot_, ec)) {
            fail(ErrorKind::Input, "http-01 webroot " + webroot_.string(),
                 "not an existing directory");
        }
        for (const auto& task : tasks) {
            if (!is_base64url_token(task.token)) {
                fail(ErrorKind::Input, "http-01 webroot",
                     "token \"" + task.token + "\" is not base64url");
            }
        }
        std::lock_guard lock(webroot_mutex);
        make_directory(webroot_ / ".well-known");
        make_directory(challenge_dir());
        for (const auto& task : tasks) {
            // Readable by the web server, whatever user it runs as.
            write_file_atomic(challenge_dir() / task.token, task.key_authorization, kPublicMode);
        }
    }

    void cleanup(const std::vector<ChallengeTask>& tasks) noexcept override {
        std::lock_guard lock(webroot_mutex);
        for (const auto& task : tasks) {
            if (!is_base64url_token(task.token)) continue;
            fs::path file = challenge_dir() / task.token;
            if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
                context_.log("http-01 webroot: cannot remove " + file.string() + ": " +
                             std::strerror(errno));
            }
        }
        // Deepest first; rmdir leaves a directory another order still has files in.
        for (const fs::path& dir : {challenge_dir(), webroot_ / ".well-known"}) {
            if (created_directories.count(dir) && ::rmdir(dir.c_str()) == 0)
                created_directories.erase(dir);
        }
    }

  private:
    fs::path challenge_dir() const { return webroot_ / ".well-known" / "acme-challenge"; }

    static void make_directory(const fs::path& dir) {
        if (::mkdir(dir.c_str(), 0755) == 0) {
            // The umask may have narrowed it; the web server must be able to traverse it.
            ::chmod(dir.c_str(), 0755);
            created_directories.insert(dir);
        } else if (errno != EEXIST) {
            fail(ErrorKind::Io, dir.string(),
                 std::string("cannot create: ") + std::strerror(errno));
        }
    }

    fs::path webroot_;
    SolverContext context_;
};

}  // namespace

std::unique_ptr<ChallengeSolver> make_webroot_solver(const ChallengeConfig& config,
                                                     SolverContext context) {
    return std::make_unique<WebrootSolver>(config, std::move(context));
}

}  // namespace brokertls
