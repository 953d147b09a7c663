// 3 — the near tier and get_or_load: a loader called once for many concurrent misses, a "not
// found" remembered, and hits answered in the process by a near tier that Redis keeps coherent
// (CLIENT TRACKING: a write by any client removes the copy).
//
//   REDIS_URL=redis://127.0.0.1:6379 ./3_near_tier_and_get_or_load
//
// Without Redis the in-process store answers and there is no near tier (it would have nothing
// to be near to).
#include <chrono>
#include <iostream>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <promptcache/cache/service.hpp>
#include <promptcache/json_text.hpp>

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using promptcache::cache::PromptCacheService;

// Stands in for a slow query: the user's row, or nullopt when there is none.
asio::awaitable<std::optional<json::value>> find_user(std::string id, int* calls) {
  ++*calls;
  asio::steady_timer query(co_await asio::this_coro::executor, 20ms);
  co_await query.async_wait(asio::use_awaitable);
  if (id != "user123") co_return std::nullopt;
  co_return json::value{{"id", id}, {"plan", "pro"}};
}

asio::awaitable<void> demo(PromptCacheService& cache) {
  const auto ex = co_await asio::this_coro::executor;
  int calls = 0;
  // Named, not written inside the co_await (g++ 12; see 2_coroutines.cpp).
  const PromptCacheService::Loader load_user = [&calls] { return find_user("user123", &calls); };

  // Ten concurrent misses of one key: one loader call, the others wait for its value.
  int done = 0;
  for (int i = 0; i < 10; ++i) {
    asio::co_spawn(ex, cache.get_or_load("user:user123", load_user),
                   [&done](std::exception_ptr, const std::optional<json::value>&) { ++done; });
  }
  asio::steady_timer poll(ex);
  while (done < 10) {
    poll.expires_after(5ms);
    co_await poll.async_wait(asio::use_awaitable);
  }
  std::cout << "loader calls for 10 concurrent misses: " << calls << "\n";

  // "Not found" is cached too (ServiceOptions::negative_ttl, 60 s): no second query.
  calls = 0;
  const PromptCacheService::Loader load_ghost = [&calls] { return find_user("ghost", &calls); };
  const auto first = co_await cache.get_or_load("user:ghost", load_ghost);
  const auto second = co_await cache.get_or_load("user:ghost", load_ghost);
  std::cout << "ghost found: " << std::boolalpha << (first || second)
            << ", loader calls for two lookups: " << calls << "\n";

  // Hits from the near tier: no round trip to Redis.
  const auto before = cache.counters().near_hits;
  for (int i = 0; i < 100; ++i) (void)co_await cache.get_or_load("user:user123", load_user);
  std::cout << "near-tier hits: " << cache.counters().near_hits - before << " of 100\n";

  // get_shared hands out the near tier's own copy of the JSON text (no copy is made).
  const promptcache::cache::NearValuePtr shared = co_await cache.get_shared("user:user123");
  std::cout << "shared: " << (shared ? shared->text : std::string("miss")) << "\n";

  // A write removes every near copy of the key (this process's at once, others' by Redis).
  const json::value updated = {{"id", "user123"}, {"plan", "team"}};
  co_await cache.set("user:user123", updated);
  const auto now = co_await cache.get("user:user123");
  std::cout << "after the update: " << (now ? promptcache::json_text(*now) : "miss") << "\n";
}

int main() {
  asio::io_context io(1);
  std::unique_ptr<PromptCacheService> cache;
  try {
    auto config = promptcache::cache::CacheConfig::from_env();
    if (config.redis) config.near = promptcache::cache::NearCacheOptions{};  // 10 000 entries
    cache = PromptCacheService::from_config(config, {io.get_executor()});
  } catch (const std::exception& e) {
    std::cerr << "configuration: " << e.what() << "\n";
    return 2;
  }
  int status = 0;
  asio::co_spawn(io, demo(*cache), cache->closing([&status](std::exception_ptr e) {
    if (!e) return;
    status = 1;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "error: " << ex.what() << "\n";
    }
  }));
  io.run();
  return status;
}
