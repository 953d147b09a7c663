// What `promptcache bench`'s workloads share (bench.cpp: the options, the standard value, the
// measuring loop, the plain workloads) and the workloads with a shape of their own
// (bench_workloads.cpp: an outage, the near tier, a stampede, a user's invalidation).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "promptcache/cache/service.hpp"
#include "promptcache/store/store.hpp"

namespace promptcache::app::bench {

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

// One call of a workload: the units of work it did (0 on failure).
using Step = std::function<boost::asio::awaitable<std::size_t>(std::minstd_rand&)>;

// The standard value (docs/benchmarks.md): a prompt-analysis result of `bytes` bytes of JSON.
[[nodiscard]] std::string standard_value(std::size_t bytes);
[[nodiscard]] std::string raw_key(std::size_t i);
[[nodiscard]] std::string prompt_hash(std::size_t i);
// Runs `concurrency` coroutines sharing `calls` calls of `step`; prints one JSON line.
boost::asio::awaitable<void> measure(boost::asio::io_context& io, const BenchOptions& o,
                                     std::size_t concurrency, std::size_t calls, const Step& step);

// The workloads of bench_workloads.cpp; each returns the command's exit status.
boost::asio::awaitable<int> run_outage(boost::asio::io_context& io, const BenchOptions& o,
                                       std::shared_ptr<store::Store> store);
boost::asio::awaitable<int> run_near(boost::asio::io_context& io, const BenchOptions& o,
                                     cache::PromptCacheService& service,
                                     const std::string& value_text);
boost::asio::awaitable<int> run_stampede(boost::asio::io_context& io, const BenchOptions& o,
                                         cache::PromptCacheService& service);
boost::asio::awaitable<int> run_invalidate(const BenchOptions& o,
                                           cache::PromptCacheService& service,
                                           const std::string& value_text);

}  // namespace promptcache::app::bench
