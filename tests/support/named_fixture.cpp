#include "named_fixture.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace brokertls::test {
namespace fs = std::filesystem;

namespace {

std::string program(const std::string& name) {
    for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"})
        if (fs::exists(std::string(dir) + name)) return std::string(dir) + name;
    return name;
}

void write_text(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

std::string zone_file(const NamedZone& zone) {
    std::ostringstream z;
    z << "$TTL 60\n"
      << "@ IN SOA ns1." << zone.name << ". hostmaster." << zone.name << ". 1 3600 600 86400 60\n"
      << "@ IN NS ns1." << zone.name << ".\n"
      << "ns1 IN A 127.0.0.1\n";
    for (const auto& line : zone.records) z << line << "\n";
    return z.str();
}

}  // namespace

std::vector<NamedZone> default_named_zones() {
    return {
        {"example.test",
         {"broker IN A 127.0.0.1", "_acme-challenge.broker IN CNAME broker.acme-delegate.test.",
          "_acme-challenge.keep IN TXT \"kept-by-operator\"",
          "_acme-challenge.loop IN CNAME loop2.example.test.",
          "loop2 IN CNAME _acme-challenge.loop.example.test."},
         true},
        {"acme-delegate.test", {}, true},
    };
}

void write_tsig_key(const fs::path& file, const std::string& name, const std::string& algorithm) {
    RunResult r =
        run({program("tsig-keygen"), "-a", algorithm, name}, "", std::chrono::seconds(10));
    if (r.exit_code != 0) throw std::runtime_error("tsig-keygen failed: " + r.err);
    write_text(file, r.out);
}

Named::Named(std::vector<NamedZone> zones, const std::string& key_name,
             const std::string& key_algorithm)
    : key_name_(key_name), key_file_(dir_ / "tsig.key") {
    write_tsig_key(key_file_, key_name_, key_algorithm);
    std::string dir = dir_.path().string();
    for (const auto& zone : zones) write_text(dir_ / (zone.name + ".zone"), zone_file(zone));
    // A port free a moment ago may be taken by the time named binds it: then try another.
    for (int attempt = 0; attempt < 3; ++attempt) {
        std::ostringstream conf;
        int port = free_port();
        conf << "include \"" << key_file_.string() << "\";\n"
             << "options {\n"
             << "  directory \"" << dir << "\";\n"
             << "  listen-on port " << port << " { 127.0.0.1; };\n"
             << "  listen-on-v6 { none; };\n"
             << "  pid-file \"" << dir << "/named.pid\";\n"
             << "  session-keyfile \"" << dir << "/session.key\";\n"
             << "  managed-keys-directory \"" << dir << "\";\n"
             << "  recursion no;\n"
             << "  dnssec-validation no;\n"
             << "  notify no;\n"
             << "};\n"
             << "controls { };\n";
        for (const auto& zone : zones)
            conf << "zone \"" << zone.name << "\" { type primary; file \"" << zone.name
                 << ".zone\"; allow-update { "
                 << (zone.allow_update ? "key \"" + key_name_ + "\";" : std::string("none;"))
                 << " }; };\n";
        write_text(dir_ / "named.conf", conf.str());
        if (start(port)) return;
    }
    throw std::runtime_error("named did not start:\n" + log());
}

bool Named::start(int port) {
    process_.reset();
    process_ = std::make_unique<Process>(
        std::vector<std::string>{program("named"), "-g", "-n", "1", "-c",
                                 (dir_ / "named.conf").string(), "-p", std::to_string(port)},
        dir_ / ("named-" + std::to_string(port) + ".log"));
    // "running" alone also matches the "running on Linux" banner.
    bool up = process_->wait_for_log(" running\n", std::chrono::seconds(15));
    std::string text = process_->log();
    if (!up || text.find("could not listen") != std::string::npos ||
        text.find("address in use") != std::string::npos) {
        process_->stop();
        return false;
    }
    port_ = port;
    return true;
}

Named::~Named() {
    if (process_) process_->stop();
}

std::string Named::log() const {
    return process_ ? process_->log() : "";
}

std::vector<std::string> Named::txt(const std::string& name) const {
    RunResult r = run({program("dig"), "@127.0.0.1", "-p", std::to_string(port_), "+norecurse",
                       "+short", "+time=2", "+tries=1", "TXT", name},
                      "", std::chrono::seconds(10));
    if (r.exit_code != 0) throw std::runtime_error("dig failed: " + r.out + r.err);
    std::vector<std::string> values;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        std::string value;
        for (char c : line)
            if (c != '"' && c != ' ') value += c;
        if (!value.empty()) values.push_back(value);
    }
    return values;
}

}  // namespace brokertls::test
