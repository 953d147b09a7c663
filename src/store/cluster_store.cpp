#include "promptcache/store/cluster_store.hpp"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "promptcache/cluster/redirect.hpp"
#include "promptcache/cluster/routing.hpp"
#include "promptcache/cluster/slot.hpp"
#include "promptcache/error.hpp"
#include "promptcache/log.hpp"
#include "promptcache/store/redis_store.hpp"
#include "store/scripts.hpp"

namespace promptcache::store {

namespace asio = boost::asio;
using boost::system::error_code;
using cluster::NodeAddress;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto refresh_interval = std::chrono::milliseconds(100);  // at most one per interval

// Keeps every top-level reply: its type and, for scalars, its value.
class Recorder final : public resp::ReplySink {
 public:
  void on_node(const resp::Node& node) override {
    if (node.depth != 0 || node.type == resp::Type::attribute) return;
    ClusterStore::Reply r;
    r.type = node.type;
    if (!resp::is_aggregate(node.type)) r.value = node.value;
    replies.push_back(std::move(r));
  }
  void reset() noexcept override { replies.clear(); }
  std::vector<ClusterStore::Reply> replies;
};

// Waits for `n` spawned operations; each calls done() once.
class Countdown {
 public:
  Countdown(const asio::any_io_executor& ex, std::size_t n)
      : left_(n), wake_(ex, asio::steady_timer::time_point::max()) {}
  void done() {
    if (--left_ == 0) wake_.cancel();
  }
  asio::awaitable<void> wait() {
    while (left_ > 0) {
      error_code ignored;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }

 private:
  std::size_t left_;
  asio::steady_timer wake_;
};

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  error_code ignored;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

}  // namespace

ClusterStore::ClusterStore(std::vector<asio::any_io_executor> executors,
                           net::ClientConfig node_config, std::vector<NodeAddress> seeds,
                           ClusterOptions options)
    : executors_(std::move(executors)),
      node_config_(std::move(node_config)),
      seeds_(std::move(seeds)),
      options_(options) {
  // Every connection may serve reads on a replica; READONLY is harmless on a master, and a
  // replica promoted by a failover keeps its connections.
  node_config_.readonly = options_.read_from_replicas;
  if (executors_.empty()) throw net::ConfigError("ClusterStore: no executor given");
  if (seeds_.empty()) throw net::ConfigError("ClusterStore: no seed node given");
  ticker_ = std::make_shared<asio::steady_timer>(executors_.front());
}

ClusterStore::~ClusterStore() {
  close();
}

void ClusterStore::close() {
  if (closed_.exchange(true)) return;
  // The timer belongs to its executor: cancelled there, so that a waiting ticker ends now
  // instead of holding its event loop open until the next period.
  asio::post(executors_.front(), [ticker = ticker_] { ticker->cancel(); });
  std::lock_guard lock(mutex_);
  for (auto& [name, client] : clients_) client->close();
}

void ClusterStore::start_ticker() {
  if (options_.refresh_period.count() <= 0 || closed_ || ticking_.exchange(true)) return;
  std::weak_ptr<ClusterStore> weak = weak_from_this();
  if (weak.expired()) return;  // not owned by a shared_ptr: no periodic refresh
  asio::co_spawn(
      executors_.front(),
      [weak, ticker = ticker_, period = options_.refresh_period]() -> asio::awaitable<void> {
        for (;;) {
          ticker->expires_after(period);
          error_code ec;
          co_await ticker->async_wait(asio::redirect_error(asio::use_awaitable, ec));
          auto self = weak.lock();  // held only while refreshing
          if (!self || self->closed_) co_return;
          (void)co_await self->refresh();
        }
      },
      asio::detached);
}

ClusterStats ClusterStore::cluster_stats() const noexcept {
  return {moved_.load(), ask_.load(), try_again_.load(), refreshes_.load()};
}

std::vector<NodeAddress> ClusterStore::masters() const {
  std::lock_guard lock(mutex_);
  std::vector<NodeAddress> out;
  for (const auto& shard : map_.shards()) out.push_back(shard.master);
  return out;
}

std::vector<cluster::Shard> ClusterStore::shards() const {
  std::lock_guard lock(mutex_);
  return map_.shards();
}

std::shared_ptr<net::Client> ClusterStore::client_for(const NodeAddress& node) {
  std::lock_guard lock(mutex_);
  return client_for_locked(node);
}

std::shared_ptr<net::Client> ClusterStore::master_client(std::string_view key) {
  std::lock_guard lock(mutex_);
  const cluster::Shard* shard = map_.shard_for(cluster::key_slot(key));
  if (shard == nullptr) return nullptr;
  const auto index = static_cast<std::size_t>(shard - map_.shards().data());
  if (index >= shard_clients_.size()) shard_clients_.resize(map_.shards().size());
  auto& client = shard_clients_[index];
  if (!client) client = client_for_locked(shard->master);
  return client;
}

std::shared_ptr<net::Client> ClusterStore::client_for_locked(const NodeAddress& node) {
  auto& client = clients_[node.to_string()];
  if (!client) {
    net::ClientConfig cfg = node_config_;
    cfg.host = node.host;
    cfg.port = node.port;
    client = std::make_shared<net::Client>(executors_, cfg);
  }
  return client;
}

std::optional<NodeAddress> ClusterStore::node_for(std::string_view key, bool read) const {
  std::lock_guard lock(mutex_);
  const cluster::Shard* shard = map_.shard_for(cluster::key_slot(key));
  if (shard == nullptr) return std::nullopt;
  if (read && options_.read_from_replicas && !shard->replicas.empty()) {
    return shard
        ->replicas[next_replica_.fetch_add(1, std::memory_order_relaxed) % shard->replicas.size()];
  }
  return shard->master;
}

asio::awaitable<error_code> ClusterStore::refresh() {
  // The masters we know first (they are the most likely to be up), then the seeds.
  std::vector<NodeAddress> candidates = masters();
  for (const auto& s : seeds_) {
    if (std::find(candidates.begin(), candidates.end(), s) == candidates.end()) {
      candidates.push_back(s);
    }
  }
  error_code last = make_error_code(error::cluster_down);
  std::string failed_at;  // the node `last` came from
  for (const auto& node : candidates) {
    failed_at = node.to_string();
    auto client = client_for(node);
    resp::Request shards;
    shards.push("CLUSTER", "SHARDS");
    auto reply = co_await client->command(std::move(shards));
    if (!reply) {
      last = reply.error();
      continue;
    }
    auto map = cluster::SlotMap::from_shards(*reply);
    if (!map && reply->is_error()) {  // before Redis 7.0: CLUSTER SLOTS
      resp::Request slots;
      slots.push("CLUSTER", "SLOTS");
      auto old = co_await client->command(std::move(slots));
      if (old) map = cluster::SlotMap::from_slots(*old);
    }
    if (!map) {
      last = map.error();
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      map_ = std::move(*map);
      shard_clients_.clear();  // shard indices changed
      last_error_.clear();
    }
    ++refreshes_;
    last_refresh_ms_ = now_ms();
    start_ticker();
    co_return error_code{};
  }
  logger()->warn("cluster slot map refresh failed error=\"{}\"", last.message());
  {
    std::lock_guard lock(mutex_);
    last_error_ = fmt::format("no node gave the slot map ({} nodes asked; last, {}: {})",
                              candidates.size(), failed_at, last.message());
  }
  co_return last;
}

asio::awaitable<error_code> ClusterStore::connect() {
  co_return co_await refresh();
}

std::string ClusterStore::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

void ClusterStore::refresh_soon() {
  if (closed_ || now_ms() - last_refresh_ms_.load() < refresh_interval.count()) return;
  auto self = weak_from_this().lock();  // the store outlives the refresh
  if (!self || refreshing_.exchange(true)) return;
  asio::co_spawn(
      executors_.front(),
      [self]() -> asio::awaitable<void> {
        (void)co_await self->refresh();
        self->refreshing_ = false;
      },
      asio::detached);
}

asio::awaitable<std::vector<ClusterStore::Reply>> ClusterStore::run(std::vector<Command> commands) {
  std::vector<Reply> out(commands.size());
  std::vector<cluster::Routed> routed(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    routed[i] = cluster::Routed{cluster::key_slot(commands[i].key), commands[i].read};
  }
  // A caller's budget (the commands of one call share it) ends the retries too.
  const auto deadline = commands.empty() ? Deadline{} : commands.front().request.deadline();
  cluster::BatchRouter router(std::move(routed), options_.read_from_replicas, deadline);
  bool loaded = false;
  {
    std::lock_guard lock(mutex_);
    loaded = map_.covered() > 0;
  }
  if (!loaded) (void)co_await refresh();
  while (router.next_round(Clock::now())) {
    cluster::RoutePlan plan;
    {
      std::lock_guard lock(mutex_);
      std::uint64_t turn = next_replica_.load(std::memory_order_relaxed);
      plan = router.plan_round(map_, turn);
      next_replica_.store(turn, std::memory_order_relaxed);
    }
    std::vector<Sent> sent = co_await send(plan, commands, router);
    for (std::size_t g = 0; g < plan.groups.size(); ++g) {
      if (sent[g].ec) {
        router.on_failed(plan.groups[g], sent[g].ec);
        continue;
      }
      take_replies(plan.groups[g], sent[g].replies, router, out);
    }
    const auto end = router.end_round();
    if (end.refresh_now) {
      (void)co_await refresh();
    } else if (end.refresh_soon) {
      refresh_soon();
    }
    if (end.pause.count() > 0) co_await pause(end.pause);
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (auto ec = router.error(i)) out[i].error = ec;
  }
  co_return out;
}

asio::awaitable<std::vector<ClusterStore::Sent>> ClusterStore::send(
    const cluster::RoutePlan& plan, const std::vector<Command>& commands,
    const cluster::BatchRouter& router) {
  std::vector<Sent> sent(plan.groups.size());
  if (plan.groups.empty()) co_return sent;
  const auto ex = co_await asio::this_coro::executor;
  std::vector<resp::Request> requests(plan.groups.size());
  std::vector<Recorder> recorders(plan.groups.size());
  Countdown countdown(ex, plan.groups.size());
  for (std::size_t g = 0; g < plan.groups.size(); ++g) {
    const auto& group = plan.groups[g];
    for (std::size_t i : group.commands) {
      requests[g].set_deadline(commands[i].request.deadline());
      if (router.asking(i)) requests[g].push("ASKING");
      requests[g].append(commands[i].request);
    }
    auto client = client_for(group.node);
    Sent* slot = &sent[g];
    asio::co_spawn(ex, client->execute(requests[g], recorders[g]),
                   [&countdown, slot, client](std::exception_ptr e, error_code ec) {
                     slot->ec = e ? make_error_code(error::closed) : ec;
                     countdown.done();
                   });
  }
  co_await countdown.wait();
  for (std::size_t g = 0; g < plan.groups.size(); ++g) {
    sent[g].replies = std::move(recorders[g].replies);
  }
  co_return sent;
}

void ClusterStore::take_replies(const cluster::NodeGroup& group, std::vector<Reply>& replies,
                                cluster::BatchRouter& router, std::vector<Reply>& out) {
  std::size_t r = 0;
  for (std::size_t i : group.commands) {
    if (router.asking(i)) ++r;  // ASKING's own OK
    if (r >= replies.size()) {
      out[i].error = make_error_code(error::unexpected_reply);
      continue;
    }
    Reply& reply = replies[r++];
    const auto c = router.on_reply(i, resp::is_error(reply.type), reply.value);
    switch (c.verdict) {
      case cluster::Verdict::done:
        out[i] = std::move(reply);
        break;
      case cluster::Verdict::moved: {
        ++moved_;
        std::lock_guard lock(mutex_);
        map_.move_slot(c.slot, c.target);
        break;
      }
      case cluster::Verdict::ask:
        ++ask_;
        break;
      case cluster::Verdict::try_again:
        ++try_again_;
        break;
      case cluster::Verdict::refresh:
        break;
    }
  }
}

asio::awaitable<Result<std::optional<std::string>>> ClusterStore::get(std::string_view key,
                                                                      Deadline deadline) {
  // The common case in one round trip without the batch machinery: the key's master answers.
  // A redirect, a busy cluster or a failed node goes the general way, which follows it.
  if (auto client = options_.read_from_replicas ? nullptr : master_client(key)) {
    auto value = co_await client->get(key, deadline);
    if (value || value.error() == error::timeout) co_return value;
  }
  std::vector<Command> commands(1);
  commands[0].key = key;
  commands[0].read = true;
  commands[0].request.push("GET", key).set_deadline(deadline);
  auto replies = co_await run(std::move(commands));
  Reply& r = replies.front();
  if (r.error) co_return r.error;
  if (r.type == resp::Type::null) co_return std::optional<std::string>();
  if (resp::is_error(r.type)) co_return make_error_code(error::server_error);
  co_return std::optional<std::string>(std::move(r.value));
}

asio::awaitable<Result<std::vector<std::optional<std::string>>>> ClusterStore::get_multiple(
    const std::vector<std::string>& keys) {
  std::vector<Command> commands(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    commands[i].key = keys[i];
    commands[i].read = true;
    commands[i].request.push("GET", keys[i]);
  }
  auto replies = co_await run(std::move(commands));
  std::vector<std::optional<std::string>> values(keys.size());
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].error) co_return replies[i].error;
    if (resp::is_error(replies[i].type)) co_return make_error_code(error::server_error);
    if (replies[i].type != resp::Type::null) values[i] = std::move(replies[i].value);
  }
  co_return values;
}

