#include "promptcache/cache/config.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace promptcache::cache {
namespace {

using Env = std::map<std::string, std::string>;

CacheConfig load(const Env& env) {
  return CacheConfig::from_env([&](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

std::string error_of(const Env& env) {
  try {
    (void)load(env);
  } catch (const net::ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(CacheConfig, without_redis_variables_the_in_process_store_is_used) {
  const CacheConfig cfg = load({});
  EXPECT_FALSE(cfg.redis.has_value());
  EXPECT_EQ(cfg.service.default_ttl.count(), 3600);
  EXPECT_EQ(cfg.service.codec.compress_threshold, 1024u);
  EXPECT_EQ(cfg.service.breaker.failure_threshold, 5u);
}

TEST(CacheConfig, redis_url_or_host_selects_redis) {
  EXPECT_TRUE(load({{"REDIS_URL", "redis://h:7000"}}).redis.has_value());
  const CacheConfig cfg = load({{"REDIS_HOST", "cache.internal"}, {"REDIS_PORT", "6390"}});
  ASSERT_TRUE(cfg.redis.has_value());
  EXPECT_EQ(cfg.redis->host, "cache.internal");
  EXPECT_EQ(cfg.redis->port, 6390);
}

TEST(CacheConfig, redis_cluster_nodes_selects_a_cluster_with_the_shared_settings) {
  const CacheConfig cfg = load({{"REDIS_CLUSTER_NODES", "10.0.0.1:7000,redis-b:7001,[::1]:7002"},
                                {"REDIS_PASSWORD", "s3cret"},
                                {"REDIS_SOCKET_TIMEOUT", "0.25"}});
  ASSERT_TRUE(cfg.redis.has_value());
  EXPECT_EQ(cfg.redis->password, "s3cret");
  EXPECT_EQ(cfg.redis->command_timeout.count(), 250);
  const std::vector<promptcache::net::Endpoint> expected{
      {"10.0.0.1", 7000}, {"redis-b", 7001}, {"::1", 7002}};
  EXPECT_EQ(cfg.cluster_nodes, expected);
  EXPECT_TRUE(load({{"REDIS_URL", "redis://h:7000"}}).cluster_nodes.empty());
}

TEST(CacheConfig, ttl_jitter_is_a_percentage_from_0_to_50) {
  EXPECT_EQ(load({}).service.ttl_jitter, 0.0);
  EXPECT_DOUBLE_EQ(load({{"PROMPTCACHE_TTL_JITTER_PERCENT", "10"}}).service.ttl_jitter, 0.10);
  for (const std::string bad : {"-1", "51", "ten", "5.5", ""}) {
    EXPECT_NE(
        error_of({{"PROMPTCACHE_TTL_JITTER_PERCENT", bad}}).find("PROMPTCACHE_TTL_JITTER_PERCENT"),
        std::string::npos)
        << bad;
  }
}

TEST(CacheConfig, reads_the_cluster_options_and_names_a_bad_one) {
  const CacheConfig cfg =
      load({{"REDIS_READ_FROM_REPLICAS", "true"}, {"REDIS_CLUSTER_REFRESH_SECONDS", "2.5"}});
  EXPECT_TRUE(cfg.cluster.read_from_replicas);
  EXPECT_EQ(cfg.cluster.refresh_period.count(), 2500);
  EXPECT_FALSE(load({}).cluster.read_from_replicas);
  EXPECT_NE(error_of({{"REDIS_READ_FROM_REPLICAS", "maybe"}}).find("REDIS_READ_FROM_REPLICAS"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"REDIS_CLUSTER_REFRESH_SECONDS", "-1"}}).find("REDIS_CLUSTER_REFRESH_SECONDS"),
      std::string::npos);
}

TEST(CacheConfig, several_hosts_in_redis_url_are_the_cluster_seeds) {
  const CacheConfig cfg = load({{"REDIS_URL", "redis://10.0.0.1:7000,10.0.0.2:7001"}});
  ASSERT_TRUE(cfg.redis.has_value());
  const std::vector<promptcache::net::Endpoint> expected{{"10.0.0.1", 7000}, {"10.0.0.2", 7001}};
  EXPECT_EQ(cfg.cluster_nodes, expected);
}

TEST(CacheConfig, sentinels_select_redis_and_conflict_with_cluster_nodes) {
  const CacheConfig cfg = load({{"REDIS_SENTINELS", "s1"}, {"REDIS_SENTINEL_MASTER", "m"}});
  ASSERT_TRUE(cfg.redis.has_value());
  EXPECT_TRUE(cfg.redis->sentinel.has_value());
  EXPECT_TRUE(cfg.cluster_nodes.empty());
  const std::string why = error_of({{"REDIS_SENTINELS", "s1"},
                                    {"REDIS_SENTINEL_MASTER", "m"},
                                    {"REDIS_CLUSTER_NODES", "h:7000"}});
  EXPECT_NE(why.find("REDIS_CLUSTER_NODES"), std::string::npos) << why;
}

TEST(CacheConfig, a_bad_cluster_node_list_names_the_variable_and_the_item) {
  for (const std::string bad : {"", "h1:7000,", "h1:7000,nohost", "h1:0", "h1:7000,,h2:7001"}) {
    const std::string why = error_of({{"REDIS_CLUSTER_NODES", bad}});
    EXPECT_NE(why.find("REDIS_CLUSTER_NODES"), std::string::npos) << bad << ": " << why;
  }
}

TEST(CacheConfig, reads_every_promptcache_variable) {
  const CacheConfig cfg = load({{"PROMPTCACHE_DEFAULT_TTL", "0"},
                                {"PROMPTCACHE_COMPRESS_THRESHOLD", "4096"},
                                {"PROMPTCACHE_LOCAL_MAX_ENTRIES", "10"},
                                {"PROMPTCACHE_LOCAL_MAX_BYTES", "2048"},
                                {"PROMPTCACHE_BREAKER_FAILURES", "2"},
                                {"PROMPTCACHE_BREAKER_OPEN_SECONDS", "0.5"}});
  EXPECT_EQ(cfg.service.default_ttl.count(), 0);
  EXPECT_EQ(cfg.service.codec.compress_threshold, 4096u);
  EXPECT_EQ(cfg.local.max_entries, 10u);
  EXPECT_EQ(cfg.local.max_bytes, 2048u);
  EXPECT_EQ(cfg.service.breaker.failure_threshold, 2u);
  EXPECT_EQ(cfg.service.breaker.open_for.count(), 500);
}

TEST(CacheConfig, every_bad_value_names_its_variable) {
  const std::pair<const char*, const char*> bad[] = {
      {"PROMPTCACHE_DEFAULT_TTL", "-1"},         {"PROMPTCACHE_DEFAULT_TTL", "1h"},
      {"PROMPTCACHE_COMPRESS_THRESHOLD", "x"},   {"PROMPTCACHE_LOCAL_MAX_ENTRIES", "0"},
      {"PROMPTCACHE_LOCAL_MAX_BYTES", "10"},     {"PROMPTCACHE_BREAKER_FAILURES", "0"},
      {"PROMPTCACHE_BREAKER_OPEN_SECONDS", "0"}, {"REDIS_SOCKET_TIMEOUT", "soon"},
  };
  for (const auto& [name, value] : bad) {
    EXPECT_NE(error_of({{name, value}}).find(name), std::string::npos) << name << "=" << value;
  }
}

TEST(CacheConfig, redis_variables_are_validated_even_when_redis_is_not_selected) {
  EXPECT_NE(error_of({{"REDIS_PORT", "99999"}}).find("REDIS_PORT"), std::string::npos);
}

}  // namespace
}  // namespace promptcache::cache
