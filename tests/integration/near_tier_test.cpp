// The near tier on real servers (issue 6): hits answered in process, kept coherent by CLIENT
// TRACKING pushes (default and BCAST), flushed when the connection drops, off on a server that
// cannot track, never past the Redis entry's TTL, and on a cluster (a stream per master).
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/near_tier.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/cluster_store.hpp"
#include "promptcache/store/local_store.hpp"
#include "promptcache/store/redis_store.hpp"
#include "support/co_assert.hpp"
#include "support/hooked_store.hpp"
#include "support/io_runner.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"

namespace promptcache {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using cache::NearTier;
using cache::PromptCacheService;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::run_until_done;
using testing::sleep_for;
using namespace std::chrono_literals;
using Json = json::value;

std::uint64_t keyspace_hits(RedisServer& server) {
  const std::string info = server.cli({"INFO", "stats"});
  const auto at = info.find("keyspace_hits:");
  return at == std::string::npos ? 0 : std::stoull(info.substr(at + 14));
}

class Near : public ::testing::Test {
 protected:
  void start(RedisServerOptions server_options = {}, bool bcast = false) {
    server_ = std::make_unique<RedisServer>(server_options);
    near_ = std::make_shared<NearTier>();
    net::ClientConfig cfg = net::ClientConfig::from_url(server_->url());
    if (!server_options.password.empty()) cfg.password = server_options.password;
    cfg.reconnect_min_delay = 20ms;
    cfg.reconnect_max_delay = 100ms;
    cfg.tracking.listener = near_;
    cfg.tracking.bcast = bcast;
    if (bcast) cfg.tracking.prefixes.push_back("prompt:");
    auto store =
        std::make_shared<store::RedisStore>(std::make_shared<net::Client>(io_.get_executor(), cfg));
    service_ = std::make_unique<PromptCacheService>(store, cache::ServiceOptions{}, nullptr, near_);
  }
  void TearDown() override {
    service_.reset();
    io_.restart();
    io_.poll();
  }
  template <class T>
  T run(asio::awaitable<T> task) {
    io_.restart();
    return run_until_done(io_, std::move(task), std::chrono::seconds(30));
  }
  // Reads `key` until it is `want` or `limit` passes; the reads it took.
  asio::awaitable<int> read_until(const std::string& key, const Json& want,
                                  std::chrono::milliseconds limit = 3000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (int reads = 1;; ++reads) {
      auto v = co_await service_->get(key);
      if (v == std::optional<Json>(want)) co_return reads;
      if (std::chrono::steady_clock::now() > end) co_return -1;
      co_await sleep_for(2ms);
    }
  }

  asio::io_context io_;
  std::unique_ptr<RedisServer> server_;
  std::shared_ptr<NearTier> near_;
  std::unique_ptr<PromptCacheService> service_;
};

TEST_F(Near, a_second_read_is_answered_in_process_with_the_same_shared_value) {
  start();
  const std::string key = cache::analysis_key("h", "u", "t");
  run([&]() -> asio::awaitable<void> {
    co_await service_->set(key, Json(42));
    EXPECT_EQ(co_await service_->get(key), std::optional<Json>(Json(42)));  // from Redis
  }());
  const std::uint64_t before = keyspace_hits(*server_);
  run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(co_await service_->get(key), std::optional<Json>(Json(42)));
    }
  }());
  EXPECT_EQ(keyspace_hits(*server_), before);  // Redis was not asked
  EXPECT_EQ(service_->counters().near_hits, 10u);
  const auto a = service_->peek(key);
  const auto b = service_->peek(key);
  ASSERT_TRUE(a);
  EXPECT_EQ(a.get(), b.get());  // one immutable value, shared
  EXPECT_EQ(a->text, "42");
  auto shared = run(service_->get_shared(key));
  EXPECT_EQ(shared.get(), a.get());
}

TEST_F(Near, a_write_by_another_client_reaches_the_next_read_once_pushed) {
  start();
  const std::string key = cache::analysis_key("h", "u", "t");
  run([&]() -> asio::awaitable<void> {
    co_await service_->set(key, Json(1));
    EXPECT_EQ(co_await service_->get(key), std::optional<Json>(Json(1)));
    EXPECT_TRUE(service_->peek(key));
  }());
  ASSERT_EQ(server_->cli({"SET", key, "2"}), "OK");  // plain JSON, as another writer
  EXPECT_GT(run(read_until(key, Json(2))), 0);
  EXPECT_GE(near_->stats().keys_invalidated, 1u);
  ASSERT_EQ(server_->cli({"DEL", key}), "1");
  run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 1000 && service_->peek(key); ++i) co_await sleep_for(2ms);
    EXPECT_FALSE(service_->peek(key));
    EXPECT_FALSE(co_await service_->get(key));
  }());
}

