// Stampede protection (issue 6) on both stores: single-flight, negative caching, stale-if-error,
// early refresh, and — on Redis, across two services with clients of their own — the lease.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "promptcache/cache/service.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/local_store.hpp"
#include "promptcache/store/redis_store.hpp"
#include "support/co_assert.hpp"
#include "support/io_runner.hpp"
#include "support/redis_server.hpp"

namespace promptcache {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using cache::PromptCacheService;
using cache::ServiceOptions;
using testing::RedisServer;
using testing::run_until_done;
using testing::sleep_for;
using namespace std::chrono_literals;
using Json = json::value;
using Fallback = PromptCacheService::Fallback;
using Loader = PromptCacheService::Loader;

enum class Backend { redis, local };

// Made outside coroutines: g++ 12 cannot keep a braced list across a co_await.
Json db_value() {
  return Json(json::object{{"from", "db"}});
}

// Starts `n` copies of `task(i)` on `io` and waits for all of them.
asio::awaitable<void> all_of(asio::io_context& io, std::size_t n,
                             const std::function<asio::awaitable<void>(std::size_t)>& task) {
  std::size_t left = n;
  asio::steady_timer done(io, asio::steady_timer::time_point::max());
  for (std::size_t i = 0; i < n; ++i) {
    asio::co_spawn(io, task(i), [&](std::exception_ptr e) {
      if (e) ADD_FAILURE() << "a concurrent caller threw";
      if (--left == 0) done.cancel();
    });
  }
  boost::system::error_code ignored;
  co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

class Stampede : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::redis) server_ = std::make_unique<RedisServer>();
  }
  void TearDown() override {
    services_.clear();
    io_.restart();
    io_.poll();
  }

  // A service with a store (and client) of its own.
  PromptCacheService& make(ServiceOptions options = {}) {
    std::shared_ptr<store::Store> store;
    if (GetParam() == Backend::redis) {
      auto cfg = net::ClientConfig::from_url(server_->url());
      cfg.command_timeout = 5s;
      store = std::make_shared<store::RedisStore>(
          std::make_shared<net::Client>(io_.get_executor(), cfg));
    } else {
      if (!local_) local_ = std::make_shared<store::LocalStore>();
      store = local_;  // "two processes" on the in-process store share its map
    }
    services_.push_back(std::make_unique<PromptCacheService>(store, options));
    return *services_.back();
  }

  template <class T>
  T run(asio::awaitable<T> task) {
    io_.restart();
    return run_until_done(io_, std::move(task), std::chrono::seconds(60));
  }

  asio::io_context io_;
  std::unique_ptr<RedisServer> server_;
  std::shared_ptr<store::LocalStore> local_;
  std::vector<std::unique_ptr<PromptCacheService>> services_;
};

INSTANTIATE_TEST_SUITE_P(Stores, Stampede, ::testing::Values(Backend::redis, Backend::local),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param == Backend::redis ? "redis" : "local");
                         });

TEST_P(Stampede, thousand_concurrent_misses_of_one_key_make_one_fallback_call) {
  auto& svc = make();
  int calls = 0;
  const Fallback fallback = [&]() -> asio::awaitable<Json> {
    ++calls;
    co_await sleep_for(5ms);
    co_return db_value();
  };
  std::size_t right = 0;
  const std::function<asio::awaitable<void>(std::size_t)> caller =
      [&](std::size_t) -> asio::awaitable<void> {
    Json v = co_await svc.get_with_fallback("cold", fallback);
    right += v == db_value() ? 1 : 0;
  };
  run(all_of(io_, 1000, caller));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(right, 1000u);
  EXPECT_GE(svc.counters().coalesced, 900u);  // most waited; a few may have hit the stored value
  EXPECT_EQ(svc.counters().fallback_calls, 1u);
}

TEST_P(Stampede, concurrent_misses_of_ten_keys_make_ten_fallback_calls_each_with_its_value) {
  auto& svc = make();
  std::map<std::string, int> calls;
  std::size_t right = 0;
  const std::function<asio::awaitable<void>(std::size_t)> caller =
      [&](std::size_t i) -> asio::awaitable<void> {
    const std::string key = fmt::format("cold:{}", i % 10);
    const Fallback fallback = [&calls, key]() -> asio::awaitable<Json> {
      ++calls[key];
      co_await sleep_for(5ms);
      co_return Json(key);
    };
    Json v = co_await svc.get_with_fallback(key, fallback);
    right += v == Json(key) ? 1 : 0;
  };
  run(all_of(io_, 1000, caller));
  EXPECT_EQ(calls.size(), 10u);
  for (const auto& [key, n] : calls) EXPECT_EQ(n, 1) << key;
  EXPECT_EQ(right, 1000u);
}

