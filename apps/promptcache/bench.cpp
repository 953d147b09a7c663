#include "bench.hpp"
#include "bench_workloads.hpp"

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
namespace bench {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

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

// get_hit: get_analysis_result of o.keys entries, stored first.
asio::awaitable<Step> get_hit_step(const BenchOptions& o, cache::PromptCacheService& service,
                                   const std::string& value_text) {
  std::vector<std::pair<std::string, std::string>> entries;
  for (std::size_t i = 0; i < o.keys; ++i) {
    entries.emplace_back(
        cache::analysis_key(prompt_hash(i), fmt::format("user{}", i % o.users), "default"),
        value_text);
  }
  co_await service.set_multiple_json(entries);
  // Ids made up front, as a caller holds them: the loop measures the cache, not fmt. Laid out
  // in one block, as a caller's ids are at hand: 10 000 strings scattered over the heap made two
  // cache misses per call the harness's own cost (9 % of the process's time under perf).
  struct Ids {
    std::string hashes;  // o.keys hashes of 64 characters, back to back
    std::vector<std::string> users;
  };
  auto ids = std::make_shared<Ids>();
  ids->hashes.reserve(o.keys * 64);
  for (std::size_t i = 0; i < o.keys; ++i) ids->hashes += prompt_hash(i);
  for (std::size_t u = 0; u < std::min(o.users, o.keys); ++u) {
    ids->users.push_back(fmt::format("user{}", u));
  }
  co_return [&o, &service, ids](std::minstd_rand& rng) -> asio::awaitable<std::size_t> {
    const std::size_t i = rng() % o.keys;
    const std::string_view hash = std::string_view(ids->hashes).substr(i * 64, 64);
    const std::string& user = ids->users[i % ids->users.size()];
    auto r = co_await service.get_analysis_result(hash, user, "default");
    co_return r ? 1 : 0;
  };
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

// The store every workload but raw_get measures through, chosen as serve and the operator
// commands choose it (one server, a Sentinel's master, or a cluster: given, or found by asking
// the one node named); the cache's own settings (codec, breaker, TTL, cluster options) come
// from the environment, as for serve.
std::shared_ptr<store::Store> open_store(asio::io_context& io, const cache::CacheConfig& config,
                                         std::shared_ptr<cache::NearTier> near) {
  std::vector<asio::any_io_executor> executors;  // not a braced list: g++ 12 coroutines
  executors.push_back(io.get_executor());
  return store::make_store(config.store_spec(std::move(near)), executors);
}

// The workloads of bench_workloads.cpp, each with a shape of its own.
asio::awaitable<int> run_special(asio::io_context& io, const BenchOptions& o,
                                 cache::PromptCacheService& service,
                                 const std::string& value_text) {
  if (o.workload == "stampede") co_return co_await run_stampede(io, o, service);
  if (o.workload == "get_hit_l1") co_return co_await run_near(io, o, service, value_text);
  co_return co_await run_invalidate(o, service, value_text);
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
  cache::CacheConfig config = cache::CacheConfig::from_env();
  config.redis = cfg;
  config.cluster_nodes = cfg.seeds;
  std::shared_ptr<store::Store> store = open_store(io, config, near);
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
  cache::ServiceOptions options = config.service_options();
  if (o.workload == "stampede") options.lease = std::chrono::milliseconds(o.lease_ms);
  cache::PromptCacheService service(store, options, nullptr, near);
  if (o.workload == "get_hit_l1" || o.workload == "stampede" || o.workload == "invalidate_user") {
    const int status = co_await run_special(io, o, service, value_text);
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
    step = co_await get_hit_step(o, service, value_text);
  } else {  // set_multiple, set_multiple_json or set_multiple_versioned: ops counts entries
    calls = std::max<std::size_t>(o.ops / o.batch, 1);
    step = set_multiple_step(o, service, value_text, boost::json::parse(value_text));
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

}  // namespace bench

void add_bench_command(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<bench::BenchOptions>();
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
  cmd->callback([opts, &exit_code] { exit_code = bench::run_bench(*opts); });
}

}  // namespace promptcache::app
