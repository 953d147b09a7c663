// The cluster store on a real 6-node Redis Cluster (3 masters, 3 replicas).
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>

#include "promptcache/cache/config.hpp"
#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/cluster/slot.hpp"
#include "promptcache/store/cluster_store.hpp"
#include "promptcache/store/factory.hpp"
#include "support/co_assert.hpp"
#include "support/io_runner.hpp"
#include "support/redis_cluster.hpp"

namespace promptcache {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using store::ClusterStore;
using store::Entry;
using testing::RedisCluster;
using testing::RedisServer;
using testing::run_until_done;

std::vector<cluster::NodeAddress> seeds_of(RedisCluster& c) {
  std::vector<cluster::NodeAddress> out;
  for (auto* n : c.nodes()) out.push_back({"127.0.0.1", n->port()});
  return out;
}

class Cluster : public ::testing::Test {
 protected:
  Cluster() {
    net::ClientConfig cfg;
    cfg.command_timeout = 5s;
    cfg.connect_timeout = 2s;
    store_ = std::make_shared<ClusterStore>(std::vector<asio::any_io_executor>{io_.get_executor()},
                                            cfg, seeds_of(cluster_));
  }
  ~Cluster() override { store_->close(); }
  template <class T>
  T run(asio::awaitable<T> task) {
    return run_until_done(io_, std::move(task), std::chrono::seconds(120));
  }

  RedisCluster cluster_;
  asio::io_context io_;
  std::shared_ptr<ClusterStore> store_;
};

TEST_F(Cluster, the_slot_map_names_three_masters_covering_every_slot) {
  EXPECT_FALSE(run(store_->refresh()));
  const auto masters = store_->masters();
  EXPECT_EQ(masters.size(), 3u);
  std::set<std::uint16_t> ports;
  for (const auto& m : masters) ports.insert(m.port);
  std::set<std::uint16_t> expected;
  for (auto* m : cluster_.masters()) expected.insert(m->port());
  EXPECT_EQ(ports, expected);
}

TEST_F(Cluster, the_slot_map_is_reloaded_periodically_without_traffic) {
  net::ClientConfig cfg;
  auto store = std::make_shared<ClusterStore>(
      std::vector<asio::any_io_executor>{io_.get_executor()}, cfg, seeds_of(cluster_),
      store::ClusterOptions{.refresh_period = 100ms});
  EXPECT_FALSE(run(store->refresh()));
  run(testing::sleep_for(1000ms));
  // The first load, then one per period (some slack for a busy machine).
  EXPECT_GE(store->cluster_stats().refreshes, 4u);
  store->close();
  const auto after_close = store->cluster_stats().refreshes;
  run(testing::sleep_for(500ms));
  EXPECT_EQ(store->cluster_stats().refreshes, after_close);  // closed: no more refreshes
}

TEST_F(Cluster, reads_go_to_replicas_when_asked_and_to_masters_by_default) {
  std::vector<Entry> entries;
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) {
    keys.push_back(fmt::format("replica-read:{}", i));
    entries.push_back(Entry{keys.back(), fmt::format("v{}", i), 0s});
  }
  ASSERT_TRUE(run(store_->set_multiple(entries)));
  auto gets_on = [&](bool masters) {
    std::uint64_t total = 0;
    const auto now_masters = cluster_.masters();
    for (auto* n : cluster_.nodes()) {
      const bool is_master =
          std::find(now_masters.begin(), now_masters.end(), n) != now_masters.end();
      if (is_master != masters) continue;
      const std::string stats = n->cli({"INFO", "commandstats"});
      const auto at = stats.find("cmdstat_get:calls=");
      if (at != std::string::npos) total += std::stoull(stats.substr(at + 18));
    }
    return total;
  };
  net::ClientConfig cfg;
  auto replicas = std::make_shared<ClusterStore>(
      std::vector<asio::any_io_executor>{io_.get_executor()}, cfg, seeds_of(cluster_),
      store::ClusterOptions{.read_from_replicas = true});
  run([&]() -> asio::awaitable<void> {
    // A replica counts as online once its replication offset has reached the others by the
    // cluster bus: until then the map lists none (and reads go to the master).
    for (int attempt = 0; attempt < 100; ++attempt) {
      (void)co_await replicas->refresh();
      const auto shards = replicas->shards();
      if (std::all_of(shards.begin(), shards.end(),
                      [](const cluster::Shard& s) { return !s.replicas.empty(); })) {
        break;
      }
      co_await testing::sleep_for(100ms);
    }
    auto by_default = co_await store_->get_multiple(keys);
    CO_ASSERT(by_default);
    EXPECT_EQ(gets_on(false), 0u);  // replicas served nothing
    // Replication is asynchronous: read until every replica has caught up (bounded).
    std::size_t matching = 0;
    for (int attempt = 0; attempt < 50 && matching < keys.size(); ++attempt) {
      if (attempt > 0) co_await testing::sleep_for(100ms);
      auto from_replicas = co_await replicas->get_multiple(keys);
      CO_ASSERT(from_replicas && from_replicas->size() == keys.size());
      matching = 0;
      for (std::size_t i = 0; i < keys.size(); ++i) {
        matching += (*from_replicas)[i] == std::optional<std::string>(fmt::format("v{}", i));
      }
    }
    EXPECT_EQ(matching, keys.size());
  }());
  EXPECT_GE(gets_on(false), keys.size());
  replicas->close();
}

