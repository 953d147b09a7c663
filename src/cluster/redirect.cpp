#include "promptcache/cluster/redirect.hpp"

#include <charconv>

namespace promptcache::cluster {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// "<slot> <host:port>" after MOVED or ASK.
std::optional<Redirect> slot_and_target(Redirect::Kind kind, std::string_view rest) {
  const auto space = rest.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  unsigned slot = 0;
  const std::string_view slot_text = rest.substr(0, space);
  auto [end, ec] = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot);
  if (ec != std::errc() || end != slot_text.data() + slot_text.size() || slot >= slot_count) {
    return std::nullopt;
  }
  auto target = parse_address(rest.substr(space + 1));
  if (!target) return std::nullopt;
  return Redirect{kind, static_cast<std::uint16_t>(slot), std::move(*target)};
}

}  // namespace

std::optional<Redirect> parse_redirect(std::string_view error) noexcept {
  try {
    if (starts_with(error, "MOVED "))
      return slot_and_target(Redirect::Kind::moved, error.substr(6));
    if (starts_with(error, "ASK ")) return slot_and_target(Redirect::Kind::ask, error.substr(4));
    if (starts_with(error, "TRYAGAIN") || starts_with(error, "CLUSTERDOWN") ||
        starts_with(error, "LOADING")) {
      return Redirect{Redirect::Kind::try_again, 0, {}};
    }
    if (starts_with(error, "READONLY")) return Redirect{Redirect::Kind::readonly, 0, {}};
  } catch (...) {  // a host name too large to copy: an ordinary error then
  }
  return std::nullopt;
}

}  // namespace promptcache::cluster
