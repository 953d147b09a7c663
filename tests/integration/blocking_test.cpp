// BlockingCache (cache/blocking.hpp) against a real redis-server and the in-process store: the
// calls a program without coroutines writes — braced JSON values, capturing lambdas as
// fallbacks and loaders — work as written; a Redis outage costs reads nothing and writes a
// CacheError; destroying the facade never hangs, whatever state the cache is in.
#include "promptcache/cache/blocking.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "promptcache/cache/keys.hpp"
#include "promptcache/error.hpp"
#include "promptcache/json_text.hpp"
#include "support/redis_server.hpp"

namespace promptcache {
namespace {

namespace json = boost::json;
using cache::BlockingCache;
using namespace std::chrono_literals;
using cache::CacheConfig;
using cache::CacheError;
using testing::RedisServer;

CacheConfig redis_config(const RedisServer& redis) {
  CacheConfig config;
  config.redis = net::ClientConfig::from_url(redis.url());
  config.redis->command_timeout = std::chrono::milliseconds(500);
  config.redis->connect_timeout = std::chrono::milliseconds(500);
  return config;
}

class Blocking : public ::testing::TestWithParam<bool> {  // true: Redis, false: in-process
 protected:
  CacheConfig config() {
    if (!GetParam()) return CacheConfig{};
    if (!redis_) redis_ = std::make_unique<RedisServer>();
    return redis_config(*redis_);
  }
  std::unique_ptr<RedisServer> redis_;
};

TEST_P(Blocking, BracedValuesAndCapturingLambdasWorkAsWritten) {
  BlockingCache cache(config());
  cache.set("greeting", {{"text", "hello"}, {"n", 1}});
  const auto v = cache.get("greeting");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(json::serialize(*v), R"({"text":"hello","n":1})");
  EXPECT_EQ(cache.get_json("greeting").value_or(""), R"({"text":"hello","n":1})");

  // A fallback capturing strings by value (what g++ 12 destroys twice inside a co_await).
  const std::string source(200, 's');
  int calls = 0;
  for (int i = 0; i < 3; ++i) {
    const json::value got = cache.get_with_fallback("fb", [source, &calls] {
      ++calls;
      return json::value{{"from", source}};
    });
    EXPECT_EQ(got.at("from").as_string(), source);
  }
  EXPECT_EQ(calls, 1) << "the fallback's value is cached";

  // A loader's "not found" is remembered; a value is cached.
  int loads = 0;
  auto none = [&loads]() -> std::optional<json::value> {
    ++loads;
    return std::nullopt;
  };
  EXPECT_FALSE(cache.get_or_load("absent", none).has_value());
  EXPECT_FALSE(cache.get_or_load("absent", none).has_value());
  EXPECT_EQ(loads, 1);

  // Analysis keys: the prompt's hash, the fallback's value under the seed's key layout.
  const std::string prompt_key = cache::prompt_hash("Summarize this text");
  int analysed = 0;
  auto analyse = [&analysed] {
    ++analysed;
    return json::value{{"clarity", 0.7}};
  };
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(cache.get_analysis_with_fallback(prompt_key, "u2", "default", analyse),
              json::value({{"clarity", 0.7}}));
  }
  EXPECT_EQ(analysed, 1);
  EXPECT_EQ(cache.get_analysis_result(prompt_key, "u2").value_or(nullptr),
            json::value({{"clarity", 0.7}}));
  EXPECT_FALSE(cache.get_or_load_analysis(prompt_key, "u2", "other", none).has_value());

