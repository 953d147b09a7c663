#include "bench.hpp"

#include <time.h>
#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/near_tier.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/error.hpp"
#include "promptcache/json_text.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/store/factory.hpp"

namespace promptcache::app {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

struct BenchOptions {
  std::string workload = "raw_get";
  std::string redis_url;
  std::vector<std::size_t> concurrency{50};
  std::size_t ops = 200000;
  std::size_t value_bytes = 1024;
  std::size_t keys = 10000;
  std::size_t users = 100;
  std::size_t batch = 1000;  // set_multiple entries per call
  // stampede: the cross-process lease (0: off), a wall-clock start (Unix ms) shared by
  // several processes, and a name for the run's cold keys shared by them.
  std::int64_t lease_ms = 0;
  std::int64_t start_at_ms = 0;
  std::string nonce;
  std::size_t threads = 2;  // get_hit_l1: also measured on this many threads
};

// The standard value (docs/benchmarks.md): a prompt-analysis result of `bytes` bytes of JSON, as
// Boost.JSON serializes it (0.87 prints as 8.7E-1), so the text and the parsed value weigh the
// same on the wire and fall on the same side of the compression threshold.
std::string standard_value(std::size_t bytes) {
  auto with_pad = [](std::size_t pad) {
    std::string v = R"({"score":0.87,"clarity":0.91,"suggestions":[)";
    for (int i = 0; i < 12; ++i) {
      if (i > 0) v += ',';
      v += fmt::format(R"("suggestion {:02}: state the expected output format")", i);
    }
    v += R"(],"tokens":412,"pad":")";
    v.append(pad, 'x');
    v += "\"}";
    return json_text(boost::json::parse(v));
  };
  const std::size_t bare = with_pad(0).size();
  return with_pad(bytes > bare ? bytes - bare : 0);
}

std::string raw_key(std::size_t i) {
  return fmt::format("bench:raw:{}", i);
}
std::string prompt_hash(std::size_t i) {
  return fmt::format("{:064x}", i * 2654435761u);
}

struct Sample {
  std::size_t ops = 0;  // units of work (entries for set_multiple)
  std::size_t errors = 0;
  std::vector<std::uint32_t> latencies_ns;  // per call
};

// One call of a workload: the units of work it did (0 on failure).
using Step = std::function<asio::awaitable<std::size_t>(std::minstd_rand&)>;

asio::awaitable<void> run_loop(const Step& step, std::size_t calls, std::uint32_t seed,
                               Sample& out) {
  std::minstd_rand rng(seed);
  for (std::size_t i = 0; i < calls; ++i) {
    const auto start = Clock::now();
    const std::size_t done = co_await step(rng);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
    out.latencies_ns.push_back(
        static_cast<std::uint32_t>(std::min<std::int64_t>(ns.count(), UINT32_MAX)));
    if (done == 0) ++out.errors;
    out.ops += done;
  }
}

// Runs `concurrency` coroutines sharing `calls` calls of `step`; prints one JSON line.
asio::awaitable<void> measure(asio::io_context& io, const BenchOptions& o, std::size_t concurrency,
                              std::size_t calls, const Step& step) {
  std::vector<Sample> parts(concurrency);
  const std::size_t per = std::max<std::size_t>(calls / concurrency, 1);
  std::size_t running = concurrency;
  asio::steady_timer done(io, Clock::time_point::max());
  const auto start = Clock::now();
  for (std::size_t i = 0; i < concurrency; ++i) {
    parts[i].latencies_ns.reserve(per);
    asio::co_spawn(io, run_loop(step, per, static_cast<std::uint32_t>(i + 7), parts[i]),
                   [&](std::exception_ptr) {
                     if (--running == 0) done.cancel();
                   });
  }
  boost::system::error_code ignored;
  co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  Sample total;
  for (auto& p : parts) {
    total.ops += p.ops;
    total.errors += p.errors;
    total.latencies_ns.insert(total.latencies_ns.end(), p.latencies_ns.begin(),
                              p.latencies_ns.end());
  }
  std::sort(total.latencies_ns.begin(), total.latencies_ns.end());
  auto pct = [&](double p) {
    if (total.latencies_ns.empty()) return 0.0;
    const auto i = static_cast<std::size_t>(p * static_cast<double>(total.latencies_ns.size() - 1));
    return total.latencies_ns[i] / 1000.0;
  };
  std::cout << fmt::format(
                   R"({{"workload":"{}","ops":{},"concurrency":{},"ops_per_s":{:.0f},)"
                   R"("p50_us":{:.1f},"p99_us":{:.1f},"errors":{},"ms":{:.1f},"value_bytes":{}}})",
                   o.workload, total.ops, concurrency, static_cast<double>(total.ops) / seconds,
                   pct(0.50), pct(0.99), total.errors, seconds * 1000, o.value_bytes)
            << std::endl;
}

