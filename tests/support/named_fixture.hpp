#pragma once
// A real BIND 9 `named` on 127.0.0.1, authoritative for test zones that accept RFC 2136
// UPDATEs signed with a TSIG key (made by tsig-keygen), and dig for looking at what it serves.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support.hpp"

namespace brokertls::test {

struct NamedZone {
    std::string name;                  // "example.test"
    std::vector<std::string> records;  // zone-file lines besides SOA, NS and ns1's A record
    bool allow_update = true;          // with the fixture's key
};

// example.test and acme-delegate.test, both updatable. example.test holds
//   _acme-challenge.broker CNAME broker.acme-delegate.test.   (CNAME delegation)
//   _acme-challenge.keep   TXT "kept-by-operator"              (a value that is not ours)
//   _acme-challenge.loop   CNAME loop2 / loop2 CNAME _acme-challenge.loop   (a CNAME loop)
std::vector<NamedZone> default_named_zones();

// Writes `tsig-keygen -a ALGORITHM NAME` output to `file`.
void write_tsig_key(const std::filesystem::path& file, const std::string& name,
                    const std::string& algorithm = "hmac-sha256");

class Named {
  public:
    // Starts named (stopped in the destructor) and waits until it serves the zones.
    explicit Named(std::vector<NamedZone> zones = default_named_zones(),
                   const std::string& key_name = "brokertls-acme",
                   const std::string& key_algorithm = "hmac-sha256");
    ~Named();
    Named(const Named&) = delete;
    Named& operator=(const Named&) = delete;

    int port() const { return port_; }
    std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
    // The key file named trusts for updates, as tsig-keygen wrote it.
    const std::filesystem::path& key_file() const { return key_file_; }
    const std::string& key_name() const { return key_name_; }
    const std::filesystem::path& dir() const { return dir_.path(); }

    // The TXT values named serves at `name`, by `dig +norecurse +short` (quotes removed).
    std::vector<std::string> txt(const std::string& name) const;
    std::string log() const;

  private:
    bool start(int port);

    TempDir dir_;
    std::string key_name_;
    std::filesystem::path key_file_;
    int port_ = 0;
    std::unique_ptr<Process> process_;
};

}  // namespace brokertls::test