TEST_F(Cluster, every_store_operation_works_with_keys_spread_over_every_master) {
  std::vector<Entry> entries;
  std::vector<std::string> keys;
  for (int i = 0; i < 3000; ++i) {
    // The user id is the hash tag: 1 000 users spread the keys.
    keys.push_back(
        cache::analysis_key(fmt::format("{:064x}", i), fmt::format("user{}", i % 1000), "default"));
    entries.push_back(Entry{keys.back(), fmt::format("value-{}", i), 3600s});
  }
  std::set<std::uint16_t> slots;
  for (const auto& k : keys) slots.insert(cluster::key_slot(k));
  ASSERT_GT(slots.size(), 900u);  // the keys really are spread out

  // Outside the coroutine: g++ 12 rejects a braced list in one.
  const std::vector<std::string> doomed{keys[0], keys[1], "never-set"};
  run([&]() -> asio::awaitable<void> {
    auto failed = co_await store_->set_multiple(entries);
    CO_ASSERT(failed);
    EXPECT_EQ(*failed, 0u);
    auto values = co_await store_->get_multiple(keys);
    CO_ASSERT(values && values->size() == keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      EXPECT_EQ((*values)[i], std::optional<std::string>(fmt::format("value-{}", i))) << i;
    }
    EXPECT_FALSE(co_await store_->set("single", "1", 0s));
    EXPECT_FALSE(co_await store_->set("single", "2", 0s, store::SetMode::if_absent));
    auto single = co_await store_->get("single");
    CO_ASSERT(single);
    EXPECT_EQ(*single, std::optional<std::string>("1"));
    auto missing = co_await store_->get("never-set");
    CO_ASSERT(missing);
    EXPECT_FALSE(missing->has_value());

    auto stats = co_await store_->server_stats();
    CO_ASSERT(stats);
    EXPECT_EQ(stats->keys, keys.size() + 1);
    CO_ASSERT(stats->nodes.size() == 3u);
    std::uint64_t per_node = 0;
    for (const auto& n : stats->nodes) per_node += n.keys;
    EXPECT_EQ(per_node, stats->keys);  // the sum is of the masters' own figures

    // One user's analysis keys, wherever their slots live.
    auto deleted = co_await store_->delete_matching(cache::user_analysis_pattern("user7"));
    CO_ASSERT(deleted);
    EXPECT_EQ(*deleted, 3u);
    auto removed = co_await store_->del(doomed);
    CO_ASSERT(removed);
    EXPECT_EQ(*removed, 2u);
    auto after = co_await store_->server_stats();
    CO_ASSERT(after);
    EXPECT_EQ(after->keys, keys.size() + 1 - 3 - 2);
  }());
  // Each master holds a share of the keys: the router spread them.
  for (auto* m : cluster_.masters()) EXPECT_GT(std::stoi(m->cli({"DBSIZE"})), 500) << m->port();
}

