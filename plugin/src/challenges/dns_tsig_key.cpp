#include "dns_tsig_key.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "dns_ldns.hpp"

namespace brokertls {
namespace {

struct Token {
    enum class Kind { Word, Quoted, Punct } kind;
    std::string text;
    int line;
};

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// named.conf lexical rules, as far as key files use them.
class Lexer {
  public:
    Lexer(const std::string& text, const std::filesystem::path& file) : text_(text), file_(file) {}

    std::vector<Token> tokens() {
        std::vector<Token> out;
        while (skip_space_and_comments()) {
            char c = text_[pos_];
            if (c == '{' || c == '}' || c == ';') {
                out.push_back({Token::Kind::Punct, std::string(1, c), line_});
                ++pos_;
            } else if (c == '"') {
                out.push_back(quoted());
            } else {
                size_t start = pos_;
                while (pos_ < text_.size() &&
                       !std::isspace(static_cast<unsigned char>(text_[pos_])) &&
                       std::string_view("{};\"").find(text_[pos_]) == std::string_view::npos)
                    ++pos_;
                out.push_back({Token::Kind::Word, text_.substr(start, pos_ - start), line_});
            }
        }
        return out;
    }

  private:
    // False at the end of the text.
    bool skip_space_and_comments() {
        while (pos_ < text_.size()) {
            char c = text_[pos_];
            if (c == '\n') {
                ++line_, ++pos_;
            } else if (std::isspace(static_cast<unsigned char>(c))) {
                ++pos_;
            } else if (c == '#' || text_.compare(pos_, 2, "//") == 0) {
                while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
            } else if (text_.compare(pos_, 2, "/*") == 0) {
                int start_line = line_;
                size_t end = text_.find("*/", pos_ + 2);
                if (end == std::string::npos)
                    fail(ErrorKind::Input, file_.string(),
                         "line " + std::to_string(start_line) + ": unterminated comment");
                line_ += static_cast<int>(std::count(text_.begin() + static_cast<long>(pos_),
                                                     text_.begin() + static_cast<long>(end), '\n'));
                pos_ = end + 2;
            } else {
                return true;
            }
        }
        return false;
    }

    Token quoted() {
        int start_line = line_;
        size_t end = text_.find('"', pos_ + 1);
        if (end == std::string::npos)
            fail(ErrorKind::Input, file_.string(),
                 "line " + std::to_string(start_line) + ": unterminated quoted string");
        std::string value = text_.substr(pos_ + 1, end - pos_ - 1);
        line_ += static_cast<int>(std::count(value.begin(), value.end(), '\n'));
        pos_ = end + 1;
        return {Token::Kind::Quoted, value, start_line};
    }

    const std::string& text_;
    const std::filesystem::path& file_;
    size_t pos_ = 0;
    int line_ = 1;
};

class Parser {
  public:
    Parser(std::vector<Token> tokens, const std::filesystem::path& file)
        : tokens_(std::move(tokens)), file_(file) {}

    std::vector<TsigKey> keys() {
        std::vector<TsigKey> out;
        while (pos_ < tokens_.size()) {
            const Token& t = tokens_[pos_];
            if (t.kind != Token::Kind::Word || lower(t.text) != "key")
                error(t.line, "expected a key statement, found '" + shorten(t.text) + "'");
            ++pos_;
            out.push_back(key());
        }
        return out;
    }

  private:
    TsigKey key() {
        TsigKey k;
        const Token& name = value("a key name after 'key'");
        k.name = name.text;
        expect("{", "after the key name");
        std::optional<std::string> algorithm, secret;
        while (!peek("}")) {
            const Token& option = next("'algorithm', 'secret' or '}'");
            if (option.kind != Token::Kind::Word)
                error(option.line, "expected 'algorithm', 'secret' or '}'");
            std::string word = lower(option.text);
            if (word == "algorithm") {
                algorithm = value("an algorithm name").text;
                expect(";", "after the algorithm");
            } else if (word == "secret") {
                secret = value("a quoted secret").text;
                expect(";", "after the secret");
            } else {
                error(option.line,
                      "key \"" + k.name + "\": unknown option '" + shorten(option.text) + "'");
            }
        }
        ++pos_;  // "}"
        expect(";", "after '}'");
        if (!algorithm)
            fail(ErrorKind::Input, file_.string(), "key \"" + k.name + "\": no algorithm");
        if (!secret) fail(ErrorKind::Input, file_.string(), "key \"" + k.name + "\": no secret");
        k.algorithm = *algorithm;
        k.secret = std::move(*secret);
        return k;
    }

