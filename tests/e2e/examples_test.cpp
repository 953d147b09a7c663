// The numbered examples (examples/), built by this tree, run as programs against what they
// name: a real redis-server, the in-process store, a real 6-node Redis Cluster, and Redis down
// (each must end with a clear line, not hang). What each prints is what it promises.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include "support/serve_process.hpp"

namespace promptcache {
namespace {

using testing::EnvVars;
using testing::ProcessResult;
using testing::RedisServer;

std::string example(const std::string& name) {
  return std::string(PROMPTCACHE_EXAMPLES_DIR) + "/" + name;
}

ProcessResult run_example(const std::string& name, const EnvVars& env) {
  return testing::run_program(example(name), {}, env, std::chrono::seconds(60));
}

bool has(const std::string& out, const std::string& line) {
  return out.find(line + "\n") != std::string::npos;
}

TEST(Examples, blocking_runs_the_seeds_operations_against_redis) {
  RedisServer redis;
  const auto r = run_example("example_1_blocking", EnvVars{{"REDIS_URL", redis.url()}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, R"(clarity: {"score":0.82})")) << r.out;
  EXPECT_TRUE(has(r.out, "database calls for three reads: 1")) << r.out;
  EXPECT_TRUE(has(r.out, "deleted session: true")) << r.out;
  EXPECT_TRUE(has(r.out, "invalidated entries of user123: 2")) << r.out;
  EXPECT_TRUE(has(r.out, "after invalidation: miss")) << r.out;
  EXPECT_TRUE(has(r.out, R"(tier: "redis")")) << r.out;
  EXPECT_EQ(redis.cli({"TTL", "config:theme"}), "-1");  // no_expiry
}

TEST(Examples, blocking_runs_on_the_in_process_store_without_redis) {
  const auto r = run_example("example_1_blocking", {});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "database calls for three reads: 1")) << r.out;
  EXPECT_TRUE(has(r.out, R"(tier: "local")")) << r.out;
}

TEST(Examples, coroutines_run_the_seeds_usage_against_redis) {
  RedisServer redis;
  const auto r = run_example("example_2_coroutines", EnvVars{{"REDIS_URL", redis.url()}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "database calls for two reads: 1")) << r.out;
  EXPECT_TRUE(has(r.out, "invalidated entries of user123: 1")) << r.out;
}

TEST(Examples, near_tier_and_get_or_load_against_redis) {
  RedisServer redis;
  const auto r =
      run_example("example_3_near_tier_and_get_or_load", EnvVars{{"REDIS_URL", redis.url()}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "loader calls for 10 concurrent misses: 1")) << r.out;
  EXPECT_TRUE(has(r.out, "ghost found: false, loader calls for two lookups: 1")) << r.out;
  std::smatch near;
  ASSERT_TRUE(std::regex_search(r.out, near, std::regex("near-tier hits: (\\d+) of 100"))) << r.out;
  EXPECT_GT(std::stoi(near[1].str()), 0) << r.out;
  EXPECT_TRUE(has(r.out, R"(shared: {"id":"user123","plan":"pro"})")) << r.out;
  EXPECT_TRUE(has(r.out, R"(after the update: {"id":"user123","plan":"team"})")) << r.out;
}

TEST(Examples, cluster_spreads_and_finds_every_key_on_a_real_cluster) {
  testing::RedisCluster cluster;
  const auto r =
      run_example("example_4_cluster", EnvVars{{"REDIS_CLUSTER_NODES", cluster.seeds()}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hits: 40 of 40")) << r.out;
  EXPECT_TRUE(has(r.out, "invalidated entries of user7: 2")) << r.out;
  EXPECT_TRUE(has(r.out, R"(tier: "redis")")) << r.out;  // "masters" says it is a cluster
  EXPECT_TRUE(has(r.out, "masters: 3")) << r.out;
}

// Redis down: every example ends (no hang: the 60 s timeout would say so) with a clear line on
// stderr and a failure exit code.
TEST(Examples, each_ends_with_a_clear_error_when_redis_is_down) {
  const EnvVars down{{"REDIS_URL", "redis://127.0.0.1:1"}, {"REDIS_CONNECT_TIMEOUT", "1"}};
  for (const char* name : {"example_1_blocking", "example_2_coroutines",
                           "example_3_near_tier_and_get_or_load", "example_4_cluster"}) {
    const auto r = run_example(name, down);
    EXPECT_FALSE(r.timed_out) << name;
    EXPECT_NE(r.exit_code, 0) << name << ": " << r.out << r.err;
    EXPECT_TRUE(r.err.find("cache unavailable: ") != std::string::npos ||
                r.err.find("error: ") != std::string::npos)
        << name << ": " << r.err;
  }
}

}  // namespace
}  // namespace promptcache