TEST_F(Cluster, a_users_index_and_entries_share_one_node_and_survive_a_script_cache_flush) {
  const std::string index = cache::user_analysis_index_key("alice");
  std::vector<Entry> entries;
  for (int i = 0; i < 50; ++i) {
    entries.push_back(
        Entry{cache::analysis_key(fmt::format("{:064x}", i), "alice", "t"), "v", 3600s, index});
  }
  for (int i = 0; i < 50; ++i) {
    entries.push_back(
        Entry{cache::analysis_key(fmt::format("{:064x}", i), fmt::format("bob{}", i), "t"), "v",
              3600s, cache::user_analysis_index_key(fmt::format("bob{}", i))});
  }
  run([&]() -> asio::awaitable<void> {
    auto failed = co_await store_->set_multiple(entries);
    CO_ASSERT(failed && *failed == 0u);
  }());
  // The index lists all of alice's keys, on the node that holds them.
  std::size_t holders = 0;
  for (auto* m : cluster_.masters()) {
    if (m->cli({"ZCARD", index}) == "50") ++holders;
  }
  EXPECT_EQ(holders, 1u);
  // A restarted or promoted node has no script cached: NOSCRIPT, then EVAL.
  for (auto* m : cluster_.masters()) ASSERT_EQ(m->cli({"SCRIPT", "FLUSH"}), "OK");
  run([&]() -> asio::awaitable<void> {
    const std::string extra = cache::analysis_key("extra", "alice", "t");
    EXPECT_FALSE(co_await store_->set(extra, "v", 3600s, store::SetMode::always, index));
    for (auto* m : cluster_.masters()) (void)m->cli({"SCRIPT", "FLUSH"});
    auto n = co_await store_->delete_indexed(index);
    CO_ASSERT(n);
    EXPECT_EQ(*n, 51u);
    auto bob = co_await store_->get(entries[50].key);
    CO_ASSERT(bob);
    EXPECT_TRUE(bob->has_value());
    auto stats = co_await store_->server_stats();
    CO_ASSERT(stats);
    EXPECT_EQ(stats->keys, 100u);  // bob's 50 entries and their 50 indexes
  }());
}

TEST_F(Cluster, stampede_protection_works_on_the_cluster_lease_and_negative_marker_included) {
  // Two services, each with a cluster client of its own (two processes' worth), the lease on.
  net::ClientConfig cfg;
  cfg.command_timeout = 5s;
  std::vector<asio::any_io_executor> executors;
  executors.push_back(io_.get_executor());
  auto other = std::make_shared<ClusterStore>(executors, cfg, seeds_of(cluster_));
  cache::ServiceOptions options;
  options.lease = 2000ms;
  cache::PromptCacheService a(store_, options);
  cache::PromptCacheService b(other, options);
  int calls = 0;
  const cache::PromptCacheService::Fallback slow = [&]() -> asio::awaitable<boost::json::value> {
    ++calls;
    co_await testing::sleep_for(50ms);
    co_return boost::json::value("loaded");
  };
  const cache::PromptCacheService::Loader none =
      [&]() -> asio::awaitable<std::optional<boost::json::value>> {
    ++calls;
    co_return std::nullopt;
  };
  const std::string key = cache::analysis_key("cold", "lease-user", "t");
  int answered = 0;
  run([&]() -> asio::awaitable<void> {
    bool a_done = false;
    asio::co_spawn(io_, a.get_with_fallback(key, slow),
                   [&](std::exception_ptr e, const boost::json::value& v) {
                     answered += !e && v == boost::json::value("loaded") ? 1 : 0;
                     a_done = true;
                   });
    auto second = co_await b.get_with_fallback(key, slow);  // while a loads: b waits on the lease
    answered += second == boost::json::value("loaded") ? 1 : 0;
    while (!a_done) co_await testing::sleep_for(5ms);
    // A lease is the owner's to release, on whichever master holds its slot.
    auto got = co_await store_->acquire_lease("promptcache:lease:x", "me", 10s);
    CO_ASSERT(got && *got);
    auto theirs = co_await other->acquire_lease("promptcache:lease:x", "them", 10s);
    CO_ASSERT(theirs);
    EXPECT_FALSE(*theirs);
    auto wrong = co_await other->release_lease("promptcache:lease:x", "them");
    CO_ASSERT(wrong);
    EXPECT_FALSE(*wrong);
    auto right = co_await store_->release_lease("promptcache:lease:x", "me");
    CO_ASSERT(right);
    EXPECT_TRUE(*right);
    // "Not found" remembered as a marker in the key's slot.
    const std::string absent = cache::analysis_key("absent", "lease-user", "t");
    EXPECT_FALSE(co_await a.get_or_load(absent, none));
    EXPECT_FALSE(co_await b.get_or_load(absent, none));
  }());
  EXPECT_EQ(answered, 2);
  EXPECT_EQ(calls, 2);  // one load of the cold key, one of the absent one
  other->close();
}