    const Token& next(const std::string& what) {
        if (pos_ >= tokens_.size()) error(last_line(), "expected " + what + ", found the end");
        return tokens_[pos_++];
    }
    // A word or a quoted string.
    const Token& value(const std::string& what) {
        const Token& t = next(what);
        if (t.kind == Token::Kind::Punct) error(t.line, "expected " + what);
        return t;
    }
    void expect(const std::string& punct, const std::string& where) {
        const Token& t = next("'" + punct + "' " + where);
        // The token is not quoted back: after a secret it could be part of the secret.
        if (t.kind != Token::Kind::Punct || t.text != punct)
            error(t.line, "expected '" + punct + "' " + where);
    }
    bool peek(const std::string& punct) {
        if (pos_ >= tokens_.size()) error(last_line(), "expected '}', found the end");
        return tokens_[pos_].kind == Token::Kind::Punct && tokens_[pos_].text == punct;
    }
    int last_line() const { return tokens_.empty() ? 1 : tokens_.back().line; }
    static std::string shorten(const std::string& s) {
        return s.size() > 32 ? s.substr(0, 32) + "..." : s;
    }
    [[noreturn]] void error(int line, const std::string& reason) {
        fail(ErrorKind::Input, file_.string(), "line " + std::to_string(line) + ": " + reason);
    }

    std::vector<Token> tokens_;
    const std::filesystem::path& file_;
    size_t pos_ = 0;
};

std::string checked_algorithm(const TsigKey& key, const std::filesystem::path& file) {
    std::string alg = lower(key.algorithm);
    if (!alg.empty() && alg.back() == '.') alg.pop_back();
    std::string subject = file.string();
    std::string where = "key \"" + key.name + "\": ";
    if (alg == "hmac-md5" || alg == "hmac-md5.sig-alg.reg.int" || alg == "hmac-sha1" ||
        alg == "hmac-sha224")
        fail(ErrorKind::Input, subject,
             where + "TSIG algorithm " + alg +
                 " is too weak; use hmac-sha256 or stronger (tsig-keygen -a hmac-sha256 NAME)");
    if (alg != "hmac-sha256" && alg != "hmac-sha384" && alg != "hmac-sha512")
        fail(ErrorKind::Input, subject,
             where + "unknown TSIG algorithm '" + key.algorithm +
                 "' (expected hmac-sha256, hmac-sha384 or hmac-sha512)");
    // ldns 1.8.3 names hmac-sha384 but cannot compute it (its table says "hmac-shac384."), and
    // probing it leaks inside ldns: refuse it up front.
    if (alg == "hmac-sha384")
        fail(ErrorKind::Input, subject,
             where + "TSIG algorithm " + alg +
                 " is not supported by the DNS library (ldns); use hmac-sha256 or hmac-sha512");
    return alg;
}

void check_secret(const TsigKey& key, const std::filesystem::path& file) {
    std::string where = "key \"" + key.name + "\": ";
    if (key.secret.empty()) fail(ErrorKind::Input, file.string(), where + "empty secret");
    std::vector<unsigned char> bytes(key.secret.size());
    int n = EVP_DecodeBlock(bytes.data(), reinterpret_cast<const unsigned char*>(key.secret.data()),
                            static_cast<int>(key.secret.size()));
    OPENSSL_cleanse(bytes.data(), bytes.size());
    if (n <= 0) fail(ErrorKind::Input, file.string(), where + "the secret is not base64");
}

std::string checked_name(const TsigKey& key, const std::filesystem::path& file) {
    std::string name = lower(key.name);
    if (name.empty()) fail(ErrorKind::Input, file.string(), "empty key name");
    if (name.back() != '.') name += '.';
    ldns_rdf* dname = nullptr;
    if (ldns_str2rdf_dname(&dname, name.c_str()) != LDNS_STATUS_OK)
        fail(ErrorKind::Input, file.string(), "key \"" + key.name + "\": not a valid key name");
    ldns_rdf_deep_free(dname);
    return name;
}

}  // namespace

TsigKey::~TsigKey() {
    if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
}

TsigKey parse_tsig_key(const std::string& text, const std::filesystem::path& file) {
    std::vector<TsigKey> keys = Parser(Lexer(text, file).tokens(), file).keys();
    if (keys.empty()) fail(ErrorKind::Input, file.string(), "no key statement");
    if (keys.size() > 1)
        fail(ErrorKind::Input, file.string(),
             std::to_string(keys.size()) + " keys; exactly one key is expected");
    TsigKey key = std::move(keys.front());
    key.name = checked_name(key, file);
    key.algorithm = checked_algorithm(key, file);
    check_secret(key, file);
    return key;
}

TsigKey load_tsig_key(const std::filesystem::path& file) {
    std::string text = read_file(file);
    TsigKey key = parse_tsig_key(text, file);
    OPENSSL_cleanse(text.data(), text.size());
    return key;
}

}  // namespace brokertls