TEST_P(Stampede, the_fallbacks_error_reaches_every_waiter_and_is_not_cached) {
  auto& svc = make();
  int calls = 0;
  const Fallback failing = [&]() -> asio::awaitable<Json> {
    ++calls;
    co_await sleep_for(5ms);
    throw std::runtime_error("database down");
  };
  std::size_t errors = 0;
  const std::function<asio::awaitable<void>(std::size_t)> caller =
      [&](std::size_t) -> asio::awaitable<void> {
    try {
      (void)co_await svc.get_with_fallback("k", failing);
    } catch (const std::runtime_error& e) {
      errors += std::string_view(e.what()) == "database down" ? 1 : 0;
    }
  };
  run(all_of(io_, 100, caller));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(errors, 100u);
  const Fallback working = [&]() -> asio::awaitable<Json> {
    ++calls;
    co_return Json(7);
  };
  EXPECT_EQ(run(svc.get_with_fallback("k", working)), Json(7));
  EXPECT_EQ(calls, 2);
}

TEST_P(Stampede, not_found_is_cached_as_a_marker_distinct_from_an_empty_value) {
  ServiceOptions options;
  options.negative_ttl = 1s;
  auto& svc = make(options);
  int calls = 0;
  const Loader none = [&]() -> asio::awaitable<std::optional<Json>> {
    ++calls;
    co_return std::nullopt;
  };
  const Loader empty = [&]() -> asio::awaitable<std::optional<Json>> {
    ++calls;
    co_return Json("");
  };
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await svc.get_or_load("absent", none));
    EXPECT_FALSE(co_await svc.get_or_load("absent", none));
    EXPECT_EQ(calls, 1);  // the second answered from the marker
    EXPECT_EQ(svc.counters().negative_hits, 1u);
    EXPECT_FALSE(co_await svc.get("absent"));  // a plain read sees no value
    // An empty string is a value, not "not found".
    auto v = co_await svc.get_or_load("empty", empty);
    CO_ASSERT(v.has_value());
    EXPECT_EQ(*v, Json(""));
    v = co_await svc.get_or_load("empty", empty);
    CO_ASSERT(v.has_value());
    EXPECT_EQ(*v, Json(""));
    EXPECT_EQ(calls, 2);
    // get_with_fallback takes the marker for a miss: its contract is a value.
    const Fallback fallback = [&]() -> asio::awaitable<Json> {
      ++calls;
      co_return Json(1);
    };
    EXPECT_EQ(co_await svc.get_with_fallback("absent", fallback), Json(1));
    EXPECT_EQ(calls, 3);
    // The marker's own TTL: after it, the loader is asked again.
    EXPECT_FALSE(co_await svc.get_or_load("absent2", none));
    co_await sleep_for(1500ms);
    EXPECT_FALSE(co_await svc.get_or_load("absent2", none));
    EXPECT_EQ(calls, 5);
  }());
}

TEST_P(Stampede, negative_ttl_zero_remembers_nothing) {
  ServiceOptions options;
  options.negative_ttl = 0s;
  auto& svc = make(options);
  int calls = 0;
  const Loader none = [&]() -> asio::awaitable<std::optional<Json>> {
    ++calls;
    co_return std::nullopt;
  };
  run([&]() -> asio::awaitable<void> {
    EXPECT_FALSE(co_await svc.get_or_load("absent", none));
    EXPECT_FALSE(co_await svc.get_or_load("absent", none));
  }());
  EXPECT_EQ(calls, 2);
}

TEST_P(Stampede, a_stale_value_within_its_grace_is_served_when_the_loader_fails) {
  ServiceOptions options;
  options.stale_grace = 60s;
  auto& svc = make(options);
  int calls = 0;
  bool fail = false;
  const Fallback fallback = [&]() -> asio::awaitable<Json> {
    ++calls;
    if (fail) throw std::runtime_error("database down");
    co_return Json(calls);
  };
  run([&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await svc.get_with_fallback("k", fallback, 1s), Json(1));
    co_await sleep_for(1500ms);           // past its TTL, within its grace
    EXPECT_FALSE(co_await svc.get("k"));  // stale is a miss for a plain read
    fail = true;
    EXPECT_EQ(co_await svc.get_with_fallback("k", fallback, 1s), Json(1));
    EXPECT_EQ(svc.counters().stale_served, 1u);
    fail = false;
    EXPECT_EQ(co_await svc.get_with_fallback("k", fallback, 1s), Json(3));  // fresh again
  }());
  EXPECT_EQ(calls, 3);
}