  // The seed's analysis operations and invalidation.
  const std::string hash(64, 'a');
  cache.set_analysis_result(hash, "u1", "default", {{"score", 0.8}});
  EXPECT_EQ(json_text(cache.get_analysis_result(hash, "u1").value()), R"({"score":0.8})");
  EXPECT_EQ(cache.invalidate_user_analysis_cache("u1"), 1u);
  EXPECT_FALSE(cache.get_analysis_result(hash, "u1").has_value());
  cache.set_multiple({{"m1", 1}, {"m2", {{"x", true}}}});
  const auto many = cache.get_multiple({"m1", "m2", "m3"});
  ASSERT_EQ(many.size(), 3u);
  EXPECT_EQ(many[0], json::value(1));
  EXPECT_EQ(many[1], json::value({{"x", true}}));
  EXPECT_FALSE(many[2].has_value());
  EXPECT_TRUE(cache.delete_key("m1"));
  EXPECT_FALSE(cache.delete_key("m1"));
  EXPECT_TRUE(cache.get_cache_stats().contains("client"));
}

TEST_P(Blocking, TheCoroutineApiUnderneathHasTheAnalysisKeyCallsToo) {
  BlockingCache cache(config());
  const std::string hash = cache::prompt_hash("a prompt");
  int calls = 0;
  const cache::PromptCacheService::Fallback fallback =
      [&calls]() -> boost::asio::awaitable<json::value> {
    ++calls;
    co_return json::value{{"score", 1}};
  };
  const cache::PromptCacheService::Loader loader =
      [&calls]() -> boost::asio::awaitable<std::optional<json::value>> {
    ++calls;
    co_return std::nullopt;
  };
  auto on_loop = [&](auto op) {
    return boost::asio::co_spawn(cache.executor(), std::move(op), boost::asio::use_future).get();
  };
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(on_loop(cache.service().get_analysis_with_fallback(hash, "u", "t", fallback)),
              json::value({{"score", 1}}));
    EXPECT_FALSE(on_loop(cache.service().get_or_load_analysis(hash, "u", "absent", loader)));
  }
  EXPECT_EQ(calls, 2) << "one fallback call, one loader call: both answered from the cache after";
  EXPECT_EQ(cache.get(cache::analysis_key(hash, "u", "t")), json::value({{"score", 1}}));
}

TEST_P(Blocking, AFallbacksExceptionReachesTheCallerAndNothingIsCached) {
  BlockingCache cache(config());
  EXPECT_THROW(
      cache.get_with_fallback(
          "boom", []() -> json::value { throw std::runtime_error("the database is down"); }),
      std::runtime_error);
  EXPECT_FALSE(cache.get("boom").has_value());
}

TEST_P(Blocking, CallingTheFacadeFromItsOwnLoopIsALogicErrorNotADeadlock) {
  BlockingCache cache(config());
  EXPECT_THROW(cache.get_with_fallback(
                   "inner", [&cache] { return json::value(cache.get("other").has_value()); }),
               std::logic_error);
}

