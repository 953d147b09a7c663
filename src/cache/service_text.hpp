// What both halves of ServiceCore (service_core.cpp, service_load.cpp) read stored text with.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace promptcache::cache::detail {

// Keys may hold anything a user sent: quoted and escaped for a log line.
[[nodiscard]] std::string loggable(std::string_view key);
// JSON text to a value, in one arena sized for it (nullopt: not JSON).
[[nodiscard]] std::optional<boost::json::value> parse_value(std::string_view text);
// The text itself when it is one JSON document (nullopt otherwise).
[[nodiscard]] std::optional<std::string> checked_text(std::string_view text);

using ParseValue = std::optional<boost::json::value> (*)(std::string_view);
using ParseText = std::optional<std::string> (*)(std::string_view);

}  // namespace promptcache::cache::detail
