// 2 — coroutines: the seed's usage as a program on PromptCacheService, the coroutine API the
// blocking facade wraps. The service from the environment (Redis when REDIS_URL is set, the
// in-process store otherwise), get_with_fallback over a stand-in database, one user's entries
// invalidated, the statistics printed.
//
// Two rules for g++ 12 (Debian 12's compiler), which destroys a temporary of a co_await
// expression twice: name a fallback or loader before the co_await (a temporary one is refused
// at compile time), and build a JSON value into a named variable first.
//
//   REDIS_URL=redis://127.0.0.1:6379 ./2_coroutines
#include <iostream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>

#include <promptcache/cache/keys.hpp>
#include <promptcache/cache/service.hpp>

namespace asio = boost::asio;
namespace json = boost::json;
using promptcache::cache::PromptCacheService;

// Stands in for the database query the cache sits in front of.
asio::awaitable<json::value> load_analysis_from_database(int* calls) {
  ++*calls;
  co_return json::value{{"score", 0.82},
                        {"clarity", 0.9},
                        {"suggestions", json::array{"name the audience", "give an example"}}};
}

asio::awaitable<void> demo(PromptCacheService& cache) {
  const std::string hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  const std::string key = promptcache::cache::analysis_key(hash, "user123", "default");
  int database_calls = 0;
  PromptCacheService::Fallback fallback = [&] {
    return load_analysis_from_database(&database_calls);
  };

  json::value first = co_await cache.get_with_fallback(key, fallback);   // miss: database
  json::value second = co_await cache.get_with_fallback(key, fallback);  // hit: cache
  std::cout << "result: " << json::serialize(second) << "\n"
            << "database calls for two reads: " << database_calls << "\n";

  const std::uint64_t removed = co_await cache.invalidate_user_analysis_cache("user123");
  std::cout << "invalidated entries of user123: " << removed << "\n";

  const json::object stats = co_await cache.get_cache_stats();
  std::cout << "stats: " << json::serialize(stats) << "\n";
  (void)first;
}

int main() {
  asio::io_context io(1);
  std::unique_ptr<PromptCacheService> cache;
  try {
    cache = PromptCacheService::from_config(promptcache::cache::CacheConfig::from_env(),
                                            {io.get_executor()});
  } catch (const std::exception& e) {
    std::cerr << "configuration: " << e.what() << "\n";
    return 2;
  }
  int status = 0;
  // closing(): the cache is closed when the work ends, however it ends — its connections would
  // otherwise keep io.run() going for ever after an exception (Redis down, say).
  asio::co_spawn(io, demo(*cache), cache->closing([&](std::exception_ptr e) {
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
