// What only the Redis store does: a set_multiple batch goes out as several pipelined requests
// with a bounded window in flight, and every entry's fate is accounted for — refused entries
// among accepted ones, a batch larger than the window, a server that is down.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "promptcache/cache/config.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/error.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/detect.hpp"
#include "promptcache/store/factory.hpp"
#include "promptcache/store/redis_store.hpp"
#include "support/co_assert.hpp"
#include "support/io_runner.hpp"
#include "support/redis_server.hpp"

namespace promptcache {
namespace {

namespace asio = boost::asio;
using net::Client;
using net::ClientConfig;
using store::Entry;
using store::RedisStore;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::run_until_done;
using namespace std::chrono_literals;

struct Fixture {
  explicit Fixture(const std::string& url, std::chrono::milliseconds timeout = 10s) {
    ClientConfig cfg = ClientConfig::from_url(url);
    cfg.command_timeout = timeout;
    cfg.connect_timeout = 2s;
    client = std::make_shared<Client>(io.get_executor(), cfg);
    store = std::make_unique<RedisStore>(client);
  }
  template <class T>
  T run(asio::awaitable<T> task) {
    return run_until_done(io, std::move(task), std::chrono::seconds(120));
  }
  asio::io_context io;
  std::shared_ptr<Client> client;
  std::unique_ptr<RedisStore> store;
};

std::vector<Entry> one_kib_entries(std::size_t n, const std::string& prefix) {
  std::vector<Entry> entries;
  for (std::size_t i = 0; i < n; ++i) {
    entries.push_back(Entry{fmt::format("{}{}", prefix, i),
                            std::string(1024, static_cast<char>('a' + i % 26)), 3600s});
  }
  return entries;
}

TEST(RedisStore, set_multiple_counts_exactly_the_entries_the_server_refused_across_requests) {
  // The user may write only keys under ok: — every other entry gets a NOPERM error reply.
  RedisServer server(RedisServerOptions{
      .acl_user = "app",
      .acl_password = "pw",
      .extra_config = {"user limited on >pw ~ok:* +@all"},
  });
  Fixture f(fmt::format("redis://limited:pw@127.0.0.1:{}", server.port()));
  // 3 000 entries of 1 KiB are many requests and more than the window: refused ones are spread
  // over all of them.
  std::vector<Entry> entries;
  std::size_t refused = 0;
  for (std::size_t i = 0; i < 3000; ++i) {
    const bool allowed = i % 7 != 3;
    refused += allowed ? 0 : 1;
    entries.push_back(
        Entry{fmt::format("{}:{}", allowed ? "ok" : "no", i), std::string(1024, 'v'), 0s});
  }
  f.run([&]() -> asio::awaitable<void> {
    auto failed = co_await f.store->set_multiple(entries);
    CO_ASSERT(failed);
    EXPECT_EQ(*failed, refused);
  }());
  // redis-cli signs in as "app", who may see every key.
  EXPECT_EQ(server.cli({"DBSIZE"}), std::to_string(entries.size() - refused));
  EXPECT_EQ(server.cli({"EXISTS", "no:3"}), "0");
  EXPECT_EQ(server.cli({"STRLEN", "ok:2998"}), "1024");
}

TEST(RedisStore, set_multiple_larger_than_its_window_writes_every_entry_once_in_order) {
  RedisServer server;
  Fixture f(server.url());
  // The same key written twice in one batch: the later value must win, as it would with one
  // request, so chunks must reach the server in order.
  std::vector<Entry> entries = one_kib_entries(6000, "big:");
  entries.push_back(Entry{"big:0", "last", 0s});
  f.run([&]() -> asio::awaitable<void> {
    auto failed = co_await f.store->set_multiple(entries);
    CO_ASSERT(failed);
    EXPECT_EQ(*failed, 0u);
    auto first = co_await f.store->get("big:0");
    CO_ASSERT(first);
    EXPECT_EQ(*first, std::optional<std::string>("last"));
  }());
  EXPECT_EQ(server.cli({"DBSIZE"}), "6000");
  EXPECT_NE(server.cli({"INFO", "commandstats"}).find("cmdstat_set:calls=6001,"),
            std::string::npos);
  EXPECT_GT(std::stoi(server.cli({"TTL", "big:5999"})), 3500);
}

TEST(RedisStore, set_multiple_with_the_server_down_is_an_error_not_a_count) {
  RedisServer server;
  Fixture f(server.url(), 500ms);
  server.stop();
  const std::vector<Entry> entries = one_kib_entries(1000, "down:");
  f.run([&]() -> asio::awaitable<void> {
    auto failed = co_await f.store->set_multiple(entries);
    EXPECT_TRUE(failed.has_error());
  }());
}

TEST(RedisStore, get_into_with_the_server_down_is_an_error_and_visits_nothing) {
  RedisServer server;
  Fixture f(server.url(), 500ms);
  server.stop();
  struct Never final : store::ValueVisitor {
    void on_value(std::string_view) noexcept override { called = true; }
    bool called = false;
  } never;
  f.run([&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await f.store->get_into("k", {}, never));
  }());
  EXPECT_FALSE(never.called);
}

TEST(RedisStore, set_multiple_after_the_server_returns_writes_everything) {
  RedisServer server;
  Fixture f(server.url(), 2s);
  const std::vector<Entry> entries = one_kib_entries(2000, "back:");
  f.run([&]() -> asio::awaitable<void> {
    auto first = co_await f.store->set_multiple(entries);
    CO_ASSERT(first && *first == 0u);
  }());
  server.stop();
  server.start();
  f.run([&]() -> asio::awaitable<void> {
    // The first call may meet the dead connection; the client reconnects for the next.
    auto again = co_await f.store->set_multiple(entries);
    if (!again || *again != 0u) again = co_await f.store->set_multiple(entries);
    CO_ASSERT(again);
    EXPECT_EQ(*again, 0u);
  }());
  EXPECT_EQ(server.cli({"DBSIZE"}), "2000");
}

}  // namespace
}  // namespace promptcache

