// Test support: a real Redis Cluster of 3 masters and 3 replicas on free loopback ports, made
// with `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`, and always stopped.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/redis_server.hpp"

namespace promptcache::testing {

class RedisCluster {
 public:
  // Starts six cluster-enabled servers, creates the cluster and waits (up to 30 s) until every
  // node reports cluster_state:ok with all 16 384 slots assigned. Throws std::runtime_error.
  RedisCluster();
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  // All six nodes; which of them are masters changes with failovers (see masters()).
  [[nodiscard]] std::vector<RedisServer*> nodes();
  // The nodes that are masters now, by CLUSTER NODES as one live node sees it.
  [[nodiscard]] std::vector<RedisServer*> masters();
  // "127.0.0.1:P1,127.0.0.1:P2,…": the seed list for a client.
  [[nodiscard]] std::string seeds() const;
  // Waits until every running node reports cluster_state:ok (a failover ended, say).
  [[nodiscard]] bool wait_ok(std::chrono::milliseconds limit = std::chrono::seconds(30));

 private:
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace promptcache::testing
