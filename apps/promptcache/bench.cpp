#include "bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "promptcache/error.hpp"
#include "promptcache/net/client.hpp"

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
};

// The standard value: a prompt-analysis result of about `bytes` bytes of JSON.
std::string standard_value(std::size_t bytes) {
  std::string v = R"({"score":0.87,"clarity":0.91,"suggestions":[)";
  for (int i = 0; i < 12; ++i) {
    if (i > 0) v += ',';
    v += fmt::format(R"("suggestion {:02}: state the expected output format")", i);
  }
  v += R"(],"tokens":412,"pad":")";
  const std::size_t tail = 2;  // closing quote and brace
  if (v.size() + tail < bytes) v.append(bytes - v.size() - tail, 'x');
  v += "\"}";
  return v;
}

std::string bench_key(std::size_t i) {
  return fmt::format("bench:raw:{}", i);
}

struct RunResult {
  std::size_t ops = 0;
  std::size_t errors = 0;
  double seconds = 0;
  std::vector<std::uint32_t> latencies_ns;
};

asio::awaitable<void> get_loop(net::Client& client, std::size_t ops, std::size_t keys,
                               std::uint32_t seed, RunResult& out) {
  std::minstd_rand rng(seed);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < ops; ++i) {
    const std::string key = bench_key(rng() % keys);
    const auto start = Clock::now();
    auto r = co_await client.get(key);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
    out.latencies_ns.push_back(
        static_cast<std::uint32_t>(std::min<std::int64_t>(ns.count(), UINT32_MAX)));
    if (!r || !r->has_value()) ++out.errors;
  }
}

asio::awaitable<bool> preload(net::Client& client, std::size_t keys, const std::string& value) {
  constexpr std::size_t batch = 500;
  for (std::size_t first = 0; first < keys; first += batch) {
    resp::Request req;
    for (std::size_t i = first; i < std::min(keys, first + batch); ++i) {
      req.push("SET", bench_key(i), value);
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

void print_result(const BenchOptions& o, std::size_t concurrency, RunResult& r) {
  std::sort(r.latencies_ns.begin(), r.latencies_ns.end());
  auto pct = [&](double p) {
    if (r.latencies_ns.empty()) return 0.0;
    const auto i = static_cast<std::size_t>(p * static_cast<double>(r.latencies_ns.size() - 1));
    return r.latencies_ns[i] / 1000.0;
  };
  std::cout << fmt::format(
                   R"({{"workload":"{}","ops":{},"concurrency":{},"ops_per_s":{:.0f},)"
                   R"("p50_us":{:.1f},"p99_us":{:.1f},"errors":{},"ms":{:.1f},"value_bytes":{}}})",
                   o.workload, r.ops, concurrency, r.ops / r.seconds, pct(0.50), pct(0.99),
                   r.errors, r.seconds * 1000, o.value_bytes)
            << std::endl;
}

int run_raw_get(const BenchOptions& o) {
  net::ClientConfig cfg;
  try {
    cfg = o.redis_url.empty() ? net::ClientConfig::from_env()
                              : net::ClientConfig::from_url(o.redis_url);
  } catch (const net::ConfigError& e) {
    std::cerr << "promptcache bench: " << e.what() << "\n";
    return 2;
  }
  asio::io_context io(1);
  net::Client client(io.get_executor(), cfg);
  int status = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        if (auto ec = co_await client.connect()) {
          std::cerr << "promptcache bench: cannot reach Redis: " << client.last_error_message()
                    << "\n";
          status = 1;
          co_return;
        }
        const std::string value = standard_value(o.value_bytes);
        if (!co_await preload(client, o.keys, value)) {
          status = 1;
          co_return;
        }
        for (std::size_t c : o.concurrency) {
          // Warm up the connection and the allocator.
          RunResult warm;
          co_await get_loop(client, 1000, o.keys, 1, warm);

          std::vector<RunResult> parts(c);
          const std::size_t per = std::max<std::size_t>(o.ops / c, 1);
          const auto start = Clock::now();
          std::size_t running = c;
          asio::steady_timer done(io, Clock::time_point::max());
          for (std::size_t i = 0; i < c; ++i) {
            parts[i].latencies_ns.reserve(per);
            asio::co_spawn(
                io, get_loop(client, per, o.keys, static_cast<std::uint32_t>(i + 7), parts[i]),
                [&](std::exception_ptr) {
                  if (--running == 0) done.cancel();
                });
          }
          boost::system::error_code ignored;
          co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
          RunResult total;
          total.seconds = std::chrono::duration<double>(Clock::now() - start).count();
          for (auto& p : parts) {
            total.ops += p.latencies_ns.size();
            total.errors += p.errors;
            total.latencies_ns.insert(total.latencies_ns.end(), p.latencies_ns.begin(),
                                      p.latencies_ns.end());
          }
          print_result(o, c, total);
        }
        client.close();
      },
      [&](std::exception_ptr e) {
        if (e) {
          status = 1;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            std::cerr << "promptcache bench: " << ex.what() << "\n";
          }
        }
      });
  io.run();
  return status;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure the client and the cache (DESIGN.md §7)");
  cmd->add_option("--workload", opts->workload, "Workload to run")
      ->check(CLI::IsMember({"raw_get"}))
      ->capture_default_str();
  cmd->add_option("--redis", opts->redis_url, "Redis URL (default: REDIS_URL and REDIS_*)");
  cmd->add_option("--concurrency", opts->concurrency,
                  "Concurrent coroutines; several values run one after the other")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--ops", opts->ops, "Operations per run")
      ->check(CLI::Range(1, 1 << 30))
      ->capture_default_str();
  cmd->add_option("--value-bytes", opts->value_bytes, "Size of the standard value")
      ->check(CLI::Range(64, 64 << 20))
      ->capture_default_str();
  cmd->add_option("--keys", opts->keys, "Distinct keys")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  cmd->callback([opts, &exit_code] { exit_code = run_raw_get(*opts); });
}

}  // namespace promptcache::app
