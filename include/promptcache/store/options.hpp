// What the stores are configured with, apart from the stores themselves: a configuration
// (cache/config.hpp) names these without compiling the clients behind them.
#pragma once

#include <chrono>
#include <cstddef>

namespace promptcache::store {

// The in-process store's bounds: past either, the least recently used entries go.
struct LocalStoreOptions {
  std::size_t max_entries = 100000;
  std::size_t max_bytes = 256u * 1024 * 1024;  // keys + values
};

struct ClusterOptions {
  // Besides the refreshes that redirects and failures trigger, the slot map is reloaded this
  // often (0: never).
  std::chrono::milliseconds refresh_period{10000};
  // Reads (GET) go to a replica of the key's shard (READONLY connections; round robin), or to
  // its master when it has none online. Replicas lag: a read may miss a write just made.
  bool read_from_replicas = false;
};

}  // namespace promptcache::store
