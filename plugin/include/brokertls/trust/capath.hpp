#pragma once
// A hashed CA directory (OpenSSL's `capath` layout: SUBJECTHASH.N files), kept equal to a set of
// certificates. Mosquitto reads a listener's capath lazily through OpenSSL's hash-dir lookup,
// so a CA written here is trusted by new handshakes without a restart.

#include <filesystem>
#include <string>
#include <vector>

#include "brokertls/crypto/certificate.hpp"

namespace brokertls {

// Writes every certificate as DIR/HASH.N (atomically), removes HASH.N files that are no longer
// wanted, leaves other files alone. Returns a log line per change.
std::vector<std::string> sync_capath(const std::filesystem::path& dir,
                                     const std::vector<Certificate>& certificates);

}  // namespace brokertls