asio::awaitable<std::vector<ClusterStore::Reply>> ClusterStore::run_scripts(
    std::vector<Command> commands, const ScriptPush& push) {
  std::vector<std::string_view> keys;
  keys.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    push(commands[i].request, i, true);
    keys.push_back(commands[i].key);
  }
  auto replies = co_await run(std::move(commands));
  // A node without the script cached (restarted, promoted, flushed): those again with EVAL.
  std::vector<Command> again;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].error && resp::is_error(replies[i].type) &&
        scripts::is_noscript(replies[i].value)) {
      where.push_back(i);
      again.emplace_back();
      again.back().key = keys[i];
      push(again.back().request, i, false);
    }
  }
  if (again.empty()) co_return replies;
  auto second = co_await run(std::move(again));
  for (std::size_t j = 0; j < where.size(); ++j) replies[where[j]] = std::move(second[j]);
  co_return replies;
}

asio::awaitable<Result<bool>> ClusterStore::write(const Write& w, Deadline deadline) {
  std::vector<Command> commands(1);
  commands[0].key = w.key;
  std::vector<Reply> replies;
  if (!scripts::needs_script(w)) {
    scripts::push_plain_set(commands[0].request, w.key, w.value, w.ttl, w.mode);
    commands[0].request.set_deadline(deadline);
    replies = co_await run(std::move(commands));
  } else {
    const ScriptPush push = [&](resp::Request& req, std::size_t, bool by_sha) {
      scripts::push_write(req, by_sha, w);
      req.set_deadline(deadline);
    };
    replies = co_await run_scripts(std::move(commands), push);
  }
  const Reply& r = replies[0];
  if (r.error) co_return failure(r.error);
  co_return scripts::write_outcome(r.type, r.value);
}

