// The client and the service on a real Sentinel group (a master, a replica, three sentinels):
// the master is found through the sentinels, and found again after a failover — one asked for
// (SENTINEL FAILOVER) or forced (the master killed) — while the load goes on.
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>

#include "promptcache/cache/config.hpp"
#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/error.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/redis_store.hpp"
#include "support/co_assert.hpp"
#include "support/io_runner.hpp"
#include "support/redis_sentinel.hpp"

namespace promptcache {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::RedisSentinelGroup;
using testing::RedisServer;
using testing::run_until_done;
using Clock = std::chrono::steady_clock;

class Sentinel : public ::testing::Test {
 protected:
  net::ClientConfig config(std::string_view master_name) const {
    auto cfg = net::ClientConfig::from_url(
        fmt::format("redis+sentinel://{}/{}", group_.sentinel_addresses(), master_name));
    cfg.connect_timeout = 2s;
    cfg.command_timeout = 2s;
    cfg.reconnect_max_delay = 300ms;
    return cfg;
  }
  template <class T>
  T run(asio::awaitable<T> task) {
    return run_until_done(io_, std::move(task), std::chrono::seconds(120));
  }

  // Writes and reads back `keys` in rounds while `trigger` runs on a thread of its own (a
  // failover), until two clean rounds after it returned. Failures are timed from its start.
  struct LoadReport {
    int operations = 0;
    int failures = 0;
    int failures_before = 0;              // before the trigger started: must be none
    std::chrono::milliseconds window{0};  // from the trigger's start to the last failure
    bool recovered = false;
    int last_round = -1;  // the round that wrote every key last
    RedisServer* new_master = nullptr;
  };
  LoadReport load_through(store::RedisStore& store, std::function<RedisServer*()> trigger) {
    LoadReport report;
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    Clock::time_point started_at{};
    std::thread side;
    constexpr int key_count = 200;
    run([&]() -> asio::awaitable<void> {
      int clean_after = 0;
      const auto give_up = Clock::now() + 90s;
      for (int round = 0; Clock::now() < give_up; ++round) {
        if (round == 3) {
          started_at = Clock::now();
          started = true;
          side = std::thread([&] {
            report.new_master = trigger();
            finished = true;
          });
        }
        for (int i = 0; i < key_count; ++i) {
          const std::string key = fmt::format("sentinel:{}", i);
          const std::string value = fmt::format("r{}", round);
          bool ok = !co_await store.set(key, value, 0s);
          if (ok) {
            auto r = co_await store.get(key);
            ok = r && *r == std::optional<std::string>(value);
          }
          ++report.operations;
          if (ok) {
            if (finished) ++clean_after;
            continue;
          }
          ++report.failures;
          clean_after = 0;
          if (!started) {
            ++report.failures_before;
          } else {
            report.window =
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_at);
          }
        }
        report.last_round = round;
        if (clean_after >= 2 * key_count) {
          report.recovered = true;
          break;
        }
        co_await testing::sleep_for(5ms);  // a steady load, not a spin
      }
    }());
    if (side.joinable()) side.join();
    return report;
  }

  RedisSentinelGroup group_;
  asio::io_context io_;
};

TEST_F(Sentinel, the_client_finds_the_master_through_the_sentinels) {
  auto client = std::make_shared<net::Client>(io_.get_executor(), config(group_.master_name()));
  store::RedisStore store(client);
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT(!co_await store.set("found", "yes", 0s));
    auto v = co_await store.get("found");
    CO_ASSERT(v);
    EXPECT_EQ(*v, std::optional<std::string>("yes"));
  }());
  RedisServer* master = group_.current_master();
  ASSERT_NE(master, nullptr);
  EXPECT_EQ(master->cli({"GET", "found"}), "yes");  // written to the master, not elsewhere
  client->close();
}

TEST_F(Sentinel, a_sentinel_that_is_down_is_skipped) {
  group_.sentinels()[0]->stop();
  auto client = std::make_shared<net::Client>(io_.get_executor(), config(group_.master_name()));
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await client->connect());
    auto pong = co_await client->command([] {
      resp::Request r;
      r.push("PING");
      return r;
    }());
    CO_ASSERT(pong);
    EXPECT_EQ(pong->value, "PONG");
  }());
  client->close();
}

