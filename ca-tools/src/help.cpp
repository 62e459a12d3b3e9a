#include "help.hpp"

#include <array>
#include <utility>

namespace brokertls::cli {

namespace {

constexpr std::string_view kOverview =
    R"(brokertls-ca: a small CA for MQTT brokers and their clients

Usage: brokertls-ca COMMAND [OPTIONS]

Commands:
  init                 create the root CA (or, with --intermediate, an issuing intermediate)
  issue client NAME... client certificates for mTLS (CN=NAME, EKU clientAuth)
  issue server NAME... one server certificate for the given DNS names / IPs / URIs / emails
  sign CSR             sign a certificate request under a profile and a name policy
  revoke SERIAL|FILE   revoke a certificate and refresh crl.pem
  crl                  write a fresh CRL (crl.pem)
  list                 list issued certificates
  show SERIAL|FILE     print a certificate's details
  verify FILE          check a certificate against this CA (chain, validity, revocation)
  export-p12 NAME      bundle NAME.key + NAME.crt + CA chain as PKCS#12

Options for every command:
  --dir DIR                 CA directory (default $BROKERTLS_CA_DIR, else ./brokertls-ca)
  --passphrase-file FILE    passphrase of the CA key (first line of FILE)
  --passphrase-env VAR      passphrase of the CA key from environment variable VAR
                            (default: $BROKERTLS_CA_PASSPHRASE when set)
  --lock-timeout SECONDS    how long to wait for another running command (default 60)
  --json                    machine-readable output where the command prints data
  --help                    help for a command: brokertls-ca issue --help

Exit codes: 0 ok, 1 usage error, 2 input or state error (the CA directory is left unchanged).
)";

constexpr std::string_view kInit =
    R"(Usage: brokertls-ca init [--name CN] [--org O] [--key-type T] [--days N]
       brokertls-ca init --intermediate [--name CN] [--org O] [--key-type T] [--days N]

Creates root.key (mode 0600) and root.crt (10 years by default) in --dir. With --intermediate,
adds intermediate.key/intermediate.crt (5 years by default) signed by the root; from then on
the intermediate issues every certificate and root.key can be moved offline.

  --name CN       subject CN (default "brokertls CA", or "brokertls Intermediate CA")
  --org O         subject O
  --key-type T    ecdsa-p256 (default), ecdsa-p384, rsa2048, rsa3072, rsa4096, ed25519
  --days N        validity in days
A passphrase given with --passphrase-file/--passphrase-env encrypts the new key (encrypted
PKCS#8: scrypt and AES-256-CBC). A CA key that group or others may read gets a warning.
)";

constexpr std::string_view kIssue = R"(Usage: brokertls-ca issue client NAME... [options]
       brokertls-ca issue client --count N --prefix P [options]
       brokertls-ca issue client --names-file FILE [options]
       brokertls-ca issue server NAME... [options]

client: one certificate per NAME with CN=NAME, EKU clientAuth, CA:FALSE (critical), key usage
        digitalSignature (+keyEncipherment for RSA). --count N --prefix dev- issues dev-1..dev-N;
        --names-file reads one name per line. All in one process and one index update.
        NAME is the broker identity: valid UTF-8 without control characters, '+', '#' or '/'.
server: one certificate whose subjectAltNames are all the NAMEs, each typed the way it is
        written: broker.local (DNS), *.example.com (DNS), 10.0.0.5 and ::1 (IP),
        spiffe://x/y (URI), ops@example.com (email). EKU serverAuth. CN = first NAME.

Writes NAME.key (0600), NAME.crt and NAME.chain.pem (certificate + intermediate, what a
broker's certfile or a Paho client's key_store wants) into --out. Trust anchor: DIR/root.crt.

  --out DIR            output directory (default .)
  --days N             validity (default 397); refused if it would outlive the issuing CA
  --key-type T         ecdsa-p256 (default), ecdsa-p384, rsa2048, rsa3072, rsa4096, ed25519
  --san-dns NAME       client only, with one NAME: extra subjectAltName (repeatable);
  --san-ip ADDR        likewise --san-uri URI and --san-email ADDR
  --file-name STEM     server only: output file stem (default: first NAME, '*' as _wildcard)
  --allow-slash        client only: allow '/' in NAME (files then use '_' for it)
  --force              overwrite existing output files

Batches of 500 or more (or any batch when stderr is a terminal) report progress on stderr
once a second. SIGINT or SIGTERM stops a batch before it commits: nothing is issued, its
temporary files are removed, and the exit code is 128+signal.
)";

