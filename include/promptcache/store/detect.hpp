// Whether a Redis server is a cluster node (INFO's cluster_enabled), so that one address in
// REDIS_URL serves a standalone server and a cluster alike.
#pragma once

#include <string>

#include "promptcache/net/config.hpp"
#include "promptcache/store/store.hpp"

namespace promptcache::store {

// Connects once to `cfg`'s server and asks INFO cluster, blocking the calling thread on a
// private event loop (for start-up code). An error when it cannot be reached; `detail` then
// says why (no credentials).
[[nodiscard]] Result<bool> probe_cluster_enabled_blocking(const net::ClientConfig& cfg,
                                                          std::string& detail);

}  // namespace promptcache::store