// Versioned writes on the cluster: the write script runs on the master of the user's slot, the
// lease that fences a fill shares it, and the newest version wins whatever the order.
TEST_F(Cluster, versioned_writes_tombstones_and_fenced_fills_work_on_the_cluster) {
  cache::ServiceOptions options;
  options.lease = 2000ms;
  cache::PromptCacheService svc(store_, options);
  int calls = 0;
  const cache::PromptCacheService::VersionedLoader row =
      [&]() -> asio::awaitable<cache::PromptCacheService::Versioned> {
    ++calls;
    co_return cache::PromptCacheService::Versioned{std::string(R"({"v":1})"), 1};
  };
  run([&]() -> asio::awaitable<void> {
    for (int u = 0; u < 20; ++u) {  // users spread over every master
      const std::string key = cache::analysis_key("h", fmt::format("versioned-{}", u), "t");
      auto first = co_await svc.get_or_load_versioned(key, row);  // a fenced fill at version 1
      EXPECT_EQ(first.json, std::optional<std::string>(R"({"v":1})"));
      EXPECT_FALSE(first.hit);
      EXPECT_TRUE(co_await svc.set_versioned(key, R"({"v":3})", 3));
      EXPECT_FALSE(co_await svc.set_versioned(key, R"({"v":2})", 2)) << "older: refused";
      EXPECT_TRUE(co_await svc.delete_versioned(key, 4));
      EXPECT_FALSE(co_await svc.set_versioned(key, R"({"v":3})", 3)) << "the tombstone holds";
      auto gone = co_await svc.get_or_load_versioned(key, row);
      EXPECT_FALSE(gone.json) << "not found, from the tombstone";
      EXPECT_TRUE(gone.hit);
      EXPECT_TRUE(co_await svc.set_versioned(key, R"({"v":5})", 5));
      EXPECT_EQ(co_await svc.get_json(key), std::optional<std::string>(R"({"v":5})"));
    }
  }());
  EXPECT_EQ(calls, 20);
}

TEST_F(Cluster, the_service_from_config_runs_every_seed_operation_on_the_cluster) {
  cache::CacheConfig config;
  config.redis = net::ClientConfig{};
  config.cluster_nodes = seeds_of(cluster_);
  auto service = cache::PromptCacheService::from_config(config, {io_.get_executor()});
  const std::vector<std::string> users{"a:b", "a_b", "*", "[x]", "%", "ü"};
  int fallback_calls = 0;
  const cache::PromptCacheService::Fallback fallback =
      [&]() -> asio::awaitable<boost::json::value> {
    ++fallback_calls;
    co_return boost::json::value("from the database");
  };
  run([&]() -> asio::awaitable<void> {
    for (std::size_t u = 0; u < users.size(); ++u) {
      for (int h = 0; h < 20; ++h) {
        co_await service->set_analysis_result(fmt::format("{:064x}", h), users[u], "default",
                                              boost::json::value(static_cast<std::int64_t>(h)));
      }
    }
    auto hit = co_await service->get_analysis_result(fmt::format("{:064x}", 3), "a:b");
    CO_ASSERT(hit);
    EXPECT_EQ(*hit, boost::json::value(3));
    EXPECT_EQ(co_await service->invalidate_user_analysis_cache("a_b"), 20u);
    EXPECT_FALSE(co_await service->get_analysis_result(fmt::format("{:064x}", 3), "a_b"));
    EXPECT_TRUE(co_await service->get_analysis_result(fmt::format("{:064x}", 3), "a:b"));
    EXPECT_TRUE(co_await service->get_analysis_result(fmt::format("{:064x}", 3), "*"));

    const std::string key = cache::analysis_key(fmt::format("{:064x}", 99), "u", "default");
    auto first = co_await service->get_with_fallback(key, fallback);
    auto second = co_await service->get_with_fallback(key, fallback);
    EXPECT_EQ(first, second);
    EXPECT_EQ(fallback_calls, 1);

    const boost::json::object stats = co_await service->get_cache_stats();
    EXPECT_FALSE(stats.contains("error")) << boost::json::serialize(stats);
    EXPECT_TRUE(stats.contains("keyspace_hits"));
    CO_ASSERT(stats.contains("nodes"));
    EXPECT_EQ(stats.at("nodes").as_array().size(), 3u);
    service->close();
  }());
}

