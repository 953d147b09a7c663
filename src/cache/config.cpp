#include "promptcache/cache/config.hpp"

#include "promptcache/store/factory.hpp"

#include <fmt/format.h>

#include "net/env_values.hpp"

namespace promptcache::cache {

CacheConfig CacheConfig::from_env(const net::ClientConfig::Getenv& getenv) {
  using net::parse_int;
  using net::parse_seconds;
  CacheConfig cfg;
  // REDIS_* are validated whether or not they select Redis: a typo is never silent.
  net::ClientConfig redis = net::ClientConfig::from_env(getenv);
  if (auto nodes = getenv("REDIS_CLUSTER_NODES")) {
    cfg.cluster_nodes = net::parse_endpoint_list("REDIS_CLUSTER_NODES", *nodes);
    if (!redis.seeds.empty() || redis.sentinel) {
      throw net::ConfigError(
          "REDIS_CLUSTER_NODES: REDIS_URL names several hosts or sentinels already; set one of "
          "the two");
    }
  } else {
    cfg.cluster_nodes = redis.seeds;
  }
  if (getenv("REDIS_URL") || getenv("REDIS_HOST") || getenv("REDIS_SENTINELS") ||
      !cfg.cluster_nodes.empty()) {
    cfg.redis = std::move(redis);
  }

  if (auto v = getenv("REDIS_READ_FROM_REPLICAS")) {
    cfg.cluster.read_from_replicas = net::parse_bool("REDIS_READ_FROM_REPLICAS", *v);
  }
  if (auto v = getenv("REDIS_CLUSTER_REFRESH_SECONDS")) {
    cfg.cluster.refresh_period = parse_seconds("REDIS_CLUSTER_REFRESH_SECONDS", *v, true);
  }
  if (auto v = getenv("PROMPTCACHE_DEFAULT_TTL")) {
    cfg.service.default_ttl =
        std::chrono::seconds(parse_int<std::int64_t>("PROMPTCACHE_DEFAULT_TTL", *v, 0, 1ll << 40));
  }
  if (auto v = getenv("PROMPTCACHE_TTL_JITTER_PERCENT")) {
    cfg.service.ttl_jitter = parse_int<int>("PROMPTCACHE_TTL_JITTER_PERCENT", *v, 0, 50) / 100.0;
  }
  if (auto v = getenv("PROMPTCACHE_NEGATIVE_TTL_SECONDS")) {
    cfg.service.negative_ttl = std::chrono::seconds(
        parse_int<std::int64_t>("PROMPTCACHE_NEGATIVE_TTL_SECONDS", *v, 0, 1ll << 40));
  }
  if (auto v = getenv("PROMPTCACHE_STALE_GRACE_SECONDS")) {
    cfg.service.stale_grace = std::chrono::seconds(
        parse_int<std::int64_t>("PROMPTCACHE_STALE_GRACE_SECONDS", *v, 0, 1ll << 40));
  }
  if (auto v = getenv("PROMPTCACHE_EARLY_REFRESH_PERCENT")) {
    cfg.service.early_refresh =
        parse_int<int>("PROMPTCACHE_EARLY_REFRESH_PERCENT", *v, 0, 50) / 100.0;
  }
  if (auto v = getenv("PROMPTCACHE_LEASE_MS")) {
    cfg.service.lease = std::chrono::milliseconds(
        parse_int<std::int64_t>("PROMPTCACHE_LEASE_MS", *v, 0, 3600 * 1000));
  }
  if (auto v = getenv("PROMPTCACHE_TOMBSTONE_SECONDS")) {
    cfg.service.tombstone_ttl = std::chrono::seconds(
        parse_int<std::int64_t>("PROMPTCACHE_TOMBSTONE_SECONDS", *v, 2, 1ll << 31));
  }
  if (auto v = getenv("PROMPTCACHE_NEAR_CACHE");
      v && net::parse_bool("PROMPTCACHE_NEAR_CACHE", *v)) {
    NearCacheOptions near;
    if (auto n = getenv("PROMPTCACHE_NEAR_MAX_ENTRIES")) {
      near.max_entries = parse_int<std::size_t>("PROMPTCACHE_NEAR_MAX_ENTRIES", *n, 1, 1ll << 32);
    }
    if (auto n = getenv("PROMPTCACHE_NEAR_MAX_BYTES")) {
      near.max_bytes = parse_int<std::size_t>("PROMPTCACHE_NEAR_MAX_BYTES", *n, 4096, 1ll << 40);
    }
    if (auto n = getenv("PROMPTCACHE_NEAR_MAX_TTL_SECONDS")) {
      near.max_ttl = std::chrono::seconds(
          parse_int<std::int64_t>("PROMPTCACHE_NEAR_MAX_TTL_SECONDS", *n, 1, 1ll << 31));
    }
    cfg.near = near;
  }
  if (auto v = getenv("PROMPTCACHE_NEAR_BCAST_PREFIXES")) {
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
  if (auto v = getenv("PROMPTCACHE_COMPRESS_THRESHOLD")) {
    cfg.service.codec.compress_threshold =
        parse_int<std::size_t>("PROMPTCACHE_COMPRESS_THRESHOLD", *v, 0, 1ll << 40);
  }
  if (auto v = getenv("PROMPTCACHE_LOCAL_MAX_ENTRIES")) {
    cfg.local.max_entries =
        parse_int<std::size_t>("PROMPTCACHE_LOCAL_MAX_ENTRIES", *v, 1, 1ll << 40);
  }
  if (auto v = getenv("PROMPTCACHE_LOCAL_MAX_BYTES")) {
    cfg.local.max_bytes =
        parse_int<std::size_t>("PROMPTCACHE_LOCAL_MAX_BYTES", *v, 1024, 1ll << 50);
  }
  if (auto v = getenv("PROMPTCACHE_BREAKER_FAILURES")) {
    cfg.service.breaker.failure_threshold =
        parse_int<unsigned>("PROMPTCACHE_BREAKER_FAILURES", *v, 1, 1000000);
  }
  if (auto v = getenv("PROMPTCACHE_BREAKER_OPEN_SECONDS")) {
    cfg.service.breaker.open_for = parse_seconds("PROMPTCACHE_BREAKER_OPEN_SECONDS", *v, false);
    cfg.service.breaker.max_open_for =
        std::max(cfg.service.breaker.max_open_for, cfg.service.breaker.open_for);
  }
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
