#include "args.hpp"

#include <charconv>

#include "brokertls/error.hpp"

namespace brokertls::cli {

Args::Args(const std::vector<std::string>& argv, const OptionSpec& spec) {
    bool only_positional = false;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        if (only_positional || arg.size() < 2 || arg[0] != '-' || arg == "-") {
            positional_.push_back(arg);
            continue;
        }
        if (arg == "--") {
            only_positional = true;
            continue;
        }
        std::string name = arg;
        std::optional<std::string> inline_value;
        if (size_t eq = arg.find('='); eq != std::string::npos) {
            name = arg.substr(0, eq);
            inline_value = arg.substr(eq + 1);
        }
        if (spec.flags.count(name)) {
            if (inline_value) fail(ErrorKind::Usage, name, "takes no value");
            flags_.insert(name);
        } else if (spec.with_value.count(name)) {
            if (!inline_value) {
                if (i + 1 >= argv.size()) fail(ErrorKind::Usage, name, "needs a value");
                inline_value = argv[++i];
            }
            values_.emplace(name, *inline_value);
        } else {
            fail(ErrorKind::Usage, name, "unknown option (see --help)");
        }
    }
}

std::optional<std::string> Args::value(const std::string& name) const {
    auto range = values_.equal_range(name);
    if (range.first == range.second) return std::nullopt;
    if (std::next(range.first) != range.second)
        fail(ErrorKind::Usage, name, "given more than once");
    return range.first->second;
}

std::vector<std::string> Args::values(const std::string& name) const {
    std::vector<std::string> out;
    for (auto [it, end] = values_.equal_range(name); it != end; ++it) out.push_back(it->second);
    return out;
}

std::optional<int> Args::number(const std::string& name, int min, int max) const {
    std::optional<std::string> text = value(name);
    if (!text) return std::nullopt;
    int n = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
    if (ec != std::errc() || end != text->data() + text->size() || n < min || n > max)
        fail(ErrorKind::Usage, name + " " + *text,
             "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max));
    return n;
}

}  // namespace brokertls::cli
