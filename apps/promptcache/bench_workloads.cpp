#include "bench_workloads.hpp"

#include <time.h>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/near_tier.hpp"
#include "promptcache/error.hpp"
#include "promptcache/json_text.hpp"

namespace promptcache::app::bench {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// get_with_fallback with Redis down and the breaker open, beside the fallback alone: what the
// cache adds to a call during an outage.
asio::awaitable<int> run_outage(asio::io_context& io, const BenchOptions& o,
                                std::shared_ptr<store::Store> store) {
  cache::ServiceOptions options = cache::CacheConfig::from_env().service_options();
  options.breaker.open_for = std::chrono::seconds(3600);  // stays open for the whole run
  cache::PromptCacheService service(std::move(store), options);
  const boost::json::value value = boost::json::parse(standard_value(o.value_bytes));
  std::size_t fallback_calls = 0;
  const cache::PromptCacheService::Fallback fallback =
      [&]() -> asio::awaitable<boost::json::value> {
    ++fallback_calls;
    co_return value;
  };
  for (int i = 0; i < 1000 && service.breaker().state() != cache::CircuitBreaker::State::open;
       ++i) {
    co_await service.get_with_fallback("bench:outage:warmup", fallback);
  }
  if (service.breaker().state() != cache::CircuitBreaker::State::open) {
    std::cerr << "promptcache bench: the breaker did not open: is Redis really down?\n";
    co_return 1;
  }
  const Step alone = [&](std::minstd_rand&) -> asio::awaitable<std::size_t> {
    boost::json::value v = co_await fallback();
    co_return v.is_object() ? 1 : 0;
  };
  const Step through_cache = [&](std::minstd_rand& rng) -> asio::awaitable<std::size_t> {
    const std::string key = cache::analysis_key(prompt_hash(rng() % o.keys), "user0", "default");
    boost::json::value v = co_await service.get_with_fallback(key, fallback);
    co_return v.is_object() ? 1 : 0;
  };
  BenchOptions named = o;
  for (std::size_t c : o.concurrency) {
    named.workload = "fallback_alone";
    co_await measure(io, named, c, o.ops, alone);
    named.workload = "fallback_outage";
    co_await measure(io, named, c, o.ops, through_cache);
  }
  std::cout << fmt::format(R"({{"workload":"fallback_outage","fallback_calls":{},"breaker":"{}"}})",
                           fallback_calls, cache::to_string(service.breaker().state()))
            << std::endl;
  service.close();
  co_return 0;
}

namespace {

double thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

}  // namespace

// get_hit_l1: near-tier hits (peek: no I/O, no copy) of the standard value over o.keys keys,
// on one thread and on o.threads threads; the coroutine read of a near hit (get_json, a copy
// of the text) beside it.
asio::awaitable<int> run_near(asio::io_context& io, const BenchOptions& o,
                              cache::PromptCacheService& service, const std::string& value_text) {
  std::vector<std::string> keys;
  std::vector<std::pair<std::string, std::string>> entries;
  for (std::size_t i = 0; i < o.keys; ++i) {
    keys.push_back(
        cache::analysis_key(prompt_hash(i), fmt::format("user{}", i % o.users), "default"));
    entries.emplace_back(keys.back(), value_text);
  }
  co_await service.set_multiple_json(entries);
  std::size_t filled = 0;
  for (int pass = 0; pass < 3; ++pass) {  // admission wants a key seen more than once
    for (const auto& k : keys) (void)co_await service.get_json(k);
  }
  for (const auto& k : keys) filled += service.peek(k) ? 1 : 0;
  // peek hands out a reference (shared_ptr); peek_with borrows the value for a call.
  auto peek_loop = [&](bool borrow, std::size_t n, std::uint32_t seed, std::size_t& found) {
    std::uint32_t x = seed;
    std::size_t bytes = 0;
    std::size_t hits = 0;  // local: the threads' results share a cache line
    for (std::size_t i = 0; i < n; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      const std::string& key = keys[x % keys.size()];
      if (borrow) {
        hits += service.peek_with(key, [&](const cache::NearValue& v) { bytes += v.text.size(); })
                    ? 1
                    : 0;
      } else {
        hits += service.peek(key) ? 1 : 0;
      }
    }
    found = hits;
    return bytes;
  };
  const std::size_t n = std::max<std::size_t>(o.ops, 1000);
  // The floor on this machine, measured the same way: a bare locked hash-map lookup of the
  // same keys handing out the same shared values, with no policy, expiry or statistics.
  {
    std::unordered_map<std::string_view, cache::NearValuePtr> bare;
    for (const auto& k : keys) bare.emplace(k, service.peek(k));
    std::mutex mutex;
    std::uint32_t x = 99;
    std::size_t hits = 0;
    const auto start = Clock::now();
    for (std::size_t i = 0; i < n; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      std::lock_guard lock(mutex);
      auto it = bare.find(keys[x % keys.size()]);
      cache::NearValuePtr v = it == bare.end() ? nullptr : it->second;
      hits += v ? 1 : 0;
    }
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
                      static_cast<double>(n);
    std::cout << fmt::format(R"({{"workload":"get_hit_l1","api":"bare_map_reference","threads":1,)"
                             R"("ns_per_hit":{:.1f},"hit_ratio":{:.4f},"keys":{}}})",
                             ns, static_cast<double>(hits) / static_cast<double>(n), keys.size())
              << std::endl;
  }
  for (const bool borrow : {false, true}) {
    for (std::size_t threads : {std::size_t{1}, o.threads}) {
      std::vector<std::size_t> hits(threads, 0);
      std::vector<double> ns(threads, 0);
      std::vector<std::thread> pool;
      for (std::size_t t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          (void)peek_loop(borrow, n / 10, static_cast<std::uint32_t>(t * 7919 + 1), hits[t]);
          hits[t] = 0;
          // The thread's own CPU time: on a shared machine, wall time counts other processes.
          const double start = thread_cpu_ns();
          (void)peek_loop(borrow, n, static_cast<std::uint32_t>(t * 104729 + 3), hits[t]);
          ns[t] = (thread_cpu_ns() - start) / static_cast<double>(n);
        });
      }
      for (auto& th : pool) th.join();
      std::size_t total = 0;
      for (auto h : hits) total += h;
      const double worst = *std::max_element(ns.begin(), ns.end());
      std::cout << fmt::format(
                       R"({{"workload":"get_hit_l1","api":"{}","threads":{},"ns_per_hit":{:.1f},)"
                       R"("hit_ratio":{:.4f},"keys":{},"kept":{},"hits_per_s":{:.0f}}})",
                       borrow ? "peek_with" : "peek", threads, worst,
                       static_cast<double>(total) / static_cast<double>(n * threads), keys.size(),
                       filled, static_cast<double>(threads) * 1e9 / worst)
                << std::endl;
    }
  }
  // The same hits through the coroutine API (get_json copies the text out).
  std::minstd_rand rng(11);
  const std::size_t m = std::max<std::size_t>(n / 10, 1000);
  const auto start = Clock::now();
  std::size_t found = 0;
  for (std::size_t i = 0; i < m; ++i) {
    found += (co_await service.get_json(keys[rng() % keys.size()])) ? 1 : 0;
  }
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
                    static_cast<double>(m);
  std::cout << fmt::format(
                   R"({{"workload":"get_hit_l1","api":"get_json","threads":1,"ns_per_hit":{:.1f},)"
                   R"("hit_ratio":{:.4f}}})",
                   ns, static_cast<double>(found) / static_cast<double>(m))
            << std::endl;
  (void)io;
  co_return 0;
}

