#pragma once
// A hashed CA directory (OpenSSL's `capath` layout: SUBJECTHASH.N files), kept equal to a set of
// certificates. Mosquitto reads a listener's capath lazily through OpenSSL's hash-dir lookup,
// so a CA written here is trusted by new handshakes without a restart.

#include <filesystem>
#include <string>
#include <vector>

#include "brokertls/crypto/certificate.hpp"

namespace brokertls {

// The list of files brokertls wrote into a capath directory (JSON, written atomically).
inline constexpr const char* kCapathManifest = ".brokertls-capath.json";

// Writes every certificate as DIR/HASH.N (atomically) and records it in DIR/kCapathManifest;
// removes the recorded files that are no longer wanted. Files it did not write (an operator's
// own HASH.N, anything else) are never overwritten or removed: their names are skipped. Returns
// a log line per change. Throws Error naming the manifest when it is not ours to read.
std::vector<std::string> sync_capath(const std::filesystem::path& dir,
                                     const std::vector<Certificate>& certificates);

}  // namespace brokertls
