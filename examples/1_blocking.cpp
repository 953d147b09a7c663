// 1 — the blocking facade: the seed's operations from a plain program, no coroutines.
//
// BlockingCache runs the cache on its own event loop thread; every call waits for its answer.
// Redis when REDIS_URL (or REDIS_HOST, REDIS_SENTINELS, REDIS_CLUSTER_NODES) is set, the
// in-process store otherwise:
//
//   REDIS_URL=redis://127.0.0.1:6379 ./1_blocking
#include <chrono>
#include <iostream>
#include <string>

#include <promptcache/cache/blocking.hpp>
#include <promptcache/cache/keys.hpp>  // prompt_hash: the seed's SHA-256 hex of a prompt
#include <promptcache/json_text.hpp>

namespace json = boost::json;
using namespace std::chrono_literals;
using promptcache::cache::BlockingCache;
using promptcache::cache::CacheError;

int main() {
  try {
    BlockingCache cache;  // CacheConfig::from_env(); throws net::ConfigError on a bad variable
    const std::string hash = promptcache::cache::prompt_hash("Summarise this contract");

    // The seed's analysis results: prompt:analysis:<hash>:{<user>}:<type>, 1 h unless given.
    cache.set_analysis_result(hash, "user123", "clarity", {{"score", 0.82}});
    const auto clarity = cache.get_analysis_result(hash, "user123", "clarity");
    std::cout << "clarity: " << (clarity ? promptcache::json_text(*clarity) : "miss") << "\n";

    // Cache-aside with a plain callable: it runs on a miss, and its value is cached (10 min).
    int database_calls = 0;
    auto load_from_database = [&database_calls] {
      ++database_calls;
      return json::value{{"score", 0.9}, {"suggestions", json::array{"name the audience"}}};
    };
    for (int i = 0; i < 3; ++i) {
      (void)cache.get_analysis_with_fallback(hash, "user123", "default", load_from_database, 10min);
    }
    std::cout << "database calls for three reads: " << database_calls << "\n";

    // Plain keys, with the TTL a std::chrono duration, or no expiry at all.
    cache.set("config:theme", json::value("dark"), promptcache::cache::no_expiry);
    cache.set("session:42", {{"user", "user123"}}, 30s);
    std::cout << "deleted session: " << std::boolalpha << cache.delete_key("session:42") << "\n";

    // Everything cached for one user, and only that (a user-scoped index, not a keyspace scan).
    std::cout << "invalidated entries of user123: "
              << cache.invalidate_user_analysis_cache("user123") << "\n";
    std::cout << "after invalidation: "
              << (cache.get_analysis_result(hash, "user123", "clarity") ? "hit" : "miss") << "\n";

    const json::object stats = cache.get_cache_stats();
    std::cout << "tier: " << promptcache::json_text(stats.at("client").as_object().at("tier"))
              << "\n";
  } catch (const CacheError& e) {
    // Writes and invalidations throw when the cache cannot take them (reads just miss);
    // e.code() says why: a timeout, a refused connection, the circuit breaker open…
    std::cerr << "cache unavailable: " << e.what() << " (" << e.code().message() << ")\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}
