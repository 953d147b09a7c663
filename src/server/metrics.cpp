#include "server/metrics.hpp"

#include <fmt/format.h>

namespace promptcache::server {

namespace {

constexpr std::string_view db_op_names[] = {"upsert", "find", "remove", "page", "ping"};
constexpr auto relaxed = std::memory_order_relaxed;

}  // namespace

std::string_view route_name(Route r) noexcept {
  switch (r) {
    case Route::analyses_create:
      return "POST /v1/analyses";
    case Route::analyses_get:
      return "GET /v1/analyses/{prompt_hash}";
    case Route::analyses_lookup:
      return "POST /v1/analyses/lookup";
    case Route::analyses_delete:
      return "DELETE /v1/analyses/{prompt_hash}";
    case Route::user_cache_delete:
      return "DELETE /v1/users/{user_id}/analyses/cache";
    case Route::stats:
      return "GET /v1/stats";
    case Route::metrics:
      return "GET /metrics";
    case Route::healthz:
      return "GET /healthz";
    case Route::readyz:
      return "GET /readyz";
    default:
      return "other";
  }
}

void Metrics::request(Route route, unsigned status, std::chrono::nanoseconds duration) noexcept {
  const auto r = static_cast<std::size_t>(route);
  std::size_t s = statuses.size() - 1;
  for (std::size_t i = 0; i + 1 < statuses.size(); ++i) {
    if (statuses[i] == status) {
      s = i;
      break;
    }
  }
  requests_[r][s].fetch_add(1, relaxed);
  const double seconds = std::chrono::duration<double>(duration).count();
  std::size_t b = 0;
  while (b < bounds.size() && seconds > bounds[b]) ++b;
  buckets_[r][b].fetch_add(1, relaxed);
  duration_ns_[r].fetch_add(static_cast<std::uint64_t>(duration.count()), relaxed);
}

void Metrics::db_call(DbOp op, bool ok) noexcept {
  db_calls_[static_cast<std::size_t>(op)][ok ? 1 : 0].fetch_add(1, relaxed);
}

std::string Metrics::render(const cache::PromptCacheService& service) const {
  std::string out;
  auto line = [&]<class... Args>(fmt::format_string<Args...> f, Args&&... args) {
    fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
  };

  line("# HELP promptcache_http_requests_total HTTP requests answered, by route and status.\n");
  line("# TYPE promptcache_http_requests_total counter\n");
  for (std::size_t r = 0; r < routes; ++r) {
    for (std::size_t s = 0; s < statuses.size(); ++s) {
      const auto n = requests_[r][s].load(relaxed);
      if (n == 0) continue;
      line("promptcache_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
           route_name(static_cast<Route>(r)),
           statuses[s] == 0 ? std::string("other") : std::to_string(statuses[s]), n);
    }
  }
  line(
      "# HELP promptcache_http_request_duration_seconds Time from a request read to its "
      "response ready, by route.\n");
  line("# TYPE promptcache_http_request_duration_seconds histogram\n");
  for (std::size_t r = 0; r < routes; ++r) {
    std::uint64_t cumulative = 0;
    std::array<std::uint64_t, bounds.size() + 1> counts{};
    for (std::size_t b = 0; b <= bounds.size(); ++b) counts[b] = buckets_[r][b].load(relaxed);
    std::uint64_t total = 0;
    for (auto c : counts) total += c;
    if (total == 0) continue;
    const auto name = route_name(static_cast<Route>(r));
    for (std::size_t b = 0; b < bounds.size(); ++b) {
      cumulative += counts[b];
      line("promptcache_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n", name,
           bounds[b], cumulative);
    }
    line("promptcache_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n", name,
         total);
    line("promptcache_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", name,
         static_cast<double>(duration_ns_[r].load(relaxed)) / 1e9);
    line("promptcache_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", name, total);
  }

  line("# HELP promptcache_db_corrupt_rows_total Rows that could not be decoded (not served).\n");
  line("# TYPE promptcache_db_corrupt_rows_total counter\n");
  line("promptcache_db_corrupt_rows_total {}\n", corrupt_rows_.load(relaxed));
  line("# HELP promptcache_db_calls_total Calls to the database, by operation and outcome.\n");
  line("# TYPE promptcache_db_calls_total counter\n");
  for (std::size_t o = 0; o < ops; ++o) {
    for (int ok = 1; ok >= 0; --ok) {
      line("promptcache_db_calls_total{{op=\"{}\",outcome=\"{}\"}} {}\n", db_op_names[o],
           ok != 0 ? "ok" : "error", db_calls_[o][static_cast<std::size_t>(ok)].load(relaxed));
    }
  }

  const auto c = service.counters();
  const auto tier = service.tier();
  line(
      "# HELP promptcache_cache_requests_total Cache lookups and failures, by tier and outcome.\n");
  line("# TYPE promptcache_cache_requests_total counter\n");
  line("promptcache_cache_requests_total{{tier=\"{}\",outcome=\"hit\"}} {}\n", tier, c.hits);
  line("promptcache_cache_requests_total{{tier=\"{}\",outcome=\"miss\"}} {}\n", tier, c.misses);
  line("promptcache_cache_requests_total{{tier=\"{}\",outcome=\"error\"}} {}\n", tier, c.errors);
  line("# HELP promptcache_cache_corrupt_values_total Cached values discarded as corrupt.\n");
  line("# TYPE promptcache_cache_corrupt_values_total counter\n");
  line("promptcache_cache_corrupt_values_total{{tier=\"{}\"}} {}\n", tier, c.corrupt);
  line(
      "# HELP promptcache_cache_dropped_writes_total Writes dropped while the breaker was open.\n");
  line("# TYPE promptcache_cache_dropped_writes_total counter\n");
  line("promptcache_cache_dropped_writes_total{{tier=\"{}\"}} {}\n", tier, c.dropped_writes);
  line("# HELP promptcache_cache_near_hits_total Hits answered by the near tier (also in hits).\n");
  line("# TYPE promptcache_cache_near_hits_total counter\n");
  line("promptcache_cache_near_hits_total {}\n", c.near_hits);
  line("# HELP promptcache_cache_stampede_total Stampede protection at work, by kind.\n");
  line("# TYPE promptcache_cache_stampede_total counter\n");
  line("promptcache_cache_stampede_total{{kind=\"coalesced\"}} {}\n", c.coalesced);
  line("promptcache_cache_stampede_total{{kind=\"lease_wait\"}} {}\n", c.lease_waits);
  line("promptcache_cache_stampede_total{{kind=\"negative_hit\"}} {}\n", c.negative_hits);
  line("promptcache_cache_stampede_total{{kind=\"stale_served\"}} {}\n", c.stale_served);
  line("promptcache_cache_stampede_total{{kind=\"early_refresh\"}} {}\n", c.early_refreshes);
  line(
      "# HELP promptcache_cache_breaker_state The cache breaker: 0 closed, 1 open, 2 half-open.\n");
  line("# TYPE promptcache_cache_breaker_state gauge\n");
  line("promptcache_cache_breaker_state{{tier=\"{}\"}} {}\n", tier,
       static_cast<int>(service.breaker().state()));
  return out;
}

}  // namespace promptcache::server