// stampede: o.concurrency callers at once on o.keys cold keys, get_with_fallback with a 5 ms
// fallback; prints the fallback calls made. Several processes given one --nonce and
// --start-at share the keys and start together (with --lease-ms: the cross-process lease).
asio::awaitable<int> run_stampede(asio::io_context& io, const BenchOptions& o,
                                  cache::PromptCacheService& service) {
  const std::string nonce =
      o.nonce.empty() ? fmt::format("{}", Clock::now().time_since_epoch().count()) : o.nonce;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < o.keys; ++i) {
    keys.push_back(cache::analysis_key(prompt_hash(i), "stampede-" + nonce, "default"));
  }
  std::atomic<std::size_t> calls{0};
  const cache::PromptCacheService::Fallback fallback =
      [&]() -> asio::awaitable<boost::json::value> {
    calls.fetch_add(1);
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(5));
    boost::system::error_code ignored;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    co_return boost::json::value("from the database");
  };
  if (o.start_at_ms > 0) {
    const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(o.start_at_ms));
    asio::steady_timer t(
        io, std::chrono::duration_cast<Clock::duration>(at - std::chrono::system_clock::now()));
    boost::system::error_code ignored;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  const std::size_t callers = o.concurrency.front();
  std::size_t left = callers;
  std::size_t right = 0;
  asio::steady_timer done(io, Clock::time_point::max());
  const auto start = Clock::now();
  for (std::size_t i = 0; i < callers; ++i) {
    asio::co_spawn(io, service.get_with_fallback(keys[i % keys.size()], fallback),
                   [&](std::exception_ptr e, const boost::json::value& v) {
                     right += !e && v == boost::json::value("from the database") ? 1 : 0;
                     if (--left == 0) done.cancel();
                   });
  }
  boost::system::error_code ignored;
  co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  const auto c = service.counters();
  std::cout
      << fmt::format(
             R"({{"workload":"stampede","callers":{},"keys":{},"lease_ms":{},)"
             R"("fallback_calls":{},"answered":{},"coalesced":{},"lease_waits":{},"ms":{:.1f}}})",
             callers, keys.size(), o.lease_ms, calls.load(), right, c.coalesced, c.lease_waits, ms)
      << std::endl;
  co_return right == callers ? 0 : 1;
}