TEST_F(Cluster, one_node_in_the_configuration_is_asked_and_found_to_be_a_cluster) {
  cache::CacheConfig config;
  config.redis = net::ClientConfig::from_url(cluster_.nodes().front()->url());
  auto chosen = store::make_store(config.store_spec(), {io_.get_executor()});
  auto* cluster = dynamic_cast<ClusterStore*>(chosen.get());
  ASSERT_NE(cluster, nullptr);
  std::vector<Entry> entries;
  for (int i = 0; i < 300; ++i) entries.push_back(Entry{fmt::format("detect:{}", i), "v", 0s});
  auto failed = run(cluster->set_multiple(entries));  // keys on every master: no MOVED error
  ASSERT_TRUE(failed);
  EXPECT_EQ(*failed, 0u);
  chosen->close();
}

TEST_F(Cluster, live_resharding_under_load_loses_no_operation_and_follows_moved_and_ask) {
  auto masters = cluster_.masters();
  ASSERT_EQ(masters.size(), 3u);
  const std::string from = masters[0]->cli({"CLUSTER", "MYID"});
  const std::string to = masters[1]->cli({"CLUSTER", "MYID"});
  // redis-cli moves the source's lowest slots first: the keys live, 500 to a slot (hash tags),
  // in four of the first 1 000 slots of the source, so each of those slots takes a while to
  // migrate and the load meets keys already moved out of a slot still migrating (ASK).
  const std::string nodes = masters[0]->cli({"CLUSTER", "NODES"});
  const auto mine = nodes.rfind('\n', nodes.find("myself")) + 1;
  std::istringstream line(nodes.substr(mine, nodes.find('\n', mine) - mine));
  std::string field;
  for (int f = 0; f < 9; ++f) line >> field;  // the 9th field: the first slot range
  const int first_slot = std::stoi(field.substr(0, field.find('-')));
  std::vector<std::string> tags;
  for (int t = 0; tags.size() < 4; ++t) {
    const std::string tag = fmt::format("t{}", t);
    const int slot = cluster::key_slot(tag);
    if (slot >= first_slot && slot < first_slot + 1000) tags.push_back(tag);
  }
  constexpr int key_count = 2000;
  std::vector<std::string> keys;
  std::vector<Entry> entries;
  for (int i = 0; i < key_count; ++i) {
    keys.push_back(fmt::format("{{{}}}:reshard:{}", tags[static_cast<std::size_t>(i) % 4], i));
    entries.push_back(Entry{keys.back(), "v0", 0s});
  }
  ASSERT_TRUE(run(store_->set_multiple(entries)));

  // The reshard runs beside the load: redis-cli moves 1 000 slots, key by key (MIGRATE), while
  // every key is written and read back in turn.
  std::atomic<bool> resharded{false};
  std::string reshard_output;
  std::thread reshard([&] {
    try {
      reshard_output =
          masters[2]->cli({"--cluster", "reshard", fmt::format("127.0.0.1:{}", masters[2]->port()),
                           "--cluster-from", from, "--cluster-to", to, "--cluster-slots", "1000",
                           "--cluster-yes", "--cluster-pipeline", "5"},
                          std::chrono::seconds(90));
    } catch (const std::exception& e) {
      reshard_output = e.what();
    }
    resharded = true;
  });
  int failures = 0;
  int operations = 0;
  run([&]() -> asio::awaitable<void> {
    std::vector<int> version(key_count, 0);
    for (int round = 0; !resharded || round < 2; ++round) {
      for (int i = 0; i < key_count; ++i) {
        ++version[i];
        const std::string value = fmt::format("v{}", version[i]);
        if (co_await store_->set(keys[i], value, 0s)) ++failures;
        auto r = co_await store_->get(keys[i]);
        if (!r || *r != std::optional<std::string>(value)) ++failures;
        operations += 2;
      }
    }
  }());
  reshard.join();
  EXPECT_NE(reshard_output.find("Moving slot"), std::string::npos) << reshard_output;
  EXPECT_EQ(failures, 0) << "of " << operations << " operations";
  const auto stats = store_->cluster_stats();
  EXPECT_GT(stats.moved, 0u);
  EXPECT_GT(stats.ask, 0u);
  std::cout << "resharding under load: " << operations << " operations, " << failures
            << " failed, MOVED " << stats.moved << ", ASK " << stats.ask << ", TRYAGAIN "
            << stats.try_again << ", map refreshes " << stats.refreshes << "\n";
}

