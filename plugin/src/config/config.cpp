#include "brokertls/config/config.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "brokertls/crypto/certificate.hpp"
#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"

namespace brokertls {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A JSON node with the path that leads to it, so every error can say where it is.
class Node {
  public:
    Node(const json& value, std::string path, const fs::path& file)
        : value_(value), path_(std::move(path)), file_(file) {}

    [[noreturn]] void error(const std::string& reason) const {
        fail(ErrorKind::Input,
             file_.filename().string() + ": " + (path_.empty() ? "(top level)" : path_), reason);
    }
    const json& value() const { return value_; }
    const std::string& path() const { return path_; }

    Node field(const std::string& key) const { return Node(value_.at(key), join(key), file_); }
    bool has(const std::string& key) const { return value_.contains(key); }

    // Rejects unknown keys: a typo ("trust_anchor") must not silently disable a setting.
    void only_keys(std::initializer_list<const char*> keys) const {
        expect_object();
        for (const auto& [k, v] : value_.items())
            if (std::find_if(keys.begin(), keys.end(), [&](const char* a) { return k == a; }) ==
                keys.end())
                Node(v, join(k), file_).error("unknown field");
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
    std::vector<Node> array() const {
        if (!value_.is_array()) error("must be an array");
        std::vector<Node> items;
        for (size_t i = 0; i < value_.size(); ++i)
            items.emplace_back(value_[i], path_ + "[" + std::to_string(i) + "]", file_);
        return items;
    }
    std::vector<std::pair<std::string, Node>> members() const {
        expect_object();
        std::vector<std::pair<std::string, Node>> out;
        for (const auto& [k, v] : value_.items()) out.emplace_back(k, Node(v, join(k), file_));
        return out;
    }
    fs::path path_value(bool must_exist) const {
        std::string text = string();
        if (text.empty()) error("must not be empty");
        fs::path p = text;
        if (p.is_relative()) p = file_.parent_path() / p;
        if (must_exist && !fs::exists(p)) error("file not found (" + p.string() + ")");
        return p;
    }

  private:
    std::string join(const std::string& key) const {
        return path_.empty() ? key : path_ + "." + key;
    }
    const json& value_;
    std::string path_;
    const fs::path& file_;
};

SecurityProfile parse_security_profile(const std::string& name, const Node& node) {
    node.only_keys({"require_client_certificate", "trust_anchors", "intermediates", "crls",
                    "required_eku", "max_chain_depth", "allow_fingerprints", "deny_fingerprints",
                    "identity", "client_id_must_match_identity", "comment"});
    SecurityProfile p;
    p.name = name;
    if (node.has("require_client_certificate"))
        p.require_client_certificate = node.field("require_client_certificate").boolean();
    if (node.has("trust_anchors"))
        for (const auto& item : node.field("trust_anchors").array())
            p.trust_anchors.push_back(item.path_value(true));
    if (node.has("intermediates"))
        for (const auto& item : node.field("intermediates").array())
            p.intermediates.push_back(item.path_value(true));
    if (node.has("crls"))
        for (const auto& item : node.field("crls").array()) p.crls.push_back(item.path_value(true));
    if (node.has("required_eku")) p.required_eku = node.field("required_eku").string();
    if (node.has("max_chain_depth"))
        p.max_chain_depth = node.field("max_chain_depth").integer(1, 16);
    for (auto [key, target] : {std::pair{"allow_fingerprints", &p.allow_fingerprints},
                               {"deny_fingerprints", &p.deny_fingerprints}}) {
        if (!node.has(key)) continue;
        for (const auto& item : node.field(key).array()) {
            std::string fp = normalize_fingerprint(item.string());
            if (fp.empty()) item.error("not a SHA-256 fingerprint (64 hex digits, colons allowed)");
            target->push_back(fp);
        }
    }
    if (node.has("identity")) {
        Node id = node.field("identity");
        auto source = parse_identity_source(id.string());
        if (!source) id.error("must be one of " + std::string(identity_source_names()));
        p.identity = *source;
    }
    if (node.has("client_id_must_match_identity"))
        p.client_id_must_match_identity = node.field("client_id_must_match_identity").boolean();
    if (p.require_client_certificate && p.trust_anchors.empty())
        node.error("require_client_certificate is true but trust_anchors is empty");
    return p;
}

std::chrono::seconds duration_field(const Node& node) {
    if (node.value().is_number_integer())
        return std::chrono::seconds(node.integer(1, 20 * 365 * 86400));
    auto d = parse_duration(node.string());
    if (!d) node.error("must be a duration such as \"90d\", \"12h\", \"30m\", \"45s\"");
    return *d;
}

CertificateProfileConfig parse_certificate_profile(const std::string& name, const Node& node) {
    node.only_keys(
        {"source", "files", "local_ca", "names", "key_type", "renew_before", "deploy", "comment"});
    CertificateProfileConfig c;
    c.name = name;
    if (!node.has("source")) node.error("needs \"source\": \"files\" or \"local-ca\"");
    Node source = node.field("source");
    std::string s = source.string();
    if (s == "files") {
        c.source = CertificateSource::Files;
        if (!node.has("files")) node.error("source \"files\" needs \"files\": {\"key\", \"cert\"}");
        Node files = node.field("files");
        files.only_keys({"key", "cert", "chain"});
        if (!files.has("key") || !files.has("cert")) files.error("needs \"key\" and \"cert\"");
        c.key_file = files.field("key").path_value(true);
        c.cert_file = files.field("cert").path_value(true);
        if (files.has("chain")) c.chain_file = files.field("chain").path_value(true);
    } else if (s == "local-ca") {
        c.source = CertificateSource::LocalCa;
        if (!node.has("local_ca")) node.error("source \"local-ca\" needs \"local_ca\": {\"dir\"}");
        Node ca = node.field("local_ca");
        ca.only_keys({"dir", "lifetime", "passphrase_file"});
        if (!ca.has("dir")) ca.error("needs \"dir\" (a brokertls-ca directory)");
        c.ca_dir = ca.field("dir").path_value(true);
        if (ca.has("lifetime")) c.lifetime = duration_field(ca.field("lifetime"));
        if (ca.has("passphrase_file"))
            c.ca_passphrase_file = ca.field("passphrase_file").path_value(true);
    } else if (s == "acme") {
        source.error("\"acme\" is not supported yet (it comes with the ACME issuer)");
    } else {
        source.error("must be \"files\" or \"local-ca\"");
    }
    if (node.has("names"))
        for (const auto& item : node.field("names").array()) {
            try {
                c.names.push_back(classify_name(item.string()));
            } catch (const Error& e) {
                item.error(e.what());
            }
        }
    if (c.source == CertificateSource::LocalCa && c.names.empty())
        node.error("source \"local-ca\" needs \"names\"");
    if (node.has("key_type")) {
        Node kt = node.field("key_type");
        auto type = parse_key_type(kt.string());
        if (!type) kt.error("must be one of " + std::string(key_type_names()));
        c.key_type = *type;
    }
    if (node.has("renew_before")) c.renew_before = duration_field(node.field("renew_before"));
    if (c.renew_before >= c.lifetime && c.source == CertificateSource::LocalCa)
        node.field("renew_before").error("must be shorter than local_ca.lifetime");
    if (!node.has("deploy"))
        node.error("needs \"deploy\": {\"cert\", \"key\"} (the paths the broker listener reads)");
    Node deploy = node.field("deploy");
    deploy.only_keys({"cert", "key"});
    if (!deploy.has("cert") || !deploy.has("key")) deploy.error("needs \"cert\" and \"key\"");
    c.deploy_cert = deploy.field("cert").path_value(false);
    c.deploy_key = deploy.field("key").path_value(false);
    return c;
}

}  // namespace

std::optional<std::chrono::seconds> parse_duration(const std::string& text) {
    if (text.empty()) return std::nullopt;
    long n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || n <= 0) return std::nullopt;
    std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
    if (unit.empty() || unit == "s") return std::chrono::seconds(n);
    if (unit == "m") return std::chrono::minutes(n);
    if (unit == "h") return std::chrono::hours(n);
    if (unit == "d") return std::chrono::hours(24 * n);
    return std::nullopt;
}

