#include "promptcache/cache/blocking.hpp"
#include "promptcache/log.hpp"

#include <chrono>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

namespace promptcache::cache {

namespace asio = boost::asio;

BlockingCache::BlockingCache(const CacheConfig& config)
    : guard_(std::in_place, io_.get_executor()),
      service_(PromptCacheService::from_config(config, {io_.get_executor()})) {
  std::promise<void> done;
  loop_done_ = done.get_future();
  thread_ = std::thread([this, done = std::move(done)]() mutable {
    for (;;) {
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {
        // Nothing the cache runs lets an exception out; a loop that stops here would hang
        // every caller, so it goes on.
        logger()->error("promptcache: an exception escaped to the cache's loop: {}", e.what());
      }
    }
    done.set_value();
  });
}

BlockingCache::~BlockingCache() {
  // Closed on its own loop; then the loop has nothing left and returns.
  asio::post(io_, [this] {
    service_->close();
    guard_.reset();
  });
  if (loop_done_.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    logger()->error("promptcache: the cache's loop did not end 10 s after close(); stopping it");
    io_.stop();
  }
  thread_.join();
  service_.reset();  // only now: a background refresh may use it until the loop has ended
}

void BlockingCache::check_not_on_loop() {
  if (io_.get_executor().running_in_this_thread()) {
    throw std::logic_error(
        "BlockingCache called from its own loop thread (inside a fallback or loader): it would "
        "wait for itself; use service() with co_await there");
  }
}

std::optional<BlockingCache::Json> BlockingCache::get_analysis_result(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type) {
  return run(service_->get_analysis_result(prompt_hash, user_id, analysis_type));
}

void BlockingCache::set_analysis_result(std::string_view prompt_hash, std::string_view user_id,
                                        std::string_view analysis_type, const Json& value,
                                        Ttl ttl) {
  run(service_->set_analysis_result(prompt_hash, user_id, analysis_type, value, ttl));
}

std::optional<std::string> BlockingCache::get_analysis_result_json(std::string_view prompt_hash,
                                                                   std::string_view user_id,
                                                                   std::string_view analysis_type) {
  return run(service_->get_analysis_result_json(prompt_hash, user_id, analysis_type));
}

std::optional<BlockingCache::Json> BlockingCache::get(std::string_view key) {
  return run(service_->get(key));
}

std::optional<std::string> BlockingCache::get_json(std::string_view key) {
  return run(service_->get_json(key));
}

void BlockingCache::set(std::string_view key, const Json& value, Ttl ttl) {
  run(service_->set(key, value, ttl));
}

bool BlockingCache::delete_key(std::string_view key) {
  return run(service_->delete_key(key));
}

std::vector<std::optional<BlockingCache::Json>> BlockingCache::get_multiple(
    const std::vector<std::string>& keys) {
  return run(service_->get_multiple(keys));
}

void BlockingCache::set_multiple(const std::vector<std::pair<std::string, Json>>& entries,
                                 Ttl ttl) {
  run(service_->set_multiple(entries, ttl));
}

std::uint64_t BlockingCache::invalidate_user_analysis_cache(std::string_view user_id) {
  return run(service_->invalidate_user_analysis_cache(user_id));
}

std::uint64_t BlockingCache::invalidate_pattern(std::string_view pattern) {
  return run(service_->invalidate_pattern(pattern));
}

boost::json::object BlockingCache::get_cache_stats() {
  return run(service_->get_cache_stats());
}

}  // namespace promptcache::cache