asio::awaitable<bool> preload_raw(net::Client& client, const BenchOptions& o,
                                  const std::string& value) {
  constexpr std::size_t batch = 500;
  for (std::size_t first = 0; first < o.keys; first += batch) {
    resp::Request req;
    for (std::size_t i = first; i < std::min(o.keys, first + batch); ++i) {
      req.push("SET", raw_key(i), value);
    }
    resp::ReplyCollector out;
    if (auto ec = co_await client.execute(req, out)) {
      std::cerr << "promptcache bench: preloading keys failed: " << ec.message() << " ("
                << client.last_error_message() << ")\n";
      co_return false;
    }
  }
  co_return true;
}

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

double thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

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

// The number of keys the store holds now (DBSIZE, summed over a cluster's masters).
asio::awaitable<std::uint64_t> key_count(store::Store& store) {
  auto stats = co_await store.server_stats();
  co_return stats ? stats->keys : 0;
}

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

// How many distinct batches the set_multiple workloads cycle through.
constexpr std::size_t distinct_batches = 16;

// set_multiple (JSON values), set_multiple_json (serialized) or set_multiple_versioned
// (serialized, each entry newer than the last): one step writes one batch; ops counts entries.
Step set_multiple_step(const BenchOptions& o, cache::PromptCacheService& service,
                       const std::string& value_text, const boost::json::value& value) {
  const bool versioned = o.workload == "set_multiple_versioned";
  const bool serialized = versioned || o.workload == "set_multiple_json";
  // Batches made up front, as a caller holds them: the loop measures the cache, not the
  // making of keys and copies of values.
  using Texts = std::vector<std::pair<std::string, std::string>>;
  using Values = std::vector<std::pair<std::string, boost::json::value>>;
  auto texts = std::make_shared<std::vector<Texts>>(distinct_batches);
  auto values = std::make_shared<std::vector<Values>>(distinct_batches);
  std::minstd_rand pick(42);
  for (std::size_t b = 0; b < distinct_batches; ++b) {
    for (std::size_t j = 0; j < o.batch; ++j) {
      const std::size_t i = pick() % o.keys;
      std::string key =
          cache::analysis_key(prompt_hash(i), fmt::format("user{}", i % o.users), "default");
      if (serialized) {
        (*texts)[b].emplace_back(std::move(key), value_text);
      } else {
        (*values)[b].emplace_back(std::move(key), value);
      }
    }
  }
  // Versions only grow, so every versioned write takes effect (the script's full path: the
  // held version read, the value and the index written).
  // Above whatever an earlier run left (microseconds since the epoch: exact in the script's
  // Lua numbers until the year 2255).
  auto next_version = std::make_shared<std::uint64_t>(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()));
  return [opts = &o, svc = &service, serialized, versioned, texts, values,
          next_version](std::minstd_rand& rng) -> asio::awaitable<std::size_t> {
    const BenchOptions& o = *opts;
    cache::PromptCacheService& service = *svc;
    const std::size_t b = rng() % distinct_batches;
    try {
      if (versioned) {
        std::vector<cache::PromptCacheService::VersionedEntry> batch;
        batch.reserve(o.batch);
        for (const auto& [key, text] : (*texts)[b]) batch.push_back({key, text, ++*next_version});
        co_await service.set_multiple_versioned(batch);
      } else if (serialized) {
        co_await service.set_multiple_json((*texts)[b]);
      } else {
        co_await service.set_multiple((*values)[b]);
      }
    } catch (const cache::CacheError& e) {
      std::cerr << "promptcache bench: " << e.what() << "\n";
      co_return 0;
    }
    co_return o.batch;
  };
}