TEST_F(Sentinel, an_unknown_master_name_is_a_clear_connect_error) {
  auto client = std::make_shared<net::Client>(io_.get_executor(), config("no-such-master"));
  run([&]() -> asio::awaitable<void> {
    const auto ec = co_await client->connect();
    EXPECT_EQ(ec, make_error_code(error::not_master));
  }());
  const std::string why = client->last_error_message();
  EXPECT_NE(why.find("no-such-master"), std::string::npos) << why;
  EXPECT_NE(why.find("does not know"), std::string::npos) << why;
  client->close();
}

TEST_F(Sentinel, sentinel_failover_under_load_the_client_follows_the_new_master) {
  RedisServer* old_master = group_.current_master();
  ASSERT_NE(old_master, nullptr);
  auto client = std::make_shared<net::Client>(io_.get_executor(), config(group_.master_name()));
  store::RedisStore store(client);
  // Until the old master is a replica too: from then on a client that did not follow would
  // see its writes refused.
  const LoadReport report = load_through(store, [&] {
    RedisServer* promoted = group_.failover();
    for (int i = 0; i < 300 && old_master->cli({"ROLE"}).rfind("slave", 0) != 0; ++i) {
      std::this_thread::sleep_for(100ms);
    }
    return promoted;
  });
  client->close();
  ASSERT_NE(report.new_master, nullptr);
  EXPECT_NE(report.new_master, old_master);
  EXPECT_TRUE(report.recovered) << report.failures << " failures";
  EXPECT_EQ(report.failures_before, 0);
  // The last round went to the new master, and the old one is its replica.
  EXPECT_EQ(report.new_master->cli({"ROLE"}).substr(0, 6), "master");
  EXPECT_EQ(old_master->cli({"ROLE"}).substr(0, 5), "slave");
  EXPECT_EQ(report.new_master->cli({"GET", "sentinel:199"}), fmt::format("r{}", report.last_round));
  std::cout << "SENTINEL FAILOVER under load: " << report.operations << " operations, "
            << report.failures << " failed, the last " << report.window.count()
            << " ms after the failover began\n";
}

TEST_F(Sentinel, a_killed_master_is_replaced_and_the_service_follows) {
  RedisServer* old_master = group_.current_master();
  ASSERT_NE(old_master, nullptr);
  RedisServer* replica =
      group_.data_nodes()[0] == old_master ? group_.data_nodes()[1] : group_.data_nodes()[0];
  cache::CacheConfig cache_config;
  cache_config.redis = config(group_.master_name());
  auto service = cache::PromptCacheService::from_config(cache_config, {io_.get_executor()});
  const std::string key = cache::analysis_key(fmt::format("{:064x}", 1), "u", "default");
  run([&]() -> asio::awaitable<void> {
    co_await service->set(key, boost::json::value("before"));
  }());
  old_master->stop();  // SIGKILL: the sentinels promote the replica after down-after 1 s
  bool promoted = false;
  std::thread wait([&] { promoted = group_.wait_master(replica); });
  int failures = 0;
  const auto killed_at = Clock::now();
  std::chrono::milliseconds recovered_after{0};
  run([&]() -> asio::awaitable<void> {
    // Writes fail until the replica is promoted (the breaker may skip some), then succeed
    // without a new client.
    for (int i = 0; Clock::now() - killed_at < 60s; ++i) {
      bool ok = true;
      try {
        co_await service->set(key, boost::json::value(i));
      } catch (const cache::CacheError&) {
        ok = false;
      }
      auto back = co_await service->get(key);
      if (ok && back && *back == boost::json::value(i)) {
        recovered_after =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed_at);
        break;
      }
      ++failures;
      co_await testing::sleep_for(20ms);
    }
  }());
  wait.join();
  EXPECT_TRUE(promoted);
  EXPECT_GT(recovered_after.count(), 0) << "never recovered";
  EXPECT_EQ(replica->cli({"ROLE"}).substr(0, 6), "master");
  std::cout << "master killed: the service wrote to the promoted replica "
            << recovered_after.count() << " ms after the kill (" << failures
            << " failed attempts before)\n";
  service->close();
}

}  // namespace
}  // namespace promptcache