namespace promptcache {
namespace {

TEST(MakeStore, a_standalone_server_gets_the_redis_store_and_an_unreachable_one_too) {
  RedisServer server;
  boost::asio::io_context io;
  std::string detail;
  auto enabled =
      store::probe_cluster_enabled_blocking(ClientConfig::from_url(server.url()), detail);
  ASSERT_TRUE(enabled) << detail;
  EXPECT_FALSE(*enabled);
  cache::CacheConfig config;
  config.redis = ClientConfig::from_url(server.url());
  auto chosen = store::make_store(config.store_spec(), {io.get_executor()});
  EXPECT_NE(dynamic_cast<RedisStore*>(chosen.get()), nullptr);
  chosen->close();

  // Down at start-up: it cannot be asked, and one server is assumed, with a reason.
  const std::string url = server.url();
  server.stop();
  auto down = store::probe_cluster_enabled_blocking(ClientConfig::from_url(url), detail);
  EXPECT_FALSE(down);
  EXPECT_NE(detail.find("refused"), std::string::npos) << detail;
  config.redis = ClientConfig::from_url(url);
  auto fallback = store::make_store(config.store_spec(), {io.get_executor()});
  EXPECT_NE(dynamic_cast<RedisStore*>(fallback.get()), nullptr);
  fallback->close();
}

}  // namespace
}  // namespace promptcache

namespace promptcache {
namespace {

// The TTLs Redis holds for `keys` (TTL per key, through redis-cli).
std::vector<long> ttls_of(RedisServer& server, const std::vector<std::string>& keys) {
  std::vector<long> out;
  for (const auto& k : keys) out.push_back(std::stol(server.cli({"TTL", k})));
  return out;
}

TEST(TtlJitter, entries_written_together_get_ttls_spread_over_the_configured_band) {
  RedisServer server;
  boost::asio::io_context io;
  auto client = std::make_shared<Client>(io.get_executor(), ClientConfig::from_url(server.url()));
  cache::ServiceOptions options;
  options.ttl_jitter = 0.2;
  cache::PromptCacheService jittered(std::make_shared<RedisStore>(client), options);
  cache::PromptCacheService exact(std::make_shared<RedisStore>(client), cache::ServiceOptions{});
  std::vector<std::pair<std::string, std::string>> batch;
  std::vector<std::pair<std::string, std::string>> batch_exact;
  std::vector<std::string> keys;
  std::vector<std::string> keys_exact;
  for (int i = 0; i < 100; ++i) {
    keys.push_back(fmt::format("jitter:{}", i));
    keys_exact.push_back(fmt::format("exact:{}", i));
    batch.emplace_back(keys.back(), "1");
    batch_exact.emplace_back(keys_exact.back(), "1");
  }
  run_until_done(io, [&]() -> boost::asio::awaitable<void> {
    co_await jittered.set_multiple_json(batch, 1000s);
    co_await exact.set_multiple_json(batch_exact, 1000s);
    co_await jittered.set_json("jitter:single", "1", 1000s);
    co_await jittered.set_json("jitter:forever", "1", 0s);  // 0: no expiry, never jittered
  }());
  // Reading the TTLs back takes a process per key (seconds under a sanitizer): the bounds
  // allow for the clock running meanwhile.
  constexpr long slack = 30;
  const auto spread = ttls_of(server, keys);
  std::set<long> distinct(spread.begin(), spread.end());
  for (long t : spread) {
    EXPECT_GE(t, 800 - slack);
    EXPECT_LE(t, 1200);
  }
  EXPECT_GT(distinct.size(), 20u);  // 100 draws over 400 seconds' worth of band
  for (long t : ttls_of(server, keys_exact)) {
    EXPECT_GE(t, 1000 - slack);
    EXPECT_LE(t, 1000);
  }
  const long single = std::stol(server.cli({"TTL", "jitter:single"}));
  EXPECT_GE(single, 800 - slack);
  EXPECT_LE(single, 1200);
  EXPECT_EQ(server.cli({"TTL", "jitter:forever"}), "-1");
  client->close();
}

}  // namespace
}  // namespace promptcache
