// The one place a store is chosen: the in-process store, one Redis server (standalone or the
// master a Sentinel names) or a Redis Cluster. The library (PromptCacheService::from_config),
// `serve`, the operator commands and `bench` all come here, so they agree on what a
// configuration means.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "promptcache/net/config.hpp"
#include "promptcache/net/endpoint.hpp"
#include "promptcache/store/options.hpp"
#include "promptcache/store/store.hpp"

namespace promptcache::store {

// What the choice is made from (cache::CacheConfig::store_spec() fills it from the environment).
struct StoreSpec {
  std::optional<net::ClientConfig> redis;  // none: the in-process store
  // Several nodes: a cluster, these asked for the slot map first. Empty: one server — unless
  // it says it is a cluster node (asked once, blocking, up to its connect timeout).
  std::vector<net::Endpoint> cluster_nodes;
  ClusterOptions cluster;
  LocalStoreOptions local;
  // The listener of the clients' CLIENT TRACKING stream (a near tier), if any, and the BCAST
  // prefixes it tracks (empty: the keys read).
  std::shared_ptr<net::TrackingListener> tracking;
  std::vector<std::string> bcast_prefixes;
};

// The store `spec` names, its clients on `executors`. Nothing is connected yet: Store::connect()
// does that at once where a caller must know (the operator commands), the first command
// otherwise.
[[nodiscard]] std::shared_ptr<Store> make_store(
    const StoreSpec& spec, const std::vector<boost::asio::any_io_executor>& executors);

}  // namespace promptcache::store
