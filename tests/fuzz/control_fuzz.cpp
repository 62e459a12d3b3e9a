// $CONTROL/brokertls/v1 requests, through SecurityModule::control on a module built once from a
// minimal brokertls.json (one security profile, a root CA and its CRL) in a temporary
// directory. Requests naming "reload" are skipped: a reload re-reads every file of the
// configuration, which makes the target slow; renew and resumeChallenge run (no acme profile,
// so they answer at once).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string_view>

#include "brokertls/ca/authority.hpp"
#include "brokertls/error.hpp"
#include "brokertls/module/security_module.hpp"
#include "brokertls/store/files.hpp"
#include "fuzz_support.hpp"

namespace {

namespace fs = std::filesystem;
std::unique_ptr<brokertls::SecurityModule> module;
fs::path directory;
int admin_connection;  // its address stands for the broker's connection handle

void remove_directory() {
    module.reset();
    std::error_code ec;
    fs::remove_all(directory, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    using namespace brokertls;
    std::string templ = (fs::temp_directory_path() / "brokertls-fuzz-control-XXXXXX").string();
    if (!::mkdtemp(templ.data())) std::abort();
    directory = templ;
    std::atexit(remove_directory);
    CertificateAuthority::init_root(directory / "ca", {}, SystemClock::now());
    std::vector<IssuedFiles> admin;
    {
        CertificateAuthority ca(directory / "ca", {}, true, DirectoryLock::Mode::Exclusive,
                                SystemClock::now());
        ca.write_crl(30);
        admin = ca.issue({{CertificateProfile::Client, "admin", "", {}, 30, KeyType::EcP256}},
                         directory / "certs", Overwrite::Refuse);
    }
    write_file_atomic(
        directory / "brokertls.json",
        R"({"security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"], "crls": ["ca/crl.pem"]}}, "control": {"allow": ["admin"]}})");
    module = std::make_unique<SecurityModule>(directory / "brokertls.json");
    // Requests come from a connection the module authenticated as "admin", so the commands run
    // (an unauthorised caller only ever gets "not authorised").
    Certificate cert = Certificate::load(admin[0].cert);
    if (!module->authenticate("devices", cert.get(), "admin", &admin_connection, SystemClock::now())
             .ok())
        std::abort();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string request = brokertls::fuzz::text(data, size);
    if (request.find("reload") != std::string::npos) return 0;
    try {
        (void)module->control(request, {"admin", &admin_connection}, brokertls::SystemClock::now());
    } catch (const brokertls::Error&) {
    }
    return 0;
}
