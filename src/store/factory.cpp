#include "promptcache/store/factory.hpp"

#include "promptcache/log.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/cluster_store.hpp"
#include "promptcache/store/detect.hpp"
#include "promptcache/store/local_store.hpp"
#include "promptcache/store/redis_store.hpp"

namespace promptcache::store {

std::shared_ptr<Store> make_store(const StoreSpec& spec,
                                  const std::vector<boost::asio::any_io_executor>& executors) {
  if (!spec.redis) return std::make_shared<LocalStore>(spec.local);
  std::vector<net::Endpoint> nodes = spec.cluster_nodes;
  net::ClientConfig redis = *spec.redis;
  if (spec.tracking) {
    redis.tracking.listener = spec.tracking;
    redis.tracking.bcast = !spec.bcast_prefixes.empty();
    redis.tracking.prefixes = spec.bcast_prefixes;
  }
  if (nodes.empty() && !redis.sentinel && redis.transport != net::Transport::unix_socket) {
    std::string detail;
    auto enabled = probe_cluster_enabled_blocking(*spec.redis, detail);  // untracked
    if (!enabled) {
      logger()->warn(
          "cannot ask {} whether it is a cluster node ({}): one server assumed; "
          "REDIS_CLUSTER_NODES names a cluster",
          redis.address(), detail);
    } else if (*enabled) {
      logger()->info("{} is a cluster node: cluster mode", redis.address());
      nodes.push_back({redis.host, redis.port});
    }
  }
  if (!nodes.empty()) return std::make_shared<ClusterStore>(executors, redis, nodes, spec.cluster);
  return std::make_shared<RedisStore>(std::make_shared<net::Client>(executors, redis));
}

}  // namespace promptcache::store
