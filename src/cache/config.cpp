#include "promptcache/cache/config.hpp"

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
    std::string_view rest = *nodes;
    for (;;) {
      const auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      auto address = cluster::parse_address(item);
      if (!address) {
        throw net::ConfigError(fmt::format(
            "REDIS_CLUSTER_NODES: {:?} is not host:port (expected host:port,host:port,...)",
            std::string(item)));
      }
      cfg.cluster_nodes.push_back(std::move(*address));
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  if (getenv("REDIS_URL") || getenv("REDIS_HOST") || !cfg.cluster_nodes.empty()) {
    cfg.redis = std::move(redis);
  }

  if (auto v = getenv("PROMPTCACHE_DEFAULT_TTL")) {
    cfg.default_ttl =
        std::chrono::seconds(parse_int<std::int64_t>("PROMPTCACHE_DEFAULT_TTL", *v, 0, 1ll << 40));
  }
  if (auto v = getenv("PROMPTCACHE_COMPRESS_THRESHOLD")) {
    cfg.codec.compress_threshold =
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
    cfg.breaker.failure_threshold =
        parse_int<unsigned>("PROMPTCACHE_BREAKER_FAILURES", *v, 1, 1000000);
  }
  if (auto v = getenv("PROMPTCACHE_BREAKER_OPEN_SECONDS")) {
    cfg.breaker.open_for = parse_seconds("PROMPTCACHE_BREAKER_OPEN_SECONDS", *v, false);
    cfg.breaker.max_open_for = std::max(cfg.breaker.max_open_for, cfg.breaker.open_for);
  }
  return cfg;
}

}  // namespace promptcache::cache
