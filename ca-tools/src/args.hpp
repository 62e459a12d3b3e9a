#pragma once
// A small command-line parser: options are declared per command, so a typo is an error
// ("unknown option --dyas") rather than silently ignored.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace brokertls::cli {

struct OptionSpec {
    std::set<std::string> with_value;  // "--days" (also accepts "--days=N")
    std::set<std::string> flags;       // "--force"
};

class Args {
  public:
    // Throws Error(Usage) on an unknown option or a missing value.
    Args(const std::vector<std::string>& argv, const OptionSpec& spec);

    const std::vector<std::string>& positional() const { return positional_; }
    bool flag(const std::string& name) const { return flags_.count(name) > 0; }
    std::optional<std::string> value(const std::string& name) const;
    std::vector<std::string> values(const std::string& name) const;
    // The option as a whole number in [min, max]; throws Error(Usage) naming it.
    std::optional<int> number(const std::string& name, int min, int max) const;

  private:
    std::vector<std::string> positional_;
    std::multimap<std::string, std::string> values_;
    std::set<std::string> flags_;
};

}  // namespace brokertls::cli
