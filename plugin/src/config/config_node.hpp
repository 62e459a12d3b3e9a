#pragma once
// The pieces of brokertls.json's parser that other JSON configurations reuse (brokertls-service's):
// a node that knows its JSON path, strict parsing, and the shared field types. Every error says
// "FILE: JSON.PATH: reason".

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "brokertls/error.hpp"
#include "config/config.hpp"

namespace brokertls {

// A JSON node with the path that leads to it, so every error can say where it is.
class ConfigNode {
  public:
    ConfigNode(const nlohmann::json& value, std::string path, const std::filesystem::path& file)
        : value_(value), path_(std::move(path)), file_(file) {}

    [[noreturn]] void error(const std::string& reason) const {
        fail(ErrorKind::Input,
             file_.filename().string() + ": " + (path_.empty() ? "(top level)" : path_), reason);
    }
    const nlohmann::json& value() const { return value_; }
    const std::string& path() const { return path_; }
    const std::filesystem::path& file() const { return file_; }

    ConfigNode field(const std::string& key) const {
        return ConfigNode(value_.at(key), join(key), file_);
    }
    bool has(const std::string& key) const { return value_.contains(key); }

    // Rejects unknown keys: a typo ("trust_anchor") must not silently disable a setting.
    void only_keys(std::initializer_list<const char*> keys) const {
        expect_object();
        for (const auto& item : value_.items()) {
            // Not a structured binding: clang 14 (the fuzz build) cannot capture one.
            const std::string& k = item.key();
            if (std::find_if(keys.begin(), keys.end(), [&](const char* a) { return k == a; }) ==
                keys.end())
                ConfigNode(item.value(), join(k), file_).error("unknown field");
        }
    }
    void expect_object() const {
        if (!value_.is_object()) error("must be an object");
    }
    std::string string() const {
        if (!value_.is_string()) error("must be a string");
        return value_.get<std::string>();
    }
    bool boolean() const {
        if (!value_.is_boolean()) error("must be true or false");
        return value_.get<bool>();
    }
    int integer(int min, int max) const {
        if (!value_.is_number_integer() || value_.get<long long>() < min ||
            value_.get<long long>() > max)
            error("must be a whole number from " + std::to_string(min) + " to " +
                  std::to_string(max));
        return value_.get<int>();
    }
    std::vector<ConfigNode> array() const {
        if (!value_.is_array()) error("must be an array");
        std::vector<ConfigNode> items;
        for (size_t i = 0; i < value_.size(); ++i)
            items.emplace_back(value_[i], path_ + "[" + std::to_string(i) + "]", file_);
        return items;
    }
    std::vector<std::pair<std::string, ConfigNode>> members() const {
        expect_object();
        std::vector<std::pair<std::string, ConfigNode>> out;
        for (const auto& [k, v] : value_.items())
            out.emplace_back(k, ConfigNode(v, join(k), file_));
        return out;
    }
    std::filesystem::path path_value(bool must_exist) const {
        std::string text = string();
        if (text.empty()) error("must not be empty");
        std::filesystem::path p = text;
        if (p.is_relative()) p = file_.parent_path() / p;
        if (must_exist && !std::filesystem::exists(p)) error("file not found (" + p.string() + ")");
        return p;
    }

  private:
    std::string join(const std::string& key) const {
        return path_.empty() ? key : path_ + "." + key;
    }
    const nlohmann::json& value_;
    std::string path_;
    const std::filesystem::path& file_;
};

// JSON text to a document. A syntax error names its line and column; a key given twice in one
// object is refused (nlohmann would keep the last one silently).
nlohmann::json parse_json_strictly(const std::string& text, const std::filesystem::path& file);

// A duration: "90d", "12h", "30m", "45s" or a number of seconds.
std::chrono::seconds duration_field(const ConfigNode& node);
// Also "500ms".
std::chrono::milliseconds duration_ms_field(const ConfigNode& node);
// "host:port", "[v6]:port" or a bare host (when the port may default); port 0 (any free port)
// only when `allow_any_port`.
std::string endpoint_field(const ConfigNode& node, bool port_required, bool allow_any_port = false);
// An ACME issuer (`issuers.NAME` of brokertls.json) and its challenge.
ChallengeConfig parse_challenge(const ConfigNode& node);
IssuerConfig parse_issuer(const std::string& name, const ConfigNode& node);
// brokertls.json's `gateway`, checked against the profiles of `config` (parsed before it).
GatewayConfig parse_gateway(const ConfigNode& node, const Config& config);

}  // namespace brokertls