asio::awaitable<Result<std::size_t>> ClusterStore::set_multiple(const std::vector<Entry>& entries) {
  if (entries.empty()) co_return std::size_t{0};
  std::vector<Command> commands(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) commands[i].key = entries[i].key;
  // Plain entries get a SET now; indexed ones their script (again with EVAL if need be).
  const ScriptPush push = [&](resp::Request& req, std::size_t i, bool by_sha) {
    const Entry& e = entries[i];
    if (e.index.empty() && e.version == 0) {
      scripts::push_plain_set(req, e.key, e.value, e.ttl, SetMode::always);
    } else {
      scripts::push_write(req, by_sha, e);
    }
  };
  auto replies = co_await run_scripts(std::move(commands), push);
  std::size_t failed = 0;
  error_code first;
  for (const auto& r : replies) {
    if (r.error && !first) first = r.error;
    failed += r.error || resp::is_error(r.type) ? 1 : 0;
  }
  if (failed == entries.size() && first) co_return first;  // nothing was written
  co_return failed;
}

asio::awaitable<Result<std::uint64_t>> ClusterStore::del(const std::vector<std::string>& keys) {
  if (keys.empty()) co_return std::uint64_t{0};
  // One UNLINK per key: keys of different slots cannot share one in a cluster.
  std::vector<Command> commands(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    commands[i].key = keys[i];
    commands[i].request.push("UNLINK", keys[i]);
  }
  auto replies = co_await run(std::move(commands));
  std::uint64_t n = 0;
  for (const auto& r : replies) {
    if (r.error) co_return r.error;
    if (resp::is_error(r.type)) co_return make_error_code(error::server_error);
    n += r.value == "1" ? 1 : 0;
  }
  co_return n;
}