TEST_F(Cluster, a_master_killed_under_load_fails_only_inside_the_failover_window) {
  constexpr int key_count = 600;
  std::vector<std::string> keys;
  for (int i = 0; i < key_count; ++i) keys.push_back(fmt::format("failover:{}", i));
  auto masters = cluster_.masters();
  ASSERT_EQ(masters.size(), 3u);
  RedisServer* victim = masters[0];
  const std::uint16_t victim_port = victim->port();

  using Clock = std::chrono::steady_clock;
  Clock::time_point killed_at{};
  std::vector<Clock::time_point> failed_at;
  int operations = 0;
  int clean_after_kill = 0;  // consecutive successes since the last failure, after the kill
  const auto give_up = Clock::now() + 90s;
  run([&]() -> asio::awaitable<void> {
    // Load until the kill, then until two clean rounds over every key (every master's slots).
    for (int round = 0; Clock::now() < give_up; ++round) {
      for (int i = 0; i < key_count; ++i) {
        if (round == 2 && i == 0) {
          victim->stop();  // SIGKILL: its replica takes over after cluster-node-timeout
          killed_at = Clock::now();
        }
        const std::string value = fmt::format("r{}", round);
        bool ok = !co_await store_->set(keys[i], value, 0s);
        if (ok) {
          auto r = co_await store_->get(keys[i]);
          ok = r && *r == std::optional<std::string>(value);
        }
        ++operations;
        if (ok) {
          if (killed_at != Clock::time_point{}) ++clean_after_kill;
        } else {
          failed_at.push_back(Clock::now());
          clean_after_kill = 0;
        }
      }
      if (clean_after_kill >= 2 * key_count) break;
    }
  }());
  ASSERT_NE(killed_at, Clock::time_point{});
  EXPECT_GE(clean_after_kill, 2 * key_count) << "the client never recovered";
  for (const auto& t : failed_at) EXPECT_GE(t, killed_at) << "a failure before the kill";
  const auto window =
      failed_at.empty()
          ? 0ms
          : std::chrono::duration_cast<std::chrono::milliseconds>(failed_at.back() - killed_at);
  // The killed master's slots now have a new master, and the client found it.
  bool victim_still_listed = false;
  for (const auto& m : store_->masters()) victim_still_listed |= m.port == victim_port;
  EXPECT_FALSE(victim_still_listed);
  std::cout << "master killed under load: " << operations << " operations, " << failed_at.size()
            << " failed, all within " << window.count() << " ms of the kill (cluster-node-timeout "
            << "2000 ms); MOVED " << store_->cluster_stats().moved << ", map refreshes "
            << store_->cluster_stats().refreshes << "\n";
}

}  // namespace
}  // namespace promptcache