TEST_P(Stampede, without_a_grace_the_loaders_error_reaches_the_caller) {
  auto& svc = make();
  const Fallback failing = []() -> asio::awaitable<Json> {
    throw std::runtime_error("database down");
    co_return Json();
  };
  run([&]() -> asio::awaitable<void> {
    co_await svc.set("k", Json(1), 1s);
    co_await sleep_for(1500ms);
    bool thrown = false;
    try {
      (void)co_await svc.get_with_fallback("k", failing, 1s);
    } catch (const std::runtime_error&) {
      thrown = true;
    }
    EXPECT_TRUE(thrown);
  }());
  EXPECT_EQ(svc.counters().stale_served, 0u);
}

TEST_P(Stampede, a_value_read_near_its_expiry_is_refreshed_in_the_background) {
  ServiceOptions options;
  options.early_refresh = 0.5;  // the last half of the TTL
  auto& svc = make(options);
  auto calls = std::make_shared<int>(0);
  // Owns what it captures: a refresh runs after the read that started it has returned.
  const Fallback fallback = [calls]() -> asio::awaitable<Json> {
    ++*calls;
    co_return Json(*calls);
  };
  run([&]() -> asio::awaitable<void> {
    EXPECT_EQ(co_await svc.get_with_fallback("k", fallback, 4s), Json(1));
    EXPECT_EQ(co_await svc.get_with_fallback("k", fallback, 4s), Json(1));  // early: no refresh
    EXPECT_EQ(svc.counters().early_refreshes, 0u);
    co_await sleep_for(3500ms);  // 0.5 s left of 4: the chance is 7/8 per read
    for (int i = 0; i < 50 && svc.counters().early_refreshes == 0; ++i) {
      EXPECT_EQ(co_await svc.get_with_fallback("k", fallback, 4s), Json(1));  // the old value
    }
    EXPECT_EQ(svc.counters().early_refreshes, 1u);
    co_await sleep_for(100ms);  // the refresh ran on this loop
    EXPECT_EQ(co_await svc.get("k"), std::optional<Json>(Json(2)));
  }());
  EXPECT_EQ(*calls, 2);
}

TEST_P(Stampede, two_services_with_the_lease_load_a_cold_key_once) {
  ServiceOptions options;
  options.lease = 2000ms;
  auto& a = make(options);
  auto& b = make(options);
  int calls = 0;
  const Fallback slow = [&]() -> asio::awaitable<Json> {
    ++calls;
    co_await sleep_for(50ms);
    co_return Json("loaded");
  };
  std::size_t right = 0;
  const std::function<asio::awaitable<void>(std::size_t)> caller =
      [&](std::size_t i) -> asio::awaitable<void> {
    Json v = co_await (i % 2 == 0 ? a : b).get_with_fallback("cold", slow);
    right += v == Json("loaded") ? 1 : 0;
  };
  run(all_of(io_, 200, caller));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(right, 200u);
  EXPECT_GE(a.counters().lease_waits + b.counters().lease_waits, 1u);
}

TEST_P(Stampede, a_lease_left_by_a_crashed_process_frees_the_key_when_it_expires) {
  ServiceOptions options;
  options.lease = 300ms;
  auto& svc = make(options);
  int calls = 0;
  const Fallback fallback = [&]() -> asio::awaitable<Json> {
    ++calls;
    co_return Json("loaded");
  };
  run([&]() -> asio::awaitable<void> {
    // The lease a process took before it died: nobody releases it.
    auto taken = co_await svc.store().acquire_lease("promptcache:lease:cold", "dead-owner", 300ms);
    CO_ASSERT(taken && *taken);
    EXPECT_EQ(co_await svc.get_with_fallback("cold", fallback), Json("loaded"));
  }());
  EXPECT_EQ(calls, 1);
  EXPECT_GE(svc.counters().lease_waits, 1u);
}

TEST_P(Stampede, a_lease_is_released_only_by_its_owner) {
  auto& svc = make();
  run([&]() -> asio::awaitable<void> {
    auto got = co_await svc.store().acquire_lease("lease", "me", 10s);
    CO_ASSERT(got && *got);
    auto again = co_await svc.store().acquire_lease("lease", "other", 10s);
    CO_ASSERT(again);
    EXPECT_FALSE(*again);
    auto wrong = co_await svc.store().release_lease("lease", "other");
    CO_ASSERT(wrong);
    EXPECT_FALSE(*wrong);
    auto right = co_await svc.store().release_lease("lease", "me");
    CO_ASSERT(right);
    EXPECT_TRUE(*right);
    auto free = co_await svc.store().acquire_lease("lease", "other", 10s);
    CO_ASSERT(free && *free);
  }());
}

}  // namespace
}  // namespace promptcache