asio::awaitable<int> run(asio::io_context& io, const BenchOptions& o, net::ClientConfig cfg) {
  const bool outage = o.workload == "fallback_outage";
  if (outage) {
    // Redis is expected to be down: trip the breaker quickly.
    cfg.command_timeout = std::min(cfg.command_timeout, std::chrono::milliseconds(100));
    cfg.connect_timeout = std::min(cfg.connect_timeout, std::chrono::milliseconds(100));
  }
  std::shared_ptr<cache::NearTier> near;
  if (o.workload == "get_hit_l1") {
    cache::NearCacheOptions near_options;
    near_options.max_entries = o.keys * 2;
    near_options.max_bytes = o.keys * (o.value_bytes + 512) * 2;
    near = std::make_shared<cache::NearTier>(near_options);
    cfg.tracking.listener = near;
  }
  // The cache's own settings (codec, breaker, TTL, cluster options) come from the environment,
  // as for serve; the store is chosen as serve and the operator commands choose it (one server,
  // a Sentinel's master, or a cluster: given, or found by asking the one node named).
  cache::CacheConfig config = cache::CacheConfig::from_env();
  config.redis = cfg;
  config.cluster_nodes = cfg.seeds;
  std::vector<asio::any_io_executor> executors;  // not a braced list: g++ 12 coroutines
  executors.push_back(io.get_executor());
  std::shared_ptr<store::Store> store = store::make_store(config.store_spec(near), executors);
  if (outage) co_return co_await run_outage(io, o, std::move(store));
  if (co_await store->connect()) {
    std::cerr << "promptcache bench: cannot reach Redis: " << store->last_error() << "\n";
    co_return 1;
  }
  // raw_get measures one server's client alone, beside redis-benchmark.
  std::shared_ptr<net::Client> client;
  if (o.workload == "raw_get") {
    if (!cfg.seeds.empty()) {
      std::cerr << "promptcache bench: raw_get measures one server's client: give one host\n";
      co_return 2;
    }
    client = std::make_shared<net::Client>(io.get_executor(), cfg);
  }
  const std::string value_text = standard_value(o.value_bytes);
  const boost::json::value value = boost::json::parse(value_text);
  cache::ServiceOptions options = config.service_options();
  if (o.workload == "stampede") options.lease = std::chrono::milliseconds(o.lease_ms);
  cache::PromptCacheService service(store, options, nullptr, near);
  if (o.workload == "get_hit_l1" || o.workload == "stampede") {
    const int status = o.workload == "stampede" ? co_await run_stampede(io, o, service)
                                                : co_await run_near(io, o, service, value_text);
    store->close();
    co_return status;
  }

  if (o.workload == "invalidate_user") {
    const int status = co_await run_invalidate(o, service, value_text);
    store->close();
    co_return status;
  }
  Step step;
  std::size_t calls = o.ops;
  if (o.workload == "raw_get") {
    if (!co_await preload_raw(*client, o, value_text)) co_return 1;
    step = [&](std::minstd_rand& rng) -> asio::awaitable<std::size_t> {
      const std::string key = raw_key(rng() % o.keys);
      auto r = co_await client->get(key);
      co_return r && r->has_value() ? 1 : 0;
    };
  } else if (o.workload == "get_hit") {
    std::vector<std::pair<std::string, std::string>> entries;
    for (std::size_t i = 0; i < o.keys; ++i) {
      entries.emplace_back(
          cache::analysis_key(prompt_hash(i), fmt::format("user{}", i % o.users), "default"),
          value_text);
    }
    co_await service.set_multiple_json(entries);
    // Ids made up front, as a caller holds them: the loop measures the cache, not fmt.
    auto ids = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
    for (std::size_t i = 0; i < o.keys; ++i) {
      ids->emplace_back(prompt_hash(i), fmt::format("user{}", i % o.users));
    }
    step = [&, ids](std::minstd_rand& rng) -> asio::awaitable<std::size_t> {
      const auto& [hash, user] = (*ids)[rng() % o.keys];
      auto r = co_await service.get_analysis_result(hash, user, "default");
      co_return r ? 1 : 0;
    };
  } else {  // set_multiple, set_multiple_json or set_multiple_versioned: ops counts entries
    calls = std::max<std::size_t>(o.ops / o.batch, 1);
    step = set_multiple_step(o, service, value_text, value);
  }
  for (std::size_t c : o.concurrency) {
    co_await measure(io, o, c, std::max<std::size_t>(calls / 20, c), step);  // warm-up
    co_await measure(io, o, c, calls, step);
  }
  store->close();
  if (client) client->close();
  co_return 0;
}

