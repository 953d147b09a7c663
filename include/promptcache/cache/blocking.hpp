// BlockingCache: PromptCacheService for programs without coroutines. It owns its event loop
// and the thread that runs it; every call blocks its caller until done and may come from any
// thread (calls from several threads run concurrently on the loop). Fallbacks and loaders are
// plain callables — a capturing lambda returning the value — run on the facade's loop thread:
// keep them short, or they delay other callers; calling the facade from inside one throws
// std::logic_error (it would wait for itself).
//
//   promptcache::cache::BlockingCache cache;                // REDIS_URL…, or in-process
//   cache.set("greeting", {{"text", "hello"}});
//   std::optional<boost::json::value> v = cache.get("greeting");
//
// Errors as the coroutine API's (README, "Errors"): reads fail open (nullopt, or the
// fallback's value); writes and invalidations throw CacheError. Destroying the facade closes
// the cache and joins its thread, whatever state the cache is in.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "promptcache/cache/config.hpp"
#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/cache/ttl.hpp"

namespace promptcache::cache {

class BlockingCache {
 public:
  using Json = boost::json::value;

  // The cache the configuration names (CacheConfig::from_env() by default: Redis when REDIS_URL
  // or REDIS_HOST… is set, otherwise the in-process store). Throws net::ConfigError.
  explicit BlockingCache(const CacheConfig& config = CacheConfig::from_env());
  ~BlockingCache();
  BlockingCache(const BlockingCache&) = delete;
  BlockingCache& operator=(const BlockingCache&) = delete;

  // --- The seed's operations, under its names -----------------------------------------------
  std::optional<Json> get_analysis_result(std::string_view prompt_hash, std::string_view user_id,
                                          std::string_view analysis_type = "default");
  void set_analysis_result(std::string_view prompt_hash, std::string_view user_id,
                           std::string_view analysis_type, const Json& value, Ttl ttl = {});
  std::optional<std::string> get_analysis_result_json(std::string_view prompt_hash,
                                                      std::string_view user_id,
                                                      std::string_view analysis_type = "default");
  std::optional<Json> get(std::string_view key);
  std::optional<std::string> get_json(std::string_view key);  // the JSON text, as stored
  void set(std::string_view key, const Json& value, Ttl ttl = {});
  bool delete_key(std::string_view key);
  std::vector<std::optional<Json>> get_multiple(const std::vector<std::string>& keys);
  void set_multiple(const std::vector<std::pair<std::string, Json>>& entries, Ttl ttl = {});
  std::uint64_t invalidate_user_analysis_cache(std::string_view user_id);
  std::uint64_t invalidate_pattern(std::string_view pattern);
  boost::json::object get_cache_stats();

  // Cache-aside: the cached value, else `fallback()`'s (stored with `ttl`). `fallback` is any
  // callable returning something a Json is made from; its exception reaches the caller.
  template <class Fallback>
  requires std::is_invocable_v<Fallback&> Json get_with_fallback(std::string_view key,
                                                                 Fallback fallback, Ttl ttl = {}) {
    // The service may keep the loader for a background refresh: it owns its copy.
    const PromptCacheService::Fallback load =
        [f = std::make_shared<Fallback>(std::move(fallback))]() -> boost::asio::awaitable<Json> {
      co_return Json((*f)());
    };
    return run(service_->get_with_fallback(key, load, ttl));
  }
  // Cache-aside with negative caching: `loader()` returns std::optional<Json> (nullopt: the
  // source has no such item, remembered for PROMPTCACHE_NEGATIVE_TTL_SECONDS).
  template <class Loader>
  requires std::is_invocable_v<Loader&> std::optional<Json> get_or_load(std::string_view key,
                                                                        Loader loader,
                                                                        Ttl ttl = {}) {
    const PromptCacheService::Loader load = [f = std::make_shared<Loader>(std::move(loader))]()
        -> boost::asio::awaitable<std::optional<Json>> { co_return std::optional<Json>((*f)()); };
    return run(service_->get_or_load(key, load, ttl));
  }

  // The same for an analysis key (analysis_key(prompt_hash, user_id, analysis_type); TTL
  // PROMPT_ANALYSIS unless given).
  template <class Fallback>
  requires std::is_invocable_v<Fallback&> Json
  get_analysis_with_fallback(std::string_view prompt_hash, std::string_view user_id,
                             std::string_view analysis_type, Fallback fallback, Ttl ttl = {}) {
    return get_with_fallback(analysis_key(prompt_hash, user_id, analysis_type), std::move(fallback),
                             ttl.or_else(analysis_ttl));
  }
  template <class Loader>
  requires std::is_invocable_v<Loader&> std::optional<Json> get_or_load_analysis(
      std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
      Loader loader, Ttl ttl = {}) {
    return get_or_load(analysis_key(prompt_hash, user_id, analysis_type), std::move(loader),
                       ttl.or_else(analysis_ttl));
  }

  // The coroutine API underneath, on this facade's loop (co_spawn onto executor()).
  [[nodiscard]] PromptCacheService& service() noexcept { return *service_; }
  [[nodiscard]] boost::asio::any_io_executor executor() noexcept { return io_.get_executor(); }

 private:
  // Runs `op` on the loop and waits for it; rethrows its exception.
  template <class T>
  T run(boost::asio::awaitable<T> op) {
    check_not_on_loop();
    return boost::asio::co_spawn(io_, std::move(op), boost::asio::use_future).get();
  }
  void check_not_on_loop();

  boost::asio::io_context io_{1};
  // Keeps the loop running while the facade exists, though nothing is pending.
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::unique_ptr<PromptCacheService> service_;
  std::future<void> loop_done_;  // ready once the loop thread has returned
  std::thread thread_;
};

}  // namespace promptcache::cache
