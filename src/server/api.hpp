// The HTTP API of `promptcache serve` (README "HTTP API"): routes, input checks, the database
// as the source of truth with the cache in front, metrics and the access log. Transport-free:
// it maps a parsed request to a response, so the HTTP server and the tests drive it alike.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/url/url_view.hpp>

#include "promptcache/cache/service.hpp"
#include "promptcache/db/database.hpp"
#include "promptcache/telemetry/tracer.hpp"
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
  // How often cache writes that failed (Redis down) are repaired.
  std::chrono::milliseconds invalidation_retry{500};
  // How long a request waits for the cache per operation (a read; a write or a fill) before
  // it goes on without it: the database answers, and the timeout counts toward the breaker.
  std::chrono::milliseconds cache_read_budget{100};
  std::chrono::milliseconds cache_write_budget{250};
  // Spans of the requests (a SERVER span each, continuing the caller's traceparent); nullptr:
  // none.
  std::shared_ptr<telemetry::Tracer> tracer;
};

class Api {
 public:
  Api(cache::PromptCacheService& cache, db::Database& db, ApiOptions options);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  boost::asio::awaitable<Response> handle(Request& req, const Peer& peer = {});
  // Asked before a request's body is read (HttpServer's Admission): a 401 when the request
  // needs the API key and does not carry it (counted and logged as handle() does), else nullopt.
  [[nodiscard]] std::optional<Response> admit(const Request::header_type& h);
  // A JSON error body {"error": message} with `status`.
  [[nodiscard]] static Response error(unsigned status, std::string_view message);
  // Keeps repairing the cache entries whose write failed, on `ex`, until the executor stops.
  void start_invalidation_retry(const boost::asio::any_io_executor& ex);

  [[nodiscard]] Metrics& metrics() noexcept { return metrics_; }
  // Keys whose cache entry may be stale (a delete or write failed) and is bypassed until a
  // repair writes the database's current state over it.
  [[nodiscard]] std::size_t pending_invalidations() const;

 private:
  struct Outcome;
  // The request's SERVER span (`callers_trace`: it continues the caller's), and what it
  // records once the response is known.
  [[nodiscard]] telemetry::ScopedSpan server_span(const Request& req, const Peer& peer,
                                                  bool& callers_trace) const;
  void end_server_span(telemetry::ScopedSpan& span, const Outcome& out, Response& res) const;
  boost::asio::awaitable<Response> route(Request& req, Outcome& out);
  // The handler of `out.route` (known, its method allowed, the key checked); `target` is
  // req's, parsed.
  boost::asio::awaitable<Response> dispatch(Request& req, boost::urls::url_view target,
                                            std::vector<std::string> path, Outcome& out);
  // The request's metrics and access-log line.
  // The request's metrics and access log line (its trace ids on it when it has a span).
  void account(const Request::header_type& h, const Outcome& out, unsigned status,
               std::chrono::steady_clock::duration elapsed,
               const telemetry::SpanContext* trace = nullptr);
  boost::asio::awaitable<Response> create(Request& req, Outcome& out);
  boost::asio::awaitable<Response> read(std::string hash, std::string user, std::string type,
                                        Outcome& out);
  boost::asio::awaitable<Response> lookup(Request& req, Outcome& out);
  boost::asio::awaitable<Response> remove(std::string hash, std::string user, std::string type,
                                          Outcome& out);
  boost::asio::awaitable<Response> invalidate_user(std::string user, Outcome& out);
  boost::asio::awaitable<Response> stats();
  boost::asio::awaitable<Response> ready(const Outcome& out);
  // The cache's operations as children of the request's span (roots without one).
  [[nodiscard]] cache::TracedService traced(const Outcome& out) const noexcept;
  boost::asio::awaitable<void> retry_invalidations();
  // The key's row (or its absence) and version from the database, for the cache. A row that
  // cannot be decoded is refused with a clear error (and counted), never cached.
  // `trace`: the span its database call's span is a child of (nullptr: a root).
  boost::asio::awaitable<cache::PromptCacheService::Versioned> load(
      const std::string& hash, const std::string& user, const std::string& type,
      const telemetry::SpanContext* trace);
  // Runs a blocking database call on the database threads; resumes on the caller's. The call
  // is a CLIENT span (db.system, db.operation…), a child of `trace`.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&>> on_db(DbOp op, F& f,
                                                         const telemetry::SpanContext* trace);
  // A key whose cache write failed: bypassed by this process's reads until retry_invalidations
  // has written the database's current state (versioned) over whatever the cache holds.
  struct Item {
    std::string hash;
    std::string user;
    std::string type;
    std::uint64_t ticket = 0;  // which failure registered it (a later one replaces it)
  };
  void repair_later(std::string key, Item item);
  // Writes the key's current state from the database into the cache; false if the cache
  // failed.
  boost::asio::awaitable<bool> repair(const std::string& key, const Item& item);
  [[nodiscard]] bool is_pending(const std::string& key) const;

  cache::PromptCacheService& cache_;
  db::Database& db_;
  ApiOptions options_;
  Metrics metrics_;
  boost::asio::thread_pool db_threads_;
  std::shared_ptr<spdlog::logger> access_log_;  // "access" if registered, else the default
  mutable std::mutex pending_mutex_;
  std::map<std::string, Item> pending_;
  std::uint64_t next_ticket_ = 0;  // guarded by pending_mutex_
};

}  // namespace promptcache::server
