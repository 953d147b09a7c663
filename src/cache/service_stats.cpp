// The service's statistics: its counters, latencies and near tier, and the server's figures
// (get_cache_stats, the seed's fields).
#include <boost/json/array.hpp>

#include <spdlog/spdlog.h>

#include "cache/service_core.hpp"
#include "promptcache/error.hpp"
#include "promptcache/log.hpp"

namespace promptcache::cache {

namespace asio = boost::asio;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
template <class T>
using Result = boost::system::result<T>;

namespace {

// The seed's fields of the server's statistics (and `keys`).
json::object server_fields(const store::ServerStats& s) {
  const std::uint64_t total = s.keyspace_hits + s.keyspace_misses;
  return json::object{
      {"keyspace_hits", s.keyspace_hits},
      {"keyspace_misses", s.keyspace_misses},
      {"hit_rate",
       total > 0 ? static_cast<double>(s.keyspace_hits) / static_cast<double>(total) * 100 : 0.0},
      {"connected_clients", s.connected_clients},
      {"used_memory", s.used_memory_human.empty() ? std::string("unknown") : s.used_memory_human},
      {"total_commands_processed", s.total_commands_processed},
      {"keys", s.keys}};
}

}  // namespace

const std::array<ServiceCore::CounterField, 13> ServiceCore::counter_fields = {{
    {"hits", &Counters::hits, &CounterSnapshot::hits},
    {"misses", &Counters::misses, &CounterSnapshot::misses},
    {"errors", &Counters::errors, &CounterSnapshot::errors},
    {"corrupt_values", &Counters::corrupt, &CounterSnapshot::corrupt},
    {"skipped_reads", &Counters::skipped_reads, &CounterSnapshot::skipped_reads},
    {"dropped_writes", &Counters::dropped_writes, &CounterSnapshot::dropped_writes},
    {"fallback_calls", &Counters::fallback_calls, &CounterSnapshot::fallback_calls},
    {"negative_hits", &Counters::negative_hits, &CounterSnapshot::negative_hits},
    {"coalesced", &Counters::coalesced, &CounterSnapshot::coalesced},
    {"stale_served", &Counters::stale_served, &CounterSnapshot::stale_served},
    {"early_refreshes", &Counters::early_refreshes, &CounterSnapshot::early_refreshes},
    {"lease_waits", &Counters::lease_waits, &CounterSnapshot::lease_waits},
    {"near_hits", &Counters::near_hits, &CounterSnapshot::near_hits},
}};

ServiceCore::CounterSnapshot ServiceCore::counters() const noexcept {
  CounterSnapshot c;
  for (const auto& f : counter_fields)
    c.*f.copy = (counters_.*f.live).load(std::memory_order_relaxed);
  return c;
}

asio::awaitable<json::object> ServiceCore::get_cache_stats() {
  json::object client;
  client["tier"] = store_->tier();
  const CounterSnapshot c = counters();
  for (const auto& f : counter_fields) client[f.name] = c.*f.copy;
  if (near_) {
    const auto n = near_->cache().stats();
    client["near"] = json::object{
        {"active", near_->active()}, {"hits", c.near_hits},
        {"entries", n.entries},      {"bytes", n.bytes},
        {"fills", n.fills},          {"rejected", n.rejected},
        {"evictions", n.evictions},  {"invalidations", near_->stats().keys_invalidated},
        {"flushes", n.flushes}};
  }
  client["breaker"] = to_string(breaker_.state());
  client["breaker_opened"] = breaker_.times_opened();
  json::object latency;
  for (int op = 0; op < op_count; ++op) {
    const auto& h = latency_[op];
    latency[op_text[op].name] = json::object{
        {"count", h.count()}, {"p50_us", h.percentile_us(0.50)}, {"p99_us", h.percentile_us(0.99)}};
  }
  client["latency"] = std::move(latency);

  json::object stats;
  const auto start = Clock::now();
  Result<store::ServerStats> server = make_error_code(error::circuit_open);
  if (breaker_.allow(start)) {  // during an outage, stats answer at once too
    server = co_await store_->server_stats();
    note_result(server);
  }
  if (server.has_error()) {
    stats["error"] = server.error().message();
    logger()->error("failed to get cache stats error=\"{}\"", server.error().message());
  } else {
    stats = server_fields(*server);
    if (!server->nodes.empty()) {
      json::array nodes;
      for (const auto& n : server->nodes) {
        json::object node = server_fields(n);
        node["node"] = n.node;
        nodes.push_back(std::move(node));
      }
      stats["nodes"] = std::move(nodes);
    }
  }
  stats["client"] = std::move(client);
  co_return stats;
}

}  // namespace promptcache::cache