asio::awaitable<Result<std::uint64_t>> ClusterStore::delete_matching(std::string_view pattern,
                                                                     const Progress& progress) {
  if (auto ec = co_await refresh()) co_return ec;
  std::uint64_t deleted = 0;
  for (const auto& master : masters()) {
    auto client = client_for(master);
    std::string cursor = "0";
    do {
      resp::Request scan;
      scan.push("SCAN", cursor, "MATCH", pattern, "COUNT", 1000);
      resp::ReplyCollector out;
      if (error_code ec = co_await client->execute(scan, out)) co_return ec;
      const resp::Reply& page = out.replies().back();
      if (page.is_error() || page.elements.size() != 2) {
        co_return make_error_code(error::unexpected_reply);
      }
      cursor = page.elements[0].value;
      std::vector<std::string> keys;
      for (const auto& k : page.elements[1].elements) keys.push_back(k.value);
      // Routed, not sent to this master blindly: a key may move while we scan.
      auto n = co_await del(keys);
      if (!n) co_return n.error();
      deleted += *n;
      if (progress) progress(deleted);
    } while (cursor != "0");
  }
  co_return deleted;
}

asio::awaitable<Result<std::uint64_t>> ClusterStore::delete_indexed(std::string_view index,
                                                                    const Progress& progress) {
  const ScriptPush push = [&](resp::Request& req, std::size_t, bool by_sha) {
    scripts::push_drain(req, by_sha, index);
  };
  const auto drain_once = [&]() -> asio::awaitable<Result<std::string>> {
    std::vector<Command> commands(1);
    commands[0].key = index;  // the index and its members share one slot
    auto replies = co_await run_scripts(std::move(commands), push);
    Reply& r = replies.front();
    if (r.error) co_return r.error;
    if (resp::is_error(r.type)) co_return make_error_code(error::server_error);
    co_return std::move(r.value);
  };
  co_return co_await scripts::drain_all(drain_once, progress);
}

