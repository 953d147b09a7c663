// The calls a C++ developer writes first, exactly so: a capturing lambda and a braced JSON value
// as temporaries inside co_await. Built in Release by every compiler but g++ 12 (which refuses
// the lambda at compile time with its way out — tests/compile — because it would destroy the
// temporary twice) and run under ASan and UBSan by the package test against a real Redis:
// a double free or a use after free ends the run.
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <promptcache/cache/service.hpp>
#include <promptcache/json_text.hpp>

namespace asio = boost::asio;
namespace json = boost::json;
using promptcache::cache::PromptCacheService;

asio::awaitable<void> natural(PromptCacheService& cache, int& loads) {
  const std::string captured(64, 'x');  // owns memory: a second destruction frees it twice
  co_await cache.set("natural:set", json::value{{"v", 1}});
  const auto set_back = co_await cache.get("natural:set");
  std::cout << "set: " << (set_back ? promptcache::json_text(*set_back) : "miss") << "\n";
  for (int i = 0; i < 2; ++i) {
    const json::value v = co_await cache.get_with_fallback(
        "natural:fallback", [captured, &loads]() -> asio::awaitable<json::value> {
          ++loads;
          co_return json::value{{"text", captured.substr(0, 3)}};
        });
    std::cout << "fallback: " << promptcache::json_text(v) << "\n";
  }
  for (int i = 0; i < 2; ++i) {
    const auto v = co_await cache.get_or_load(
        "natural:load", [captured, &loads]() -> asio::awaitable<std::optional<json::value>> {
          ++loads;
          co_return json::value(captured.size());
        });
    std::cout << "load: " << (v ? promptcache::json_text(*v) : "none") << "\n";
  }
}

int main() {
  asio::io_context io(1);
  auto cache = PromptCacheService::from_config(promptcache::cache::CacheConfig::from_env(),
                                               {io.get_executor()});
  int loads = 0;
  int status = 0;
  asio::co_spawn(io, natural(*cache, loads), cache->closing([&status](std::exception_ptr e) {
    if (e) status = 1;
  }));
  io.run();
  std::cout << "loads: " << loads << "\n";
  return status;
}
