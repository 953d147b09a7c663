// The service's own metrics, rendered in the Prometheus text format at /metrics: requests and
// latency by route, database calls, and (from the cache) hits, misses, errors and the breaker.
// Every label set is fixed in advance, so recording is a few relaxed atomic increments.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "promptcache/cache/service.hpp"
#include "promptcache/telemetry/otlp.hpp"

namespace promptcache::server {

enum class Route : std::uint8_t {
  analyses_create,
  analyses_get,
  analyses_lookup,
  analyses_delete,
  user_cache_delete,
  stats,
  metrics,
  healthz,
  readyz,
  unknown,
  count
};
[[nodiscard]] std::string_view route_name(Route r) noexcept;

enum class DbOp : std::uint8_t { upsert, find, remove, page, ping, count };

class Metrics {
 public:
  void request(Route route, unsigned status, std::chrono::nanoseconds duration) noexcept;
  void db_call(DbOp op, bool ok) noexcept;
  // A row the database returned that could not be decoded (reported, never served).
  void corrupt_row() noexcept { corrupt_rows_.fetch_add(1, std::memory_order_relaxed); }
  // Everything, with the cache's counters and breaker read from `service` at this moment.
  // With `exporter`, its health too.
  [[nodiscard]] std::string render(const cache::PromptCacheService& service,
                                   const telemetry::OtlpTracer* exporter = nullptr) const;

 private:
  // The parts of render(): the HTTP requests (counts and durations) and the database calls.
  void render_http(std::string& out) const;
  void render_db(std::string& out) const;
  static constexpr std::array<unsigned, 12> statuses{200, 201, 400, 401, 404, 405,
                                                     413, 422, 500, 503, 0};  // 0: other
  static constexpr std::array<double, 14> bounds{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};
  static constexpr std::size_t routes = static_cast<std::size_t>(Route::count);
  static constexpr std::size_t ops = static_cast<std::size_t>(DbOp::count);

  std::array<std::array<std::atomic<std::uint64_t>, statuses.size()>, routes> requests_{};
  // Per route: one count per bucket (not cumulative; summed when rendered), then +Inf.
  std::array<std::array<std::atomic<std::uint64_t>, bounds.size() + 1>, routes> buckets_{};
  std::array<std::atomic<std::uint64_t>, routes> duration_ns_{};
  std::array<std::array<std::atomic<std::uint64_t>, 2>, ops> db_calls_{};  // [op][ok]
  std::atomic<std::uint64_t> corrupt_rows_{0};
};

}  // namespace promptcache::server