constexpr std::string_view kSign =
    R"(Usage: brokertls-ca sign CSR --profile client|server --allow GLOB... [--days N] [--out FILE]

Signs a device's certificate request. The CSR's signature is checked, and its CN and every
subjectAltName must match one --allow glob ('*' and '?', e.g. --allow 'dev-*' --allow
'*.broker.example'). Only the names are taken from the CSR: the profile decides
basicConstraints, key usage and EKU; other requested extensions are ignored. The CSR's key
must be RSA of 2048 bits or more, EC on P-256 or P-384, or Ed25519. With --profile client the
CN must be a usable broker identity (no control characters, '+', '#' or '/').

  --profile P    client or server (required)
  --allow GLOB   allowed names (repeatable, at least one)
  --allow-slash  client only: allow '/' in the CN
  --days N       validity (default 397)
  --out FILE     certificate path (default: CSR path with .crt); FILE's stem + .chain.pem too
  --force        overwrite existing output files
)";

constexpr std::string_view kRevoke =
    R"(Usage: brokertls-ca revoke SERIAL|CERTFILE [--reason R] [--crl-days N]

Marks the certificate revoked in the index and writes a fresh crl.pem (valid --crl-days,
default 30). Reasons: unspecified (default), keyCompromise, CACompromise, affiliationChanged,
superseded, cessationOfOperation, certificateHold, privilegeWithdrawn.
)";

constexpr std::string_view kCrl = R"(Usage: brokertls-ca crl [--days N] [--out FILE|DIR]

Writes DIR/crl.pem listing every revoked certificate, with nextUpdate N days ahead (default
30), and copies it to FILE (or DIR/crl.pem) when --out is given. If the copy cannot be
written, crl.pem and crlnumber stay as they were. Run it before nextUpdate passes: relying
parties reject a stale CRL.
)";

constexpr std::string_view kList =
    R"(Usage: brokertls-ca list [--status valid|revoked|expired] [--json]

Lists every certificate in the index: serial, status, profile, name, expiry.
)";

constexpr std::string_view kShow = R"(Usage: brokertls-ca show SERIAL|CERTFILE [--json]

Prints subject, issuer, serial, subjectAltNames, validity, key, key usage, EKU, basic
constraints, SHA-256 fingerprint, and the index status when this CA issued it.
)";

constexpr std::string_view kVerify = R"(Usage: brokertls-ca verify CERTFILE [--json]

Checks CERTFILE (a certificate or a chain bundle) against this CA: the chain to root.crt, the
validity period, the purpose its EKU names, that the index knows it, and that it is not revoked.
Exit 0 when valid, 2 otherwise with the reason.
)";

constexpr std::string_view kExport =
    R"(Usage: brokertls-ca export-p12 NAME [--in DIR] [--out FILE] (--password-file F | --password-env VAR)

Bundles DIR/NAME.key, DIR/NAME.crt and the CA chain into FILE (default NAME.p12) as PKCS#12
with AES-256-CBC (PBKDF2) encryption and an HMAC-SHA256 MAC. NAME is a file stem as issue
wrote it: no '/' or "..".

  --in DIR              where NAME.key and NAME.crt are (default .)
  --out FILE            output path (default DIR/NAME.p12)
  --password-file F     export password (first line of F)
  --password-env VAR    export password from environment variable VAR
  --force               overwrite FILE
)";

constexpr std::array<std::pair<std::string_view, std::string_view>, 11> kHelp{{
    {"", kOverview},
    {"init", kInit},
    {"issue", kIssue},
    {"sign", kSign},
    {"revoke", kRevoke},
    {"crl", kCrl},
    {"list", kList},
    {"show", kShow},
    {"verify", kVerify},
    {"export-p12", kExport},
    {"help", kOverview},
}};

}  // namespace

std::string_view help_for(std::string_view command) {
    for (const auto& [name, text] : kHelp)
        if (name == command) return text;
    return {};
}

}  // namespace brokertls::cli
