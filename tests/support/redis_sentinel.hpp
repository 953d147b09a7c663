// Test support: a real Redis Sentinel group (a master, one replica and three sentinels with
// quorum 2) on free loopback ports, with fast failure detection for tests, and always stopped.
//
// The data nodes and the sentinels are RedisServers with keep_config, so a node restarted with
// start() comes back in the role Sentinel last gave it (Sentinel sends CONFIG REWRITE with every
// REPLICAOF) and a restarted sentinel still knows the current master, its replica and its peers.
// They also hold their ports while stopped: the sentinels (and the replica) keep addressing a
// stopped node, and would reconfigure (or replicate from) any server of another test that got its
// port. The sentinels ping, poll and publish faster than Sentinel's defaults (SENTINEL DEBUG, also
// after a start(); see the .cpp), so that a group starts in about a second and converges within
// seconds after a failover.
//
// Not thread-safe; create it from a long-lived thread (see redis_server.hpp on PR_SET_PDEATHSIG).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "support/redis_server.hpp"

namespace promptcache::testing {

class RedisSentinelGroup {
 public:
  // Starts a master and one replica (REPLICAOF the master), and three sentinels monitoring the
  // master under the name master_name() with quorum 2, down-after-milliseconds 1000 and
  // failover-timeout 5000; waits (up to 30 s) until the replica is in sync (master_link_status:up
  // and a write made on the master at the end has reached it) and every sentinel knows the replica
  // and the other two sentinels. Throws std::runtime_error with the log tails on failure.
  explicit RedisSentinelGroup(std::string master_name = "mymaster");
  ~RedisSentinelGroup();
  RedisSentinelGroup(const RedisSentinelGroup&) = delete;
  RedisSentinelGroup& operator=(const RedisSentinelGroup&) = delete;

  [[nodiscard]] const std::string& master_name() const;
  // The master first, then the replica; which one is master changes with failovers (see
  // current_master()).
  [[nodiscard]] std::vector<RedisServer*> data_nodes();
  [[nodiscard]] std::vector<RedisServer*> sentinels();
  // The data node the first running sentinel that answers reports as master (SENTINEL
  // get-master-addr-by-name), or nullptr.
  [[nodiscard]] RedisServer* current_master();
  // "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3": the sentinel list for a client.
  [[nodiscard]] std::string sentinel_addresses() const;

  // Runs SENTINEL FAILOVER on a running sentinel (again while it refuses: right after a failover
  // the old master is not yet a usable replica) and waits until every running sentinel reports the
  // same new master and that node answers ROLE as master. Returns it; throws std::runtime_error
  // with the log tails if that does not happen within `limit`.
  RedisServer* failover(std::chrono::milliseconds limit = std::chrono::seconds(30));
  // Waits until every running sentinel reports `expected` as master and `expected` answers ROLE
  // as master (after a kill, say). False on timeout.
  [[nodiscard]] bool wait_master(RedisServer* expected,
                                 std::chrono::milliseconds limit = std::chrono::seconds(30));

  // Log tails of every node and sentinel, for failure messages.
  [[nodiscard]] std::string log_tails(std::size_t lines = 20) const;

 private:
  // The data node `sentinel` reports as master; nullptr if it does not answer or names no node
  // of ours.
  RedisServer* reported_master(const RedisServer& sentinel);
  // True if every running sentinel reports `node` and `node` answers ROLE as master.
  bool all_report(RedisServer* node);

  std::string master_name_;
  // Declared before sentinels_, so destroyed after them: no sentinel reacts to a dying node.
  std::vector<std::unique_ptr<RedisServer>> data_nodes_;
  std::vector<std::unique_ptr<RedisServer>> sentinels_;
};

}  // namespace promptcache::testing
