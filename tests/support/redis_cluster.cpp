#include "support/redis_cluster.hpp"

#include "support/process.hpp"

#include <sstream>
#include <stdexcept>
#include <thread>

namespace promptcache::testing {

RedisCluster::RedisCluster() {
  for (int i = 0; i < 6; ++i) {
    // The bus port is set, not derived (port + 10 000 overflows for ports above 55 535).
    nodes_.push_back(std::make_unique<RedisServer>(RedisServerOptions{
        .extra_config = {"cluster-enabled yes", "cluster-config-file nodes.conf",
                         "cluster-node-timeout 2000", "cluster-replica-validity-factor 0",
                         "cluster-port " + std::to_string(detail::free_loopback_port()),
                         "appendonly no"},
    }));
  }
  std::vector<std::string> args{"--cluster", "create"};
  for (const auto& n : nodes_) args.push_back(n->address());
  args.insert(args.end(), {"--cluster-replicas", "1", "--cluster-yes"});
  const std::string out = nodes_.front()->cli(args, std::chrono::seconds(60));
  // redis-cli's closing check reads one node's view, which may not list every master yet when
  // gossip is slow ("Not all 16384 slots are covered" on a loaded machine): the slots were
  // assigned all the same. Every node reaching cluster_state:ok with all slots assigned is what
  // counts; only if that never comes is the creation a failure.
  if (!wait_ok()) {
    throw std::runtime_error(
        "the cluster did not reach cluster_state:ok; redis-cli --cluster "
        "create said:\n" +
        out);
  }
  // Every node must also know which nodes are replicas before a test counts masters.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (auto& n : nodes_) {
    for (;;) {
      const std::string view = n->cli({"CLUSTER", "NODES"});
      std::size_t replicas = 0;
      for (auto at = view.find(" slave "); at != std::string::npos;
           at = view.find(" slave ", at + 1)) {
        ++replicas;
      }
      for (auto at = view.find(",slave "); at != std::string::npos;
           at = view.find(",slave ", at + 1)) {
        ++replicas;
      }
      if (replicas == 3) break;
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("the cluster's replicas were not known to every node:\n" + view);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

RedisCluster::~RedisCluster() = default;

std::vector<RedisServer*> RedisCluster::nodes() {
  std::vector<RedisServer*> out;
  for (auto& n : nodes_) out.push_back(n.get());
  return out;
}

bool RedisCluster::wait_ok(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    bool ok = true;
    for (auto& n : nodes_) {
      if (!n->running()) continue;
      std::string info;
      try {
        info = n->cli({"CLUSTER", "INFO"});
      } catch (const std::exception&) {
        ok = false;
        break;
      }
      if (info.find("cluster_state:ok") == std::string::npos ||
          info.find("cluster_slots_assigned:16384") == std::string::npos) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::vector<RedisServer*> RedisCluster::masters() {
  for (auto& probe : nodes_) {
    if (!probe->running()) continue;
    // CLUSTER NODES lines: <id> <ip:port@cport> <flags> …; flags hold "master", "fail"…
    std::istringstream lines(probe->cli({"CLUSTER", "NODES"}));
    std::vector<RedisServer*> out;
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      std::string id, address, flags, master, ping, pong, epoch, link, first_slot;
      fields >> id >> address >> flags >> master >> ping >> pong >> epoch >> link >> first_slot;
      // A master serving no slots (a new node, or a replica not yet told so) is not one here.
      if (flags.find("master") == std::string::npos || flags.find("fail") != std::string::npos ||
          first_slot.empty()) {
        continue;
      }
      const std::string port =
          address.substr(address.find(':') + 1, address.find('@') - address.find(':') - 1);
      for (auto& n : nodes_) {
        if (std::to_string(n->port()) == port && n->running()) out.push_back(n.get());
      }
    }
    return out;
  }
  return {};
}

std::string RedisCluster::seeds() const {
  return address_list(nodes_);
}

}  // namespace promptcache::testing