TEST_P(Blocking, ManyThreadsShareOneFacade) {
  BlockingCache cache(config());
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string key = fmt::format("t{}:{}", t, i % 10);
        cache.set(key, {{"t", t}, {"i", i}});
        const auto v = cache.get(key);
        if (!v || v->at("t") != json::value(t)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Stores, Blocking, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Redis" : "InProcess"; });

// The coroutine API: an exception in the user's work never leaves the loop running on the
// cache's connections, with closing() as the completion handler.
TEST(SafeToHold, AnExceptionInTheWorkEndsTheLoopWithClosing) {
  RedisServer redis;
  boost::asio::io_context io(1);
  auto cache = cache::PromptCacheService::from_config(redis_config(redis), {io.get_executor()});
  auto work = [&]() -> boost::asio::awaitable<void> {
    co_await cache->set("k", json::value(1));  // connected: the loop has work of its own now
    throw std::runtime_error("the user's code failed");
  };
  boost::asio::co_spawn(io, work(), cache->closing());
  EXPECT_THROW(io.run(), std::runtime_error);  // rethrown: run() returned
  io.restart();
  io.run();  // what the close left to do; returns, as nothing keeps the loop alive

  boost::asio::io_context io2(1);
  auto cache2 = cache::PromptCacheService::from_config(redis_config(redis), {io2.get_executor()});
  std::exception_ptr seen;
  auto work2 = [&]() -> boost::asio::awaitable<int> {
    co_await cache2->set("k2", json::value(2));
    throw std::logic_error("again");
    co_return 0;
  };
  boost::asio::co_spawn(io2, work2(),
                        cache2->closing([&](std::exception_ptr e) { seen = std::move(e); }));
  io2.run();  // returns once the work ended and the cache closed
  EXPECT_TRUE(seen);
}

// Background work belongs to the service: destroyed while an early refresh is under way on a
// loop that keeps running, the refresh runs its loader to the end (it owns what it captures),
// its fill meets a closed store, and the loop then runs out. Under ASan this is also the proof
// that nothing touches the destroyed service.
TEST(SafeToHold, TheServiceMayGoWhileAnEarlyRefreshRunsOnItsLoop) {
  RedisServer redis;
  boost::asio::io_context io(1);
  CacheConfig config = redis_config(redis);
  config.service.early_refresh = 0.5;  // the last half of a TTL
  auto service = cache::PromptCacheService::from_config(config, {io.get_executor()});
  auto started = std::make_shared<std::atomic<int>>(0);
  auto finished = std::make_shared<std::atomic<int>>(0);
  const cache::PromptCacheService::Fallback fallback =
      [started, finished]() -> boost::asio::awaitable<json::value> {
    const int n = ++*started;
    boost::asio::steady_timer slow(co_await boost::asio::this_coro::executor, 300ms);
    co_await slow.async_wait(boost::asio::use_awaitable);
    ++*finished;
    co_return json::value(n);
  };
  bool destroyed = false;
  auto work = [&]() -> boost::asio::awaitable<void> {
    EXPECT_EQ(co_await service->get_with_fallback("k", fallback, 4s), json::value(1));
    boost::asio::steady_timer pause(co_await boost::asio::this_coro::executor, 3200ms);
    co_await pause.async_wait(boost::asio::use_awaitable);  // 0.8 s left: 3 reads in 5 refresh
    for (int i = 0; i < 200 && service->counters().early_refreshes == 0; ++i) {
      EXPECT_EQ(co_await service->get_with_fallback("k", fallback, 4s), json::value(1));
    }
    EXPECT_EQ(service->counters().early_refreshes, 1u);
    EXPECT_EQ(*finished, 1);  // the refresh's loader is asleep
    service.reset();
    destroyed = true;
  };
  boost::asio::co_spawn(io, work(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();  // returns: the refresh ended, and nothing else holds the loop
  EXPECT_TRUE(destroyed);
  EXPECT_EQ(*started, 2);
  EXPECT_EQ(*finished, 2);
  // The refresh's value (2) was not stored: its fill met the closed store.
  BlockingCache check(redis_config(redis));
  EXPECT_NE(check.get("k"), std::optional<json::value>(json::value(2)));
}

TEST(BlockingRedisDown, ReadsFailOpenWritesThrowAndTheDestructorReturns) {
  auto redis = std::make_unique<RedisServer>();
  const CacheConfig config = redis_config(*redis);
  redis.reset();  // down before the first command
  BlockingCache cache(config);
  EXPECT_FALSE(cache.get("k").has_value());
  int calls = 0;
  EXPECT_EQ(cache.get_with_fallback("k", [&calls] { return ++calls; }), json::value(1));
  try {
    cache.set("k", {{"v", 1}});
    ADD_FAILURE() << "a write with Redis down did not throw";
  } catch (const CacheError& e) {
    // Why, as a code: the connection refused (the system's code), or the breaker it opened —
    // told apart from a timeout.
    EXPECT_TRUE(e.code() == boost::system::errc::connection_refused ||
                e.code() == promptcache::error::not_connected ||
                e.code() == promptcache::error::circuit_open)
        << e.code().message() << ": " << e.what();
    EXPECT_NE(e.code(), promptcache::error::timeout);
  }
  EXPECT_THROW(cache.set("k", {{"v", -1}}, -5s), std::invalid_argument);
  EXPECT_THROW((void)cache.invalidate_user_analysis_cache("u"), CacheError);
  // ~BlockingCache: closes a cache that never connected, joins its thread.
}

}  // namespace
}  // namespace promptcache
