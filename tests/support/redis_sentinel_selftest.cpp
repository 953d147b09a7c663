// Self-test of the RedisSentinelGroup test fixture (tests/support/redis_sentinel.hpp).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_sentinel.hpp"

namespace promptcache::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The first line of ROLE: "master", "slave" or "sentinel"; "" if the node does not answer.
std::string role(const RedisServer& s) {
  try {
    const std::string reply = s.cli({"ROLE"}, 2s);
    return reply.substr(0, reply.find('\n'));
  } catch (const std::exception&) {
    return {};
  }
}

// True once `node` is a replica of `master` with its link up, within `limit`.
bool wait_replica_of(const RedisServer& node, const RedisServer& master,
                     std::chrono::milliseconds limit = 30s) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (role(node) == "slave") {
      const std::string info = node.cli({"INFO", "replication"});
      if (info.find("master_port:" + std::to_string(master.port())) != std::string::npos &&
          info.find("master_link_status:up") != std::string::npos) {
        return true;
      }
    }
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
}

// True once `node` has `key` = `value`, within `limit` (replication is asynchronous).
bool wait_value(const RedisServer& node, const std::string& key, const std::string& value,
                std::chrono::milliseconds limit = 5s) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    if (node.cli({"GET", key}) == value) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

long long elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

TEST(RedisSentinelGroupSelfTest, StartsWithReplicaInSyncAndEverySentinelReportingTheMaster) {
  const auto started = Clock::now();
  RedisSentinelGroup group;
  RecordProperty("startup_ms", std::to_string(elapsed_ms(started)));

  EXPECT_EQ(group.master_name(), "mymaster");
  ASSERT_EQ(group.data_nodes().size(), 2u);
  ASSERT_EQ(group.sentinels().size(), 3u);
  RedisServer& master = *group.data_nodes()[0];
  RedisServer& replica = *group.data_nodes()[1];
  EXPECT_EQ(group.current_master(), &master);
  EXPECT_EQ(role(master), "master");
  EXPECT_TRUE(wait_replica_of(replica, master, 0ms));

  std::string expected_addresses;
  for (RedisServer* s : group.sentinels()) {
    EXPECT_EQ(role(*s), "sentinel");
    EXPECT_EQ(s->cli({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"}),
              "127.0.0.1\n" + std::to_string(master.port()));
    if (!expected_addresses.empty()) expected_addresses += ',';
    expected_addresses += "127.0.0.1:" + std::to_string(s->port());
  }
  EXPECT_EQ(group.sentinel_addresses(), expected_addresses);

  // The replica gets the command stream right away: without the group's last start-up step it
  // would get it only up to 1 s later.
  EXPECT_EQ(master.cli({"SET", "k", "v"}), "OK");
  EXPECT_TRUE(wait_value(replica, "k", "v", 500ms)) << group.log_tails();
}

TEST(RedisSentinelGroupSelfTest, FailoverPromotesTheReplicaAndTurnsTheOldMasterIntoItsReplica) {
  RedisSentinelGroup group;
  RedisServer* old_master = group.data_nodes()[0];
  RedisServer* replica = group.data_nodes()[1];
  ASSERT_EQ(old_master->cli({"SET", "k", "v"}), "OK");
  ASSERT_TRUE(wait_value(*replica, "k", "v")) << group.log_tails();

  const auto started = Clock::now();
  RedisServer* new_master = group.failover();
  RecordProperty("failover_ms", std::to_string(elapsed_ms(started)));

  EXPECT_EQ(new_master, replica);
  EXPECT_EQ(group.current_master(), replica);
  EXPECT_EQ(role(*replica), "master");
  for (RedisServer* s : group.sentinels()) {
    EXPECT_EQ(s->cli({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"}),
              "127.0.0.1\n" + std::to_string(replica->port()));
  }
  EXPECT_EQ(replica->cli({"GET", "k"}), "v");
  EXPECT_EQ(replica->cli({"SET", "k2", "v2"}), "OK");
  EXPECT_TRUE(wait_replica_of(*old_master, *replica));
  RecordProperty("old_master_demoted_ms", std::to_string(elapsed_ms(started)));
}

TEST(RedisSentinelGroupSelfTest, SecondFailoverSwitchesBackToTheFirstMaster) {
  RedisSentinelGroup group;
  RedisServer* first = group.data_nodes()[0];
  RedisServer* second = group.data_nodes()[1];
  ASSERT_EQ(group.failover(), second);
  // failover() retries while the old master is not yet a usable replica.
  EXPECT_EQ(group.failover(), first);
  EXPECT_EQ(group.current_master(), first);
}

TEST(RedisSentinelGroupSelfTest, StoppingTheMasterMakesTheSentinelsPromoteTheReplica) {
  RedisSentinelGroup group("cache-primary");
  EXPECT_EQ(group.master_name(), "cache-primary");
  RedisServer* master = group.data_nodes()[0];
  RedisServer* replica = group.data_nodes()[1];

  master->stop();
  const auto stopped = Clock::now();
  ASSERT_TRUE(group.wait_master(replica)) << group.log_tails();
  RecordProperty("automatic_failover_ms", std::to_string(elapsed_ms(stopped)));
  EXPECT_EQ(group.current_master(), replica);
  EXPECT_EQ(replica->cli({"SET", "k", "v"}), "OK");
}

TEST(RedisSentinelGroupSelfTest, RestartedOldMasterIsReconfiguredAsReplicaOfTheNewMaster) {
  RedisSentinelGroup group;
  RedisServer* master = group.data_nodes()[0];
  RedisServer* replica = group.data_nodes()[1];
  master->stop();
  ASSERT_TRUE(group.wait_master(replica)) << group.log_tails();

  master->start();
  const auto restarted = Clock::now();
  EXPECT_TRUE(wait_replica_of(*master, *replica)) << group.log_tails();
  RecordProperty("rejoin_ms", std::to_string(elapsed_ms(restarted)));
  EXPECT_EQ(group.current_master(), replica);
}

TEST(RedisSentinelGroupSelfTest, RestartedSentinelStillReportsTheMasterItLearntBeforeTheStop) {
  RedisSentinelGroup group;
  RedisServer* new_master = group.failover();
  RedisServer& sentinel = *group.sentinels()[0];
  sentinel.stop();
  sentinel.start();
  // Straight from its rewritten config, not learnt anew from its peers.
  EXPECT_EQ(sentinel.cli({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"}),
            "127.0.0.1\n" + std::to_string(new_master->port()));
  EXPECT_TRUE(group.wait_master(new_master));
}

TEST(RedisSentinelGroupSelfTest, DestructorStopsEveryProcess) {
  std::vector<pid_t> pids;
  {
    RedisSentinelGroup group;
    for (RedisServer* n : group.data_nodes()) pids.push_back(n->pid());
    for (RedisServer* s : group.sentinels()) pids.push_back(s->pid());
  }
  ASSERT_EQ(pids.size(), 5u);
  for (pid_t pid : pids) {
    EXPECT_GT(pid, 0);
    EXPECT_NE(::kill(pid, 0), 0) << "process " << pid << " still exists";
  }
}

}  // namespace
}  // namespace promptcache::testing