asio::awaitable<Result<bool>> ClusterStore::acquire_lease(std::string_view key,
                                                          std::string_view token,
                                                          std::chrono::milliseconds ttl,
                                                          Deadline deadline) {
  std::vector<Command> commands(1);
  commands[0].key = key;
  scripts::push_acquire(commands[0].request, key, token, ttl);
  commands[0].request.set_deadline(deadline);
  auto replies = co_await run(std::move(commands));
  const Reply& r = replies.front();
  if (r.error) co_return failure(r.error);
  if (resp::is_error(r.type)) co_return failure(make_error_code(error::server_error));
  co_return answer(r.type != resp::Type::null);
}

asio::awaitable<Result<bool>> ClusterStore::release_lease(std::string_view key,
                                                          std::string_view token,
                                                          Deadline deadline) {
  const ScriptPush push = [&](resp::Request& req, std::size_t, bool by_sha) {
    scripts::push_release(req, by_sha, key, token);
    req.set_deadline(deadline);
  };
  std::vector<Command> commands(1);
  commands[0].key = key;
  auto replies = co_await run_scripts(std::move(commands), push);
  const Reply& r = replies.front();
  if (r.error) co_return failure(r.error);
  if (resp::is_error(r.type)) co_return failure(make_error_code(error::server_error));
  co_return answer(r.value == "1");
}

asio::awaitable<Result<ServerStats>> ClusterStore::server_stats() {
  if (auto ec = co_await refresh()) co_return ec;
  ServerStats sum;
  for (const auto& master : masters()) {
    resp::Request info;
    info.push("INFO");
    auto reply = co_await client_for(master)->command(std::move(info));
    if (!reply) co_return reply.error();
    if (reply->is_error()) co_return make_error_code(error::server_error);
    ServerStats s = parse_info(reply->value);
    s.node = master.to_string();
    sum.keyspace_hits += s.keyspace_hits;
    sum.keyspace_misses += s.keyspace_misses;
    sum.connected_clients += s.connected_clients;
    sum.total_commands_processed += s.total_commands_processed;
    sum.used_memory += s.used_memory;
    sum.keys += s.keys;
    sum.nodes.push_back(std::move(s));
  }
  sum.used_memory_human = fmt::format("{:.2f}M", static_cast<double>(sum.used_memory) / 1048576);
  co_return sum;
}

}  // namespace promptcache::store