TEST_F(Near, this_services_own_writes_and_invalidations_are_seen_at_once) {
  start();
  const std::string key = cache::analysis_key("h", "u", "t");
  run([&]() -> asio::awaitable<void> {
    co_await service_->set(key, Json(1));
    (void)co_await service_->get(key);
    co_await service_->set(key, Json(2));
    EXPECT_EQ(co_await service_->get(key), std::optional<Json>(Json(2)));  // no push awaited
    (void)co_await service_->get(key);
    EXPECT_TRUE(co_await service_->delete_key(key));
    EXPECT_FALSE(co_await service_->get(key));
    co_await service_->set(key, Json(3));
    (void)co_await service_->get(key);
    EXPECT_EQ(co_await service_->invalidate_user_analysis_cache("u"), 1u);
    EXPECT_FALSE(co_await service_->get(key));
  }());
}

TEST_F(Near, a_dropped_connection_flushes_the_tier) {
  start();
  const std::string key = cache::analysis_key("h", "u", "t");
  run([&]() -> asio::awaitable<void> {
    co_await service_->set(key, Json(1));
    (void)co_await service_->get(key);
    EXPECT_TRUE(service_->peek(key));
  }());
  (void)server_->cli({"CLIENT", "KILL", "TYPE", "normal"});
  run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 1000 && service_->peek(key); ++i) co_await sleep_for(2ms);
    EXPECT_FALSE(service_->peek(key));
    // Changed while nobody listened: the tier must not answer from before.
    EXPECT_EQ(co_await service_->get(key), std::optional<Json>(Json(1)));
  }());
  EXPECT_GE(near_->stats().link_flushes, 1u);
}

TEST_F(Near, a_server_without_resp3_turns_the_tier_off_and_reads_stay_right) {
  start(RedisServerOptions{.extra_config = {"rename-command HELLO \"\""}});
  const std::string key = cache::analysis_key("h", "u", "t");
  run([&]() -> asio::awaitable<void> {
    co_await service_->set(key, Json(1));
    EXPECT_EQ(co_await service_->get(key), std::optional<Json>(Json(1)));
    EXPECT_EQ(co_await service_->get(key), std::optional<Json>(Json(1)));
  }());
  EXPECT_FALSE(near_->active());
  EXPECT_FALSE(service_->peek(key));
  EXPECT_EQ(service_->counters().near_hits, 0u);
  ASSERT_EQ(server_->cli({"SET", key, "2"}), "OK");
  EXPECT_EQ(run(service_->get(key)), std::optional<Json>(Json(2)));
}

TEST_F(Near, bcast_mode_hears_of_changes_to_keys_never_read) {
  start({}, true);
  const std::string read_key = cache::analysis_key("h", "u", "t");
  run([&]() -> asio::awaitable<void> {
    co_await service_->set(read_key, Json(1));
    (void)co_await service_->get(read_key);
  }());
  const auto before = near_->stats().keys_invalidated;
  ASSERT_EQ(server_->cli({"SET", "prompt:analysis:never:{read}:t", "1"}), "OK");
  ASSERT_EQ(server_->cli({"SET", "elsewhere", "1"}), "OK");  // outside the prefix
  run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < 1000 && near_->stats().keys_invalidated == before; ++i) {
      co_await sleep_for(2ms);
    }
  }());
  EXPECT_EQ(near_->stats().keys_invalidated, before + 1);
  ASSERT_EQ(server_->cli({"SET", read_key, "2"}), "OK");
  EXPECT_GT(run(read_until(read_key, Json(2))), 0);
}

TEST_F(Near, an_entry_never_outlives_its_redis_ttl) {
  start();
  const std::string key = cache::analysis_key("h", "u", "t");
  run([&]() -> asio::awaitable<void> {
    co_await service_->set(key, Json(1), 1s);
    EXPECT_EQ(co_await service_->get(key), std::optional<Json>(Json(1)));
    EXPECT_TRUE(service_->peek(key));
    co_await sleep_for(1200ms);
    EXPECT_FALSE(service_->peek(key));
    EXPECT_FALSE(co_await service_->get(key));
  }());
}