Config parse_config(const std::string& text, const fs::path& file) {
    json root = json::parse(text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
    if (root.is_discarded()) fail(ErrorKind::Input, file.filename().string(), "not valid JSON");
    Node top(root, "", file);
    top.only_keys({"security_profiles", "certificate_profiles", "capath", "control", "comment"});
    Config config;
    config.file = file;
    if (top.has("security_profiles"))
        for (const auto& [name, node] : top.field("security_profiles").members())
            config.security_profiles.emplace(name, parse_security_profile(name, node));
    if (top.has("certificate_profiles"))
        for (const auto& [name, node] : top.field("certificate_profiles").members())
            config.certificate_profiles.emplace(name, parse_certificate_profile(name, node));
    if (top.has("capath")) config.capath = top.field("capath").path_value(false);
    if (top.has("control")) {
        Node control = top.field("control");
        control.only_keys({"allow", "comment"});
        if (control.has("allow"))
            for (const auto& item : control.field("allow").array())
                config.control_allow.push_back(item.string());
    }
    if (config.security_profiles.empty() && config.certificate_profiles.empty())
        top.error("defines no security_profiles and no certificate_profiles");
    return config;
}

Config load_config(const fs::path& file) {
    return parse_config(read_file(file), file);
}

}  // namespace brokertls
