// Everything the cache service is configured with, read and validated from the environment
// up front: a bad value is a startup error naming its variable.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "promptcache/cache/circuit_breaker.hpp"
#include "promptcache/cache/envelope.hpp"
#include "promptcache/cache/near_cache.hpp"
#include "promptcache/net/config.hpp"
#include "promptcache/net/endpoint.hpp"
#include "promptcache/store/options.hpp"
#include "promptcache/telemetry/otlp.hpp"

namespace promptcache::store {
struct StoreSpec;
}  // namespace promptcache::store

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
  // get_or_load: how long a "not found" from the loader is remembered (a marker of its own,
  // never confused with a value). 0: not remembered.
  std::chrono::seconds negative_ttl{60};
  // Entries stay in the store this long past their TTL, stale: a read treats them as missing,
  // but when the loader then fails the stale value is served (and counted). 0: none.
  std::chrono::seconds stale_grace{0};
  // get_or_load / get_with_fallback: a value read in the last `early_refresh` part of its TTL is
  // refreshed in the background with a probability that grows to 1 at its expiry, while the
  // read returns it; the loader must then own what it captures. 0: off.
  double early_refresh = 0;
  // Across processes: a miss takes a Redis lease (SET NX PX, this long) before loading; a
  // process that finds it taken polls the cache (2 ms doubling to 50 ms) until the value comes
  // or the lease expires. 0: off (single-flight within the process only).
  std::chrono::milliseconds lease{0};
  // delete_versioned: how long a tombstone keeps older fills out. A fill that read the source
  // of truth more than half of this ago is dropped by the store (its clock), so no fill can
  // outlive the tombstone that must stop it. At least 2 s.
  std::chrono::seconds tombstone_ttl{60};
  // A CLIENT span for each call an operation makes to Redis, named by the command it sends
  // (GET, SET, EVALSHA…; db.system redis), a child of the operation's span: for debugging
  // (each traced read then records two spans), off by default. PROMPTCACHE_TRACE_REDIS.
  bool redis_command_spans = false;
};

// CacheConfig{} is the in-process store (no Redis): for tests and single-process programs;
// CacheConfig::from_env() reads the variables below.
struct CacheConfig {
  // Redis when REDIS_URL, REDIS_HOST, REDIS_SENTINELS or REDIS_CLUSTER_NODES is set;
  // otherwise the in-process store.
  std::optional<net::ClientConfig> redis;
  // REDIS_CLUSTER_NODES=host:port,host:port… (or several hosts in REDIS_URL): a Redis Cluster,
  // these nodes asked for the slot map first; `redis` then carries what every node shares
  // (credentials, TLS, timeouts). Empty: one server, unless it says it is a cluster node.
  std::vector<net::Endpoint> cluster_nodes;  // cluster::NodeAddress
  // REDIS_READ_FROM_REPLICAS (false), REDIS_CLUSTER_REFRESH_SECONDS (10; 0: no periodic reload).
  store::ClusterOptions cluster;
  LocalStoreOptions local;  // PROMPTCACHE_LOCAL_MAX_ENTRIES, PROMPTCACHE_LOCAL_MAX_BYTES
  // The service's own options: PROMPTCACHE_DEFAULT_TTL, _TTL_JITTER_PERCENT (0–50),
  // _COMPRESS_THRESHOLD, _BREAKER_FAILURES, _BREAKER_OPEN_SECONDS, _NEGATIVE_TTL_SECONDS,
  // _STALE_GRACE_SECONDS, _EARLY_REFRESH_PERCENT (0–50), _LEASE_MS, _TOMBSTONE_SECONDS,
  // PROMPTCACHE_TRACE_REDIS.
  ServiceOptions service;
  // The near tier (with Redis only): PROMPTCACHE_NEAR_CACHE=on, bounded by
  // PROMPTCACHE_NEAR_MAX_ENTRIES (10 000) and PROMPTCACHE_NEAR_MAX_BYTES (64 MiB), no entry kept
  // longer than PROMPTCACHE_NEAR_MAX_TTL_SECONDS (60) nor its Redis entry's TTL.
  std::optional<NearCacheOptions> near;
  // PROMPTCACHE_NEAR_BCAST_PREFIXES=prompt:,ml: — BCAST tracking of these prefixes (every
  // change under them is pushed, read or not) instead of tracking the keys read.
  std::vector<std::string> near_bcast_prefixes;
  // Span export to an OpenTelemetry collector: the OTEL_* variables (telemetry/otlp.hpp); off
  // unless OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is set. PromptCacheService::from_config makes
  // the exporter when no tracer is handed in.
  telemetry::OtlpConfig tracing;

  [[nodiscard]] const ServiceOptions& service_options() const noexcept { return service; }
  // What store::make_store chooses the store from (store/factory.hpp); `tracking`: the near
  // tier listening to the clients' invalidations, if any.
  [[nodiscard]] store::StoreSpec store_spec(
      std::shared_ptr<net::TrackingListener> tracking = nullptr) const;

  // Throws net::ConfigError naming the variable.
  [[nodiscard]] static CacheConfig from_env(
      const net::ClientConfig::Getenv& getenv = net::ClientConfig::system_getenv);
};

}  // namespace promptcache::cache
