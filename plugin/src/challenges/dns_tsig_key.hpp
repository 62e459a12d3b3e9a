#pragma once
// The TSIG key an RFC 2136 UPDATE is signed with, read from a BIND key file as `tsig-keygen`
// writes it:  key "NAME" { algorithm hmac-sha256; secret "BASE64"; };
// Comments (#, //, /* */) are allowed. The file must hold exactly one key, and its algorithm
// must be hmac-sha256 or stronger. Errors name the file and the reason, never the secret.

#include <filesystem>
#include <string>

namespace brokertls {

struct TsigKey {
    std::string name;       // "acme-key." (absolute)
    std::string algorithm;  // "hmac-sha256", "hmac-sha384" or "hmac-sha512"
    std::string secret;     // base64, as in the file; never log it

    TsigKey() = default;
    TsigKey(const TsigKey&) = default;
    TsigKey(TsigKey&&) = default;
    TsigKey& operator=(const TsigKey&) = default;
    TsigKey& operator=(TsigKey&&) = default;
    ~TsigKey();  // wipes the secret
};

// Throws Error(Input) "FILE: REASON".
TsigKey load_tsig_key(const std::filesystem::path& file);
// `text` is the content of `file` (which only names it in errors).
TsigKey parse_tsig_key(const std::string& text, const std::filesystem::path& file);

}  // namespace brokertls
