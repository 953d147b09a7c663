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

namespace {

template <class... Args>
void line(std::string& out, fmt::format_string<Args...> f, Args&&... args) {
  fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
}

// A metric family's HELP and TYPE lines.
void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  line(out, "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void render_cache(std::string& out, const cache::PromptCacheService& service) {
  const auto c = service.counters();
  const auto tier = service.tier();
  family(out, "promptcache_cache_requests_total", "counter",
         "Cache lookups and failures, by tier and outcome.");
  line(out, "promptcache_cache_requests_total{{tier=\"{}\",outcome=\"hit\"}} {}\n", tier, c.hits);
  line(out, "promptcache_cache_requests_total{{tier=\"{}\",outcome=\"miss\"}} {}\n", tier,
       c.misses);
  line(out, "promptcache_cache_requests_total{{tier=\"{}\",outcome=\"error\"}} {}\n", tier,
       c.errors);
  family(out, "promptcache_cache_corrupt_values_total", "counter",
         "Cached values discarded as corrupt.");
  line(out, "promptcache_cache_corrupt_values_total{{tier=\"{}\"}} {}\n", tier, c.corrupt);
  family(out, "promptcache_cache_dropped_writes_total", "counter",
         "Writes dropped while the breaker was open.");
  line(out, "promptcache_cache_dropped_writes_total{{tier=\"{}\"}} {}\n", tier, c.dropped_writes);
  family(out, "promptcache_cache_near_hits_total", "counter",
         "Hits answered by the near tier (also in hits).");
  line(out, "promptcache_cache_near_hits_total {}\n", c.near_hits);
  family(out, "promptcache_cache_stampede_total", "counter",
         "Stampede protection at work, by kind.");
  using Kind = std::pair<const char*, std::uint64_t>;
  for (const auto& [kind, n] :
       {Kind{"coalesced", c.coalesced}, Kind{"lease_wait", c.lease_waits},
        Kind{"negative_hit", c.negative_hits}, Kind{"stale_served", c.stale_served},
        Kind{"early_refresh", c.early_refreshes}}) {
    line(out, "promptcache_cache_stampede_total{{kind=\"{}\"}} {}\n", kind, n);
  }
  family(out, "promptcache_cache_breaker_state", "gauge",
         "The cache breaker: 0 closed, 1 open, 2 half-open.");
  line(out, "promptcache_cache_breaker_state{{tier=\"{}\"}} {}\n", tier,
       static_cast<int>(service.breaker().state()));
}

}  // namespace

void Metrics::render_http(std::string& out) const {
  family(out, "promptcache_http_requests_total", "counter",
         "HTTP requests answered, by route and status.");
  for (std::size_t r = 0; r < routes; ++r) {
    for (std::size_t s = 0; s < statuses.size(); ++s) {
      const auto n = requests_[r][s].load(relaxed);
      if (n == 0) continue;
      line(out, "promptcache_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
           route_name(static_cast<Route>(r)),
           statuses[s] == 0 ? std::string("other") : std::to_string(statuses[s]), n);
    }
  }
  family(out, "promptcache_http_request_duration_seconds", "histogram",
         "Time from a request read to its response ready, by route.");
  for (std::size_t r = 0; r < routes; ++r) {
    std::array<std::uint64_t, bounds.size() + 1> counts{};
    for (std::size_t b = 0; b <= bounds.size(); ++b) counts[b] = buckets_[r][b].load(relaxed);
    std::uint64_t total = 0;
    for (auto c : counts) total += c;
    if (total == 0) continue;
    const auto name = route_name(static_cast<Route>(r));
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < bounds.size(); ++b) {
      cumulative += counts[b];
      line(out, "promptcache_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n",
           name, bounds[b], cumulative);
    }
    line(out, "promptcache_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n",
         name, total);
    line(out, "promptcache_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", name,
         static_cast<double>(duration_ns_[r].load(relaxed)) / 1e9);
    line(out, "promptcache_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", name, total);
  }
}

void Metrics::render_db(std::string& out) const {
  family(out, "promptcache_db_corrupt_rows_total", "counter",
         "Rows that could not be decoded (not served).");
  line(out, "promptcache_db_corrupt_rows_total {}\n", corrupt_rows_.load(relaxed));
  family(out, "promptcache_db_calls_total", "counter",
         "Calls to the database, by operation and outcome.");
  for (std::size_t o = 0; o < ops; ++o) {
    for (int ok = 1; ok >= 0; --ok) {
      line(out, "promptcache_db_calls_total{{op=\"{}\",outcome=\"{}\"}} {}\n", db_op_names[o],
           ok != 0 ? "ok" : "error", db_calls_[o][static_cast<std::size_t>(ok)].load(relaxed));
    }
  }
}

namespace {

// The span exporter's health (only when tracing is configured).
void render_exporter(std::string& out, const telemetry::ExporterStats& s) {
  family(out, "promptcache_otel_spans_total", "counter",
         "Finished spans by what became of them: exported, dropped (the export queue was full), "
         "failed (their batch was given up).");
  line(out, "promptcache_otel_spans_total{{outcome=\"exported\"}} {}\n", s.spans_exported);
  line(out, "promptcache_otel_spans_total{{outcome=\"dropped\"}} {}\n", s.spans_dropped);
  line(out, "promptcache_otel_spans_total{{outcome=\"failed\"}} {}\n", s.spans_failed);
  family(out, "promptcache_otel_export_failures_total", "counter",
         "Export attempts the collector did not accept (each retry counts).");
  line(out, "promptcache_otel_export_failures_total {}\n", s.exports_failed);
  family(out, "promptcache_otel_spans_queued", "gauge", "Spans waiting to be exported.");
  line(out, "promptcache_otel_spans_queued {}\n", s.queued);
}

}  // namespace

std::string Metrics::render(const cache::PromptCacheService& service,
                            const telemetry::OtlpTracer* exporter) const {
  std::string out;
  render_http(out);
  render_db(out);
  render_cache(out, service);
  if (exporter != nullptr) render_exporter(out, exporter->stats());
  return out;
}

}  // namespace promptcache::server