namespace {

// The number of keys the store holds now (DBSIZE, summed over a cluster's masters).
asio::awaitable<std::uint64_t> key_count(store::Store& store) {
  auto stats = co_await store.server_stats();
  co_return stats ? stats->keys : 0;
}

}  // namespace

// invalidate_user_analysis_cache of one user's 100 entries among `o.keys` keys of `o.users`
// other users, end to end, round after round; each round checks that exactly the target's
// entries went, and the end that every other entry is still there. The SCAN-based
// invalidate_pattern of the same user over the same keyspace, timed once, is the reference.
asio::awaitable<int> run_invalidate(const BenchOptions& o, cache::PromptCacheService& service,
                                    const std::string& value_text) {
  constexpr std::size_t target_entries = 100;
  constexpr int rounds = 10;
  const std::string target = "bench-target";
  std::vector<std::string> others;
  others.reserve(o.keys);
  for (std::size_t i = 0; i < o.keys; ++i) {
    others.push_back(
        cache::analysis_key(prompt_hash(i), fmt::format("user{}", i % o.users), "default"));
  }
  std::vector<std::pair<std::string, std::string>> mine;
  for (std::size_t i = 0; i < target_entries; ++i) {
    mine.emplace_back(cache::analysis_key(prompt_hash(i), target, "default"), value_text);
  }
  std::vector<std::string> mine_keys;
  for (const auto& e : mine) mine_keys.push_back(e.first);
  const auto load_start = Clock::now();
  for (std::size_t first = 0; first < others.size(); first += o.batch) {
    std::vector<std::pair<std::string, std::string>> chunk;
    for (std::size_t i = first; i < std::min(others.size(), first + o.batch); ++i) {
      chunk.emplace_back(others[i], value_text);
    }
    co_await service.set_multiple_json(chunk);
  }
  const double load_s = std::chrono::duration<double>(Clock::now() - load_start).count();
  const std::uint64_t baseline = co_await key_count(service.store());
  std::vector<double> ms;
  for (int r = 0; r < rounds; ++r) {
    co_await service.set_multiple_json(mine);
    if (co_await key_count(service.store()) != baseline + target_entries + 1) {
      std::cerr << "promptcache bench: the target's entries and index were not all written\n";
      co_return 1;
    }
    const auto start = Clock::now();
    const std::uint64_t n = co_await service.invalidate_user_analysis_cache(target);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    const std::uint64_t left = co_await key_count(service.store());
    auto gone = co_await service.store().get_multiple(mine_keys);
    const bool all_gone =
        gone && std::all_of(gone->begin(), gone->end(), [](const auto& v) { return !v; });
    if (n != target_entries || left != baseline || !all_gone) {
      std::cerr << fmt::format(
          "promptcache bench: round {}: deleted {} (want {}), keys {} (want {}), target gone: "
          "{}\n",
          r, n, target_entries, left, baseline, all_gone);
      co_return 1;
    }
  }
  // The reference: the same user's entries found by SCAN over the whole keyspace.
  co_await service.set_multiple_json(mine);
  const auto scan_start = Clock::now();
  const std::uint64_t scanned =
      co_await service.invalidate_pattern(cache::user_analysis_pattern(target));
  const double scan_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - scan_start).count();
  // No other user's entry was touched: every one is still there, with its value.
  std::size_t intact = 0;
  for (std::size_t first = 0; first < others.size(); first += 1000) {
    const std::vector<std::string> page(
        others.begin() + static_cast<std::ptrdiff_t>(first),
        others.begin() + static_cast<std::ptrdiff_t>(std::min(others.size(), first + 1000)));
    auto values = co_await service.get_multiple(page);
    for (const auto& v : values) intact += v && v->is_object() ? 1 : 0;
  }
  std::sort(ms.begin(), ms.end());
  std::cout << fmt::format(
                   R"({{"workload":"invalidate_user","keyspace":{},"users":{},"entries":{},)"
                   R"("rounds":{},"p50_ms":{:.3f},"max_ms":{:.3f},"scan_reference_ms":{:.1f},)"
                   R"("scan_deleted":{},"others":{},"others_intact":{},"load_s":{:.1f}}})",
                   baseline + target_entries, o.users, target_entries, rounds, ms[ms.size() / 2],
                   ms.back(), scan_ms, scanned, others.size(), intact, load_s)
            << std::endl;
  co_return intact == others.size() && scanned == target_entries ? 0 : 1;
}

}  // namespace promptcache::app::bench
