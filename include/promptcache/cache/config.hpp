// Everything the cache service is configured with, read and validated from the environment
// up front (DESIGN.md §5): a bad value is a startup error naming its variable.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "promptcache/cache/circuit_breaker.hpp"
#include "promptcache/cache/envelope.hpp"
#include "promptcache/cluster/slot_map.hpp"
#include "promptcache/net/config.hpp"
#include "promptcache/store/cluster_store.hpp"
#include "promptcache/store/local_store.hpp"

namespace promptcache::cache {

using store::LocalStoreOptions;

// What the service itself is configured with (CacheConfig::service_options()).
struct ServiceOptions {
  std::chrono::seconds default_ttl{3600};
  CodecOptions codec;
  CircuitBreakerOptions breaker;
  // Each positive TTL is spread uniformly over ±this fraction of itself (never below 1 s), so
  // that entries written together do not expire together. 0: TTLs as given.
  double ttl_jitter = 0;
};

struct CacheConfig {
  // Redis when REDIS_URL, REDIS_HOST, REDIS_SENTINELS or REDIS_CLUSTER_NODES is set;
  // otherwise the in-process store.
  std::optional<net::ClientConfig> redis;
  // REDIS_CLUSTER_NODES=host:port,host:port… (or several hosts in REDIS_URL): a Redis Cluster,
  // these nodes asked for the slot map first; `redis` then carries what every node shares
  // (credentials, TLS, timeouts). Empty: one server, unless it says it is a cluster node.
  std::vector<cluster::NodeAddress> cluster_nodes;
  // REDIS_READ_FROM_REPLICAS (false), REDIS_CLUSTER_REFRESH_SECONDS (10; 0: no periodic reload).
  store::ClusterOptions cluster;
  std::chrono::seconds default_ttl{3600};  // PROMPTCACHE_DEFAULT_TTL
  double ttl_jitter = 0;    // PROMPTCACHE_TTL_JITTER_PERCENT (0–50) / 100: see ServiceOptions
  CodecOptions codec;       // PROMPTCACHE_COMPRESS_THRESHOLD (bytes)
  LocalStoreOptions local;  // PROMPTCACHE_LOCAL_MAX_ENTRIES, PROMPTCACHE_LOCAL_MAX_BYTES
  CircuitBreaker::Options
      breaker;  // PROMPTCACHE_BREAKER_FAILURES, PROMPTCACHE_BREAKER_OPEN_SECONDS

  [[nodiscard]] ServiceOptions service_options() const {
    return {default_ttl, codec, breaker, ttl_jitter};
  }

  // Throws net::ConfigError naming the variable.
  [[nodiscard]] static CacheConfig from_env(
      const net::ClientConfig::Getenv& getenv = net::ClientConfig::system_getenv);
};

}  // namespace promptcache::cache
