// Must NOT compile with g++ 12 (tests/CMakeLists.txt checks the message): a capturing lambda
// passed straight into a co_await'ed get_with_fallback becomes a temporary that g++ 12 destroys
// twice (docs/client.md). With any other compiler this is the natural call, and compiles.
#include <promptcache/cache/service.hpp>

using promptcache::cache::PromptCacheService;

boost::asio::awaitable<void> natural_call(PromptCacheService& cache) {
  const std::string captured(100, 'x');
  auto v = co_await cache.get_with_fallback(
      "key", [captured]() -> boost::asio::awaitable<boost::json::value> {
        co_return boost::json::value(captured);
      });
  (void)v;
}
