#pragma once

#include <string_view>

namespace brokertls::cli {

// The --help text of a command ("" for the overview); empty view for an unknown command.
std::string_view help_for(std::string_view command);

}  // namespace brokertls::cli
