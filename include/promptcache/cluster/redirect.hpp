// What a cluster node's error reply asks the client to do: follow a MOVED or ASK redirect,
// wait and retry (TRYAGAIN, CLUSTERDOWN, LOADING), or refresh the slot map (READONLY: the node
// became a replica). Any other error is the command's own.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "promptcache/cluster/slot_map.hpp"

namespace promptcache::cluster {

struct Redirect {
  enum class Kind : std::uint8_t { moved, ask, try_again, readonly };
  Kind kind;
  std::uint16_t slot = 0;  // moved, ask
  NodeAddress target;      // moved, ask
};

// The redirect an error reply's text carries ("MOVED 3999 127.0.0.1:6381"), or nullopt when it
// is an ordinary error (or a malformed redirect, which is treated as one).
[[nodiscard]] std::optional<Redirect> parse_redirect(std::string_view error) noexcept;

}  // namespace promptcache::cluster
