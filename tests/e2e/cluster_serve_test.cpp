// `promptcache serve` with its cache on a real 6-node Redis Cluster (REDIS_CLUSTER_NODES).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "support/http_client.hpp"
#include "support/redis_cluster.hpp"
#include "support/serve_process.hpp"

namespace promptcache {
namespace {

namespace json = boost::json;
using testing::EnvVars;
using testing::HttpClient;
using testing::RedisCluster;
using testing::ServeProcess;

TEST(ServeOnCluster, reads_hit_the_cluster_and_a_users_invalidation_reaches_every_master) {
  RedisCluster cluster;
  const auto dir = std::filesystem::temp_directory_path() /
                   fmt::format("promptcache-cluster-serve-{}", ::getpid());
  std::filesystem::create_directories(dir);
  {
    ServeProcess serve(
        {"serve", "--listen", "127.0.0.1:0", "--db", "sqlite://" + (dir / "c.db").string()},
        EnvVars{{"REDIS_CLUSTER_NODES", cluster.seeds()}});
    HttpClient http(serve.port());
    std::vector<std::string> hashes;
    for (int i = 0; i < 60; ++i) {
      const auto created =
          http.request("POST", "/v1/analyses",
                       fmt::format(R"({{"prompt":"p{}","user_id":"{}","quality_scores":{{}},)"
                                   R"("improvement_suggestions":[]}})",
                                   i, i % 2 == 0 ? "a:b" : "a_b"));
      ASSERT_EQ(created.status, 201) << created.body;
      hashes.push_back(std::string(json::parse(created.body).at("prompt_hash").as_string()));
    }
    // Written through to the cluster by the POST: the first read is a hit.
    auto hit = http.request("GET", fmt::format("/v1/analyses/{}?user_id=a%3Ab", hashes[0]));
    EXPECT_EQ(hit.status, 200);
    EXPECT_EQ(hit.header("X-Cache"), "hit");
    // The 30 entries of a_b, spread over the masters' slots, all go; a:b's stay.
    auto invalidated = http.request("DELETE", "/v1/users/a_b/analyses/cache");
    EXPECT_EQ(invalidated.status, 200);
    EXPECT_EQ(json::parse(invalidated.body).at("invalidated"), 30);
    auto after = http.request("GET", fmt::format("/v1/analyses/{}?user_id=a_b", hashes[1]));
    EXPECT_EQ(after.status, 200);
    EXPECT_EQ(after.header("X-Cache"), "miss");
    auto kept = http.request("GET", fmt::format("/v1/analyses/{}?user_id=a%3Ab", hashes[2]));
    EXPECT_EQ(kept.header("X-Cache"), "hit");
    auto stats = http.request("GET", "/v1/stats");
    EXPECT_EQ(stats.status, 200);
    EXPECT_FALSE(json::parse(stats.body).as_object().contains("error")) << stats.body;
  }
  std::filesystem::remove_all(dir);
}

TEST(ServeOnCluster, one_cluster_node_in_redis_url_is_found_to_be_a_cluster) {
  RedisCluster cluster;
  const std::string one_node = cluster.nodes().front()->url();
  const auto dir = std::filesystem::temp_directory_path() /
                   fmt::format("promptcache-cluster-detect-{}", ::getpid());
  std::filesystem::create_directories(dir);
  {
    ServeProcess serve(
        {"serve", "--listen", "127.0.0.1:0", "--db", "sqlite://" + (dir / "d.db").string()},
        EnvVars{{"REDIS_URL", one_node}});
    HttpClient http(serve.port());
    // Keys of many slots (the user id is the hash tag): a standalone client would get MOVED
    // for most of them.
    for (int i = 0; i < 30; ++i) {
      const auto created =
          http.request("POST", "/v1/analyses",
                       fmt::format(R"({{"prompt":"d{}","user_id":"u{}","quality_scores":{{}},)"
                                   R"("improvement_suggestions":[]}})",
                                   i, i));
      ASSERT_EQ(created.status, 201) << created.body;
      const std::string hash(json::parse(created.body).at("prompt_hash").as_string());
      const auto read = http.request("GET", fmt::format("/v1/analyses/{}?user_id=u{}", hash, i));
      EXPECT_EQ(read.header("X-Cache"), "hit") << i;
    }
    const auto stats = json::parse(http.request("GET", "/v1/stats").body).as_object();
    ASSERT_TRUE(stats.contains("nodes")) << json::serialize(stats);
    EXPECT_EQ(stats.at("nodes").as_array().size(), 3u);  // every master, summed
    EXPECT_EQ(stats.at("keys"), 60);                     // 30 entries and their users' 30 indexes
  }
  // The operator commands detect it too.
  const auto stats = testing::run_promptcache({"stats", "--json", "--redis", one_node}, {});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_NE(stats.out.find("\"nodes\""), std::string::npos) << stats.out;
  std::filesystem::remove_all(dir);
}

// bench chooses its store where serve and the operator commands do (store::make_store): given
// one cluster node, it finds the cluster — it used to write to that node alone and fail with
// "the server refused some writes" (MOVED).
TEST(ServeOnCluster, bench_given_one_cluster_node_runs_on_the_cluster) {
  RedisCluster cluster;
  const std::string one_node = cluster.nodes().front()->url();
  const auto r = testing::run_promptcache({"bench", "--workload", "get_hit", "--redis", one_node,
                                           "--ops", "2000", "--keys", "200", "--concurrency", "4"},
                                          {}, std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto last = r.out.substr(r.out.rfind('{', r.out.size() - 2));
  const auto result = json::parse(last).as_object();
  EXPECT_EQ(result.at("workload"), "get_hit") << r.out;
  EXPECT_GT(result.at("ops_per_s").to_number<double>(), 0) << r.out;
  // Its writes landed on every master, not the one named.
  for (auto* master : cluster.masters()) EXPECT_GT(std::stoi(master->cli({"DBSIZE"})), 0);
}

}  // namespace
}  // namespace promptcache
