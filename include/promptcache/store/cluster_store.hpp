// The Store on a Redis Cluster: every key goes to the master of its slot, over one pipelined
// client per node; MOVED patches the slot map (and refreshes it), ASK sends ASKING and the
// command to the target once, TRYAGAIN / CLUSTERDOWN / LOADING back off and retry, a
// connection failure or READONLY refreshes the map. Multi-key operations are split per node,
// one pipeline each, and reassembled in order; a redirect retries that one command, never the
// batch. Pattern deletion and statistics fan out to every master.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "promptcache/cluster/routing.hpp"
#include "promptcache/cluster/slot_map.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/options.hpp"
#include "promptcache/store/store.hpp"

namespace promptcache::store {

struct ClusterStats {
  std::uint64_t moved = 0;
  std::uint64_t ask = 0;
  std::uint64_t try_again = 0;
  std::uint64_t refreshes = 0;
};

// Owned by a shared_ptr (background refreshes hold a weak reference to it).
class ClusterStore final : public Store, public std::enable_shared_from_this<ClusterStore> {
 public:
  // `node_config` carries what every node shares (credentials, TLS, timeouts); `seeds` are the
  // nodes asked for the slot map first.
  ClusterStore(std::vector<boost::asio::any_io_executor> executors, net::ClientConfig node_config,
               std::vector<cluster::NodeAddress> seeds, ClusterOptions options = {});
  ~ClusterStore() override;

  [[nodiscard]] std::string_view tier() const noexcept override { return "redis"; }

  // Loads the slot map (CLUSTER SHARDS, or CLUSTER SLOTS before Redis 7). Optional: the first
  // command loads it too.
  boost::asio::awaitable<boost::system::error_code> refresh();
  // refresh(): the cluster is reached once its slot map is loaded.
  boost::asio::awaitable<boost::system::error_code> connect() override;
  [[nodiscard]] std::string last_error() const override;

  boost::asio::awaitable<Result<std::optional<std::string>>> get(std::string_view key,
                                                                 Deadline deadline = {}) override;
  boost::asio::awaitable<Result<std::vector<std::optional<std::string>>>> get_multiple(
      const std::vector<std::string>& keys) override;
  boost::asio::awaitable<Result<bool>> write(const Write& w, Deadline deadline = {}) override;
  boost::asio::awaitable<Result<std::size_t>> set_multiple(
      const std::vector<Entry>& entries) override;
  boost::asio::awaitable<Result<std::uint64_t>> del(const std::vector<std::string>& keys) override;
  // SCAN on every master (a cursor each), each page's keys unlinked in one pipeline.
  boost::asio::awaitable<Result<std::uint64_t>> delete_matching(
      std::string_view pattern, const Progress& progress = {}) override;
  // INFO of every master, summed.
  boost::asio::awaitable<Result<std::uint64_t>> delete_indexed(
      std::string_view index, const Progress& progress = {}) override;
  boost::asio::awaitable<Result<bool>> acquire_lease(std::string_view key, std::string_view token,
                                                     std::chrono::milliseconds ttl,
                                                     Deadline deadline = {}) override;
  boost::asio::awaitable<Result<bool>> release_lease(std::string_view key, std::string_view token,
                                                     Deadline deadline = {}) override;
  boost::asio::awaitable<Result<ServerStats>> server_stats() override;
  void close() override;

  [[nodiscard]] ClusterStats cluster_stats() const noexcept;
  // The masters the map knows now.
  [[nodiscard]] std::vector<cluster::NodeAddress> masters() const;
  // The shards the map knows now, with their online replicas.
  [[nodiscard]] std::vector<cluster::Shard> shards() const;

  // One command of a routed batch: its key decides the node.
  struct Command {
    std::string_view key;
    resp::Request request;  // exactly one command
    bool read = false;      // may go to a replica (ClusterOptions::read_from_replicas)
  };
  // A top-level reply: its type and, for scalars, its value.
  struct Reply {
    resp::Type type = resp::Type::null;
    std::string value;
    boost::system::error_code error;  // the command could not be answered (transport, refused)
  };
  // Runs every command on the master of its key's slot, following redirects per command;
  // replies in the order of `commands`.
  boost::asio::awaitable<std::vector<Reply>> run(std::vector<Command> commands);

 private:
  // Appends command i's script call (EVALSHA when by_sha, else EVAL) to a request.
  using ScriptPush = std::function<void(resp::Request&, std::size_t i, bool by_sha)>;
  // run() of commands that push() fills; those a node answers NOSCRIPT to go again with EVAL.
  boost::asio::awaitable<std::vector<Reply>> run_scripts(std::vector<Command> commands,
                                                         const ScriptPush& push);

  // One group's answer: the top-level replies its node sent, or why it sent none.
  struct Sent {
    boost::system::error_code ec;
    std::vector<Reply> replies;
  };
  // Sends each of a round's groups to its node at once (ASKING where the router says), and
  // waits for them all.
  boost::asio::awaitable<std::vector<Sent>> send(const cluster::RoutePlan& plan,
                                                 const std::vector<Command>& commands,
                                                 const cluster::BatchRouter& router);
  // A group's replies handed to the router, command by command: the answers into `out`, a MOVED
  // into the map.
  void take_replies(const cluster::NodeGroup& group, std::vector<Reply>& replies,
                    cluster::BatchRouter& router, std::vector<Reply>& out);

  std::shared_ptr<net::Client> client_for(const cluster::NodeAddress& node);
  std::shared_ptr<net::Client> client_for_locked(const cluster::NodeAddress& node);
  // The client of `key`'s master, from a cache by shard; null while no shard covers it.
  std::shared_ptr<net::Client> master_client(std::string_view key);
  // The master of `key`'s slot (or for a read with read_from_replicas, one of its replicas);
  // nullopt while no shard covers it.
  std::optional<cluster::NodeAddress> node_for(std::string_view key, bool read) const;
  // Refreshes in the background unless one ran in the last few milliseconds.
  void refresh_soon();
  // Starts the periodic refresh (once).
  void start_ticker();

  std::vector<boost::asio::any_io_executor> executors_;
  net::ClientConfig node_config_;
  std::vector<cluster::NodeAddress> seeds_;

  mutable std::mutex mutex_;  // guards map_, clients_, shard_clients_ and last_error_
  cluster::SlotMap map_;
  std::string last_error_;  // why the last refresh failed (empty after a success)
  std::map<std::string, std::shared_ptr<net::Client>> clients_;  // by "host:port"
  std::vector<std::shared_ptr<net::Client>> shard_clients_;      // by shard index in map_
  std::atomic<bool> refreshing_{false};
  std::atomic<std::int64_t> last_refresh_ms_{0};
  std::atomic<bool> closed_{false};
  ClusterOptions options_;
  mutable std::atomic<std::uint64_t> next_replica_{0};
  std::atomic<bool> ticking_{false};
  std::shared_ptr<boost::asio::steady_timer> ticker_;

  std::atomic<std::uint64_t> moved_{0};
  std::atomic<std::uint64_t> ask_{0};
  std::atomic<std::uint64_t> try_again_{0};
  std::atomic<std::uint64_t> refreshes_{0};
};

}  // namespace promptcache::store
