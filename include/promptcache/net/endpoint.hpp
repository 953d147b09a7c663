// A server's host and port, as configuration, CLUSTER SHARDS, MOVED/ASK and Sentinel name them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace promptcache::net {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
  // "host:port", "[v6]:port".
  [[nodiscard]] std::string to_string() const;
};

// Parses "host:port" (and "[v6]:port"); without a port, `default_port` if given.
[[nodiscard]] std::optional<Endpoint> parse_endpoint(
    std::string_view text, std::optional<std::uint16_t> default_port = {});

// Parses "host[:port],host[:port]…" (spaces around items allowed). Throws ConfigError naming
// `name` for an empty list or a bad item.
[[nodiscard]] std::vector<Endpoint> parse_endpoint_list(
    std::string_view name, std::string_view text, std::optional<std::uint16_t> default_port = {});

}  // namespace promptcache::net
