#include "promptcache/cache/config.hpp"

#include "promptcache/store/factory.hpp"

#include <fmt/format.h>

#include "net/env_values.hpp"

namespace promptcache::cache {

namespace {

// Where the cache lives: REDIS_* (validated whether or not they select Redis: a typo is never
// silent), the cluster's nodes and options; the in-process store otherwise.
void read_store(CacheConfig& cfg, const net::ClientConfig::Getenv& getenv,
                const net::EnvReader& env) {
  net::ClientConfig redis = net::ClientConfig::from_env(getenv);
  if (auto nodes = env.text("REDIS_CLUSTER_NODES")) {
    cfg.cluster_nodes = net::parse_endpoint_list("REDIS_CLUSTER_NODES", *nodes);
    if (!redis.seeds.empty() || redis.sentinel) {
      throw net::ConfigError(
          "REDIS_CLUSTER_NODES: REDIS_URL names several hosts or sentinels already; set one of "
          "the two");
    }
  } else {
    cfg.cluster_nodes = redis.seeds;
  }
  if (env.text("REDIS_URL") || env.text("REDIS_HOST") || env.text("REDIS_SENTINELS") ||
      !cfg.cluster_nodes.empty()) {
    cfg.redis = std::move(redis);
  }
  env.flag("REDIS_READ_FROM_REPLICAS", cfg.cluster.read_from_replicas);
  env.seconds("REDIS_CLUSTER_REFRESH_SECONDS", cfg.cluster.refresh_period, true);
  env.integer("PROMPTCACHE_LOCAL_MAX_ENTRIES", cfg.local.max_entries, 1, 1ll << 40);
  env.integer("PROMPTCACHE_LOCAL_MAX_BYTES", cfg.local.max_bytes, 1024, 1ll << 50);
}

void read_service(ServiceOptions& service, const net::EnvReader& env) {
  env.count("PROMPTCACHE_DEFAULT_TTL", service.default_ttl, 0, 1ll << 40);
  env.flag("PROMPTCACHE_TRACE_REDIS", service.redis_command_spans);
  env.percent("PROMPTCACHE_TTL_JITTER_PERCENT", service.ttl_jitter, 50);
  env.count("PROMPTCACHE_NEGATIVE_TTL_SECONDS", service.negative_ttl, 0, 1ll << 40);
  env.count("PROMPTCACHE_STALE_GRACE_SECONDS", service.stale_grace, 0, 1ll << 40);
  env.percent("PROMPTCACHE_EARLY_REFRESH_PERCENT", service.early_refresh, 50);
  env.count("PROMPTCACHE_LEASE_MS", service.lease, 0, 3600 * 1000);
  env.count("PROMPTCACHE_TOMBSTONE_SECONDS", service.tombstone_ttl, 2, 1ll << 31);
  env.integer("PROMPTCACHE_COMPRESS_THRESHOLD", service.codec.compress_threshold, 0, 1ll << 40);
  env.integer("PROMPTCACHE_BREAKER_FAILURES", service.breaker.failure_threshold, 1, 1000000);
  if (env.text("PROMPTCACHE_BREAKER_OPEN_SECONDS")) {
    env.seconds("PROMPTCACHE_BREAKER_OPEN_SECONDS", service.breaker.open_for, false);
    service.breaker.max_open_for = std::max(service.breaker.max_open_for, service.breaker.open_for);
  }
}

void read_near(CacheConfig& cfg, const net::EnvReader& env) {
  bool on = false;
  env.flag("PROMPTCACHE_NEAR_CACHE", on);
  if (on) {
    NearCacheOptions near;
    env.integer("PROMPTCACHE_NEAR_MAX_ENTRIES", near.max_entries, 1, 1ll << 32);
    env.integer("PROMPTCACHE_NEAR_MAX_BYTES", near.max_bytes, 4096, 1ll << 40);
    std::chrono::seconds max_ttl = std::chrono::duration_cast<std::chrono::seconds>(near.max_ttl);
    env.count("PROMPTCACHE_NEAR_MAX_TTL_SECONDS", max_ttl, 1, 1ll << 31);
    near.max_ttl = max_ttl;
    cfg.near = near;
  }
  if (auto v = env.text("PROMPTCACHE_NEAR_BCAST_PREFIXES")) {
    std::string_view rest = *v;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view prefix = rest.substr(0, comma);
      if (prefix.empty()) {
        throw net::ConfigError("PROMPTCACHE_NEAR_BCAST_PREFIXES: an empty prefix");
      }
      cfg.near_bcast_prefixes.emplace_back(prefix);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
}

}  // namespace

CacheConfig CacheConfig::from_env(const net::ClientConfig::Getenv& getenv) {
  const net::EnvReader env(getenv);
  CacheConfig cfg;
  read_store(cfg, getenv, env);
  read_service(cfg.service, env);
  read_near(cfg, env);
  cfg.tracing = telemetry::OtlpConfig::from_env(getenv);
  return cfg;
}

store::StoreSpec CacheConfig::store_spec(std::shared_ptr<net::TrackingListener> tracking) const {
  store::StoreSpec spec;
  spec.redis = redis;
  spec.cluster_nodes = cluster_nodes;
  spec.cluster = cluster;
  spec.local = local;
  spec.tracking = std::move(tracking);
  spec.bcast_prefixes = near_bcast_prefixes;
  return spec;
}

}  // namespace promptcache::cache
