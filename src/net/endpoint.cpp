#include "promptcache/net/endpoint.hpp"

#include <charconv>

#include <fmt/format.h>

#include "promptcache/net/config.hpp"

namespace promptcache::net {

std::string Endpoint::to_string() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

std::optional<Endpoint> parse_endpoint(std::string_view text,
                                       std::optional<std::uint16_t> default_port) {
  // The port follows the last colon outside brackets: "[::1]:6379", "[::1]", "host:6379".
  const auto colon = text.rfind(':');
  const auto close = text.rfind(']');
  const bool has_port =
      colon != std::string_view::npos && (close == std::string_view::npos || close < colon);
  std::string_view host = has_port ? text.substr(0, colon) : text;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return std::nullopt;
  if (!has_port) {
    if (!default_port) return std::nullopt;
    return Endpoint{std::string(host), *default_port};
  }
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  return Endpoint{std::string(host), static_cast<std::uint16_t>(port)};
}

std::vector<Endpoint> parse_endpoint_list(std::string_view name, std::string_view text,
                                          std::optional<std::uint16_t> default_port) {
  std::vector<Endpoint> out;
  std::string_view rest = text;
  for (;;) {
    const auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    auto endpoint = parse_endpoint(item, default_port);
    if (!endpoint) {
      throw ConfigError(fmt::format("{}: {:?} is not {} (expected a comma-separated list)", name,
                                    std::string(item), default_port ? "host[:port]" : "host:port"));
    }
    out.push_back(std::move(*endpoint));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

}  // namespace promptcache::net