int run_bench(const BenchOptions& o) {
  net::ClientConfig cfg;
  try {
    cfg = o.redis_url.empty() ? net::ClientConfig::from_env()
                              : net::ClientConfig::from_url(o.redis_url);
  } catch (const net::ConfigError& e) {
    std::cerr << "promptcache bench: " << e.what() << "\n";
    return 2;
  }
  asio::io_context io(1);
  int status = 1;
  asio::co_spawn(io, run(io, o, cfg), [&](std::exception_ptr e, int result) {
    status = result;
    if (!e) return;
    status = 1;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "promptcache bench: " << ex.what() << "\n";
    }
  });
  io.run();
  return status;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure the client and the cache beside a reference (docs/benchmarks.md)");
  cmd->add_option("--workload", opts->workload,
                  "raw_get, get_hit, get_hit_l1, set_multiple, set_multiple_json, "
                  "fallback_outage, invalidate_user or stampede")
      ->check(CLI::IsMember({"raw_get", "get_hit", "get_hit_l1", "set_multiple",
                             "set_multiple_json", "set_multiple_versioned", "fallback_outage",
                             "invalidate_user", "stampede"}))
      ->capture_default_str();
  cmd->add_option("--redis", opts->redis_url,
                  "Redis URL (default: REDIS_URL and REDIS_*); several hosts "
                  "(redis://h1:p1,h2:p2): a Redis Cluster");
  cmd->add_option("--concurrency", opts->concurrency,
                  "Concurrent coroutines; several values run one after the other")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--ops", opts->ops, "Operations (entries for set_multiple) per run")
      ->check(CLI::Range(1, 1 << 30))
      ->capture_default_str();
  cmd->add_option("--value-bytes", opts->value_bytes, "Size of the standard value")
      ->check(CLI::Range(64, 64 << 20))
      ->capture_default_str();
  cmd->add_option("--keys", opts->keys, "Distinct keys")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  cmd->add_option("--users", opts->users, "Distinct users the keys belong to")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  cmd->add_option("--batch", opts->batch, "Entries per set_multiple call")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--lease-ms", opts->lease_ms, "stampede: the cross-process lease (0: off)")
      ->check(CLI::Range(0, 3600 * 1000))
      ->capture_default_str();
  cmd->add_option("--start-at", opts->start_at_ms,
                  "stampede: start at this Unix time in ms (several processes together)");
  cmd->add_option("--nonce", opts->nonce,
                  "stampede: names the cold keys (several processes: the same nonce)");
  cmd->add_option("--threads", opts->threads, "get_hit_l1: threads of the second run")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->callback([opts, &exit_code] { exit_code = run_bench(*opts); });
}

}  // namespace promptcache::app
