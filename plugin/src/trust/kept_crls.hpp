#pragma once
// The CRL in force per issuer survives a broker restart. A snapshot never lets an older CRL
// replace a newer one of the same issuer (TrustSnapshot::build); after a restart the snapshot
// before is gone, so the CRLs in force are kept in STATE_DIR/crls/ (one DER file per issuer,
// named by the SHA-256 of its DN, ".crl"; PEM ".pem" files of earlier versions are read and
// replaced) and read back as the "CRLs in force" of the first build.
// A stale CRL file then cannot un-revoke anything across a restart either.
//
// Keeping them is a safety net, not a source of trust: every kept CRL is checked again against
// the profile's CAs when applied (a CA that changed makes it void), and only issuers whose CRLs
// the profile still names are considered. Problems reading or writing are warnings: the CRL
// files the profile names still apply.

#include <filesystem>
#include <string>
#include <vector>

#include "trust/validator.hpp"

namespace brokertls {

// The kept CRLs under `state_dir`/crls/, by issuer DN; a missing directory gives none. A kept
// file holding a CRL of `in_force` (those of the snapshots in force) gives that CRL, shared,
// instead of reading a second copy of it (50 MB for 1,000,000 entries) on every reload.
CrlsInForce load_kept_crls(const std::filesystem::path& state_dir,
                           std::vector<std::string>& warnings, const CrlsInForce& in_force = {});

// Adds every CRL of `from` to `into` unless `into` holds a newer one of the same issuer.
void merge_newest(CrlsInForce& into, const CrlsInForce& from);

// Writes the CRLs in force that differ from what is kept (atomic, 0644; the directory 0700),
// compared piece by piece: nothing of a CRL's size is read or encoded.
void keep_crls(const std::filesystem::path& state_dir, const CrlsInForce& crls,
               std::vector<std::string>& warnings);

}  // namespace brokertls
