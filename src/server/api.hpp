// The HTTP API of `promptcache serve` (README "HTTP API"): routes, input checks, the database
// as the source of truth with the cache in front, metrics and the access log. Transport-free:
// it maps a parsed request to a response, so the HTTP server and the tests drive it alike.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <spdlog/logger.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "promptcache/cache/service.hpp"
#include "promptcache/db/database.hpp"
#include "server/http_server.hpp"
#include "server/metrics.hpp"

namespace promptcache::server {

struct ApiOptions {
  std::string api_key;  // empty: no auth
  std::size_t max_prompt_chars = 10000;
  std::size_t max_user_id_bytes = 256;
  std::size_t max_analysis_type_chars = 50;
  std::size_t max_model_version_bytes = 200;
  std::size_t db_threads = 4;
  // How often cache deletions that failed (Redis down) are tried again.
  std::chrono::milliseconds invalidation_retry{500};
};

class Api {
 public:
  Api(cache::PromptCacheService& cache, db::Database& db, ApiOptions options);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  boost::asio::awaitable<Response> handle(Request& req);
  // A JSON error body {"error": message} with `status`.
  [[nodiscard]] static Response error(unsigned status, std::string_view message);
  // Keeps retrying the cache deletions that failed, on `ex`, until the executor stops.
  void start_invalidation_retry(const boost::asio::any_io_executor& ex);

  [[nodiscard]] Metrics& metrics() noexcept { return metrics_; }
  // Keys whose cache entry may be stale (a delete or write failed) and is bypassed until a
  // retry removes it.
  [[nodiscard]] std::size_t pending_invalidations() const;

 private:
  struct Outcome;
  boost::asio::awaitable<Response> route(Request& req, Outcome& out);
  boost::asio::awaitable<Response> create(Request& req, Outcome& out);
  boost::asio::awaitable<Response> read(std::string hash, std::string user, std::string type,
                                        Outcome& out);
  boost::asio::awaitable<Response> lookup(Request& req, Outcome& out);
  boost::asio::awaitable<Response> remove(std::string hash, std::string user, std::string type,
                                          Outcome& out);
  boost::asio::awaitable<Response> invalidate_user(std::string user, Outcome& out);
  boost::asio::awaitable<Response> stats();
  boost::asio::awaitable<Response> ready();
  boost::asio::awaitable<void> retry_invalidations();
  // Runs a blocking database call on the database threads; resumes on the caller's.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&>> on_db(DbOp op, F& f);
  // The cache entry for `key` is deleted, now or (if the cache is down) by the retry loop.
  boost::asio::awaitable<void> drop_cached(std::string key);
  [[nodiscard]] bool is_pending(const std::string& key) const;

  cache::PromptCacheService& cache_;
  db::Database& db_;
  ApiOptions options_;
  Metrics metrics_;
  boost::asio::thread_pool db_threads_;
  std::shared_ptr<spdlog::logger> access_log_;  // "access" if registered, else the default
  mutable std::mutex pending_mutex_;
  std::set<std::string> pending_;
};

}  // namespace promptcache::server
