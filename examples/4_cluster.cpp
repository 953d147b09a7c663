// 4 — Redis Cluster: the same operations over a cluster. Name some of its nodes (the rest are
// found from the slot map), or one node in REDIS_URL (it is asked whether it is a cluster node):
//
//   REDIS_CLUSTER_NODES=10.0.0.1:7000,10.0.0.2:7000 ./4_cluster
//
// Keys spread over the cluster's shards; an analysis key carries its user id as a hash tag
// (prompt:analysis:<hash>:{<user>}:<type>), so one user's entries share a slot and their
// invalidation is one shard's work. Failovers and resharding are followed (MOVED, ASK).
#include <iostream>
#include <string>
#include <vector>

#include <promptcache/cache/blocking.hpp>
#include <promptcache/cache/keys.hpp>
#include <promptcache/json_text.hpp>

namespace json = boost::json;
namespace cache = promptcache::cache;

int main() {
  try {
    cache::BlockingCache c;  // CacheConfig::from_env()
    const std::string hash = cache::prompt_hash("Translate this into French");
    std::vector<std::string> keys;
    for (int user = 0; user < 20; ++user) {
      for (const char* type : {"clarity", "tone"}) {
        const std::string id = "user" + std::to_string(user);
        c.set_analysis_result(hash, id, type, {{"user", user}, {"type", type}});
        keys.push_back(cache::analysis_key(hash, id, type));
      }
    }
    // One call, whatever shards the keys live on (pipelined GETs to each shard, in parallel).
    const auto values = c.get_multiple(keys);
    int hits = 0;
    for (const auto& v : values) hits += v ? 1 : 0;
    std::cout << "hits: " << hits << " of " << keys.size() << "\n";
    std::cout << "invalidated entries of user7: " << c.invalidate_user_analysis_cache("user7")
              << "\n";

    const json::object stats = c.get_cache_stats();
    std::cout << "tier: " << promptcache::json_text(stats.at("client").as_object().at("tier"))
              << "\n";
    if (const auto* nodes = stats.if_contains("nodes")) {
      std::cout << "masters: " << nodes->as_array().size() << "\n";
    }
  } catch (const cache::CacheError& e) {
    std::cerr << "cache unavailable: " << e.what() << " (" << e.code().message() << ")\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}