TEST(NearOnCluster, each_masters_stream_keeps_the_tier_coherent) {
  testing::RedisCluster cluster;
  asio::io_context io;
  auto near = std::make_shared<NearTier>();
  net::ClientConfig cfg;
  cfg.tracking.listener = near;
  std::vector<asio::any_io_executor> executors{io.get_executor()};
  std::vector<cluster::NodeAddress> seeds;
  for (auto* n : cluster.nodes()) seeds.push_back({"127.0.0.1", n->port()});
  auto store = std::make_shared<store::ClusterStore>(executors, cfg, seeds);
  PromptCacheService service(store, cache::ServiceOptions{}, nullptr, near);
  std::vector<std::string> keys;
  for (int u = 0; u < 30; ++u) keys.push_back(cache::analysis_key("h", fmt::format("u{}", u), "t"));
  run_until_done(io, [&]() -> asio::awaitable<void> {
    for (const auto& k : keys) {
      co_await service.set(k, Json(1));
      (void)co_await service.get(k);
    }
    for (const auto& k : keys) EXPECT_EQ(co_await service.get(k), std::optional<Json>(Json(1)));
  }());
  EXPECT_EQ(service.counters().near_hits, keys.size());
  // Each key written on its own master by another client.
  for (const auto& k : keys) {
    bool written = false;
    for (auto* m : cluster.masters()) {
      if (m->cli({"SET", k, "2"}) == "OK") written = true;
    }
    ASSERT_TRUE(written) << k;
  }
  run_until_done(io, [&]() -> asio::awaitable<void> {
    for (const auto& k : keys) {
      bool seen = false;
      for (int i = 0; i < 1000 && !seen; ++i) {
        seen = co_await service.get(k) == std::optional<Json>(Json(2));
        if (!seen) co_await sleep_for(2ms);
      }
      EXPECT_TRUE(seen) << k;
    }
  }());
  store->close();
  io.restart();
  io.poll();
}

}  // namespace
}  // namespace promptcache

namespace promptcache {
namespace {

// A store whose reads take their value at once but answer only after `delay`: what a read
// looks like when a write and its invalidation push land between the server's reply and the
// caller's resumption.
std::shared_ptr<store::Store> slow_reads(std::shared_ptr<store::Store> inner,
                                         std::chrono::milliseconds delay) {
  auto hooked = std::make_shared<testing::HookedStore>(std::move(inner));
  hooked->after = [delay](std::string_view op, std::string) -> asio::awaitable<void> {
    if (op == "get") co_await sleep_for(delay);  // read now, answered later
  };
  return hooked;
}

// The race the placeholder exists for, on both kinds of coherence loss: the value a read took
// before a change is answered to that read but never kept.
void race(bool flush_instead) {
  asio::io_context io;
  auto inner = std::make_shared<store::LocalStore>();
  auto near = std::make_shared<NearTier>();
  PromptCacheService service(slow_reads(inner, 50ms), cache::ServiceOptions{}, nullptr, near);
  PromptCacheService writer(inner);  // another process: its writes bypass our near tier
  const std::string key = cache::analysis_key("h", "u", "t");
  std::optional<Json> raced;
  run_until_done(io, [&]() -> asio::awaitable<void> {
    co_await writer.set(key, Json(1));
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { raced = co_await service.get(key); }, asio::detached);
    co_await sleep_for(10ms);  // the read has taken the old value and waits for its reply
    co_await writer.set(key, Json(2));
    if (flush_instead) {
      near->link_down();
    } else {
      near->invalidated(key);  // the push for the write
    }
    co_await sleep_for(100ms);                       // the raced read has completed
    EXPECT_EQ(raced, std::optional<Json>(Json(1)));  // it read before the write: fine
    EXPECT_FALSE(service.peek(key));                 // but it was not kept
    EXPECT_EQ(co_await service.get(key), std::optional<Json>(Json(2)));
  }());
}

TEST(NearRace, a_read_racing_an_invalidation_is_answered_but_never_kept) {
  race(false);
}

TEST(NearRace, a_read_racing_a_dropped_connection_is_answered_but_never_kept) {
  race(true);
}

}  // namespace
}  // namespace promptcache
