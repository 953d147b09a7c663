// Near-cache coherence across processes (issue 6): two `promptcache serve` processes, each with
// its near tier on, share one Redis and one SQLite file. A write or deletion through one is seen
// by the other's next read once Redis's push has arrived; a 60 s soak of mixed writes, deletions
// and reads across both counts the stale reads after an invalidation: there must be none.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "support/http_client.hpp"
#include "support/redis_server.hpp"
#include "support/serve_process.hpp"

namespace promptcache {
namespace {

namespace json = boost::json;
using testing::EnvVars;
using testing::HttpClient;
using testing::RedisServer;
using testing::ServeProcess;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A push crosses loopback in well under a millisecond; a read this long after a write returned
// that still sees the old state is stale.
constexpr auto push_bound = 100ms;

struct Pair {
  Pair()
      : dir(std::filesystem::temp_directory_path() /
            fmt::format("promptcache-near-{}", ::getpid())) {
    std::filesystem::create_directories(dir);
    const EnvVars env{{"REDIS_URL", redis.url()}, {"PROMPTCACHE_NEAR_CACHE", "on"}};
    const std::vector<std::string> args{"serve",
                                        "--listen",
                                        "127.0.0.1:0",
                                        "--threads",
                                        "2",
                                        "--db",
                                        "sqlite://" + (dir / "d.db").string()};
    writer = std::make_unique<ServeProcess>(args, env);
    reader = std::make_unique<ServeProcess>(args, env);
    w = std::make_unique<HttpClient>(writer->port());
    r = std::make_unique<HttpClient>(reader->port());
  }
  ~Pair() {
    w.reset();
    r.reset();
    writer.reset();
    reader.reset();
    std::filesystem::remove_all(dir);
  }

  // Upserts prompt `prompt` of user "soak" with `version` through the writer; its hash.
  std::string put(HttpClient& c, const std::string& prompt, int version) {
    const auto res = c.request(
        "POST", "/v1/analyses",
        fmt::format(R"({{"prompt":"{}","user_id":"soak","quality_scores":{{"version":{}}},)"
                    R"("improvement_suggestions":[]}})",
                    prompt, version));
    EXPECT_EQ(res.status, 201u) << res.body;
    return std::string(json::parse(res.body).at("prompt_hash").as_string());
  }
  // The version a read answers (-1: not found).
  static int read(HttpClient& c, const std::string& hash) {
    const auto res = c.request("GET", fmt::format("/v1/analyses/{}?user_id=soak", hash));
    if (res.status == 404) return -1;
    EXPECT_EQ(res.status, 200u) << res.body;
    return static_cast<int>(
        json::parse(res.body).at("quality_scores").at("version").to_number<std::int64_t>());
  }
  static std::uint64_t near_hits(HttpClient& c) {
    const auto stats = json::parse(c.request("GET", "/v1/stats").body);
    return stats.at("client").at("near").at("hits").to_number<std::uint64_t>();
  }

  RedisServer redis;
  std::filesystem::path dir;
  std::unique_ptr<ServeProcess> writer;
  std::unique_ptr<ServeProcess> reader;
  std::unique_ptr<HttpClient> w;
  std::unique_ptr<HttpClient> r;
};

TEST(NearCoherence, a_write_and_a_deletion_in_one_process_reach_the_others_next_read) {
  Pair p;
  const std::string hash = p.put(*p.w, "prompt", 1);
  EXPECT_EQ(Pair::read(*p.r, hash), 1);
  EXPECT_EQ(Pair::read(*p.r, hash), 1);  // from its near tier
  EXPECT_GE(Pair::near_hits(*p.r), 1u);
  const std::string metrics = p.r->request("GET", "/metrics").body;
  const auto at = metrics.find("\npromptcache_cache_near_hits_total ");
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GE(std::stoull(metrics.substr(at + 35)), 1u);
  p.put(*p.w, "prompt", 2);
  std::this_thread::sleep_for(push_bound);
  EXPECT_EQ(Pair::read(*p.r, hash), 2);
  EXPECT_EQ(p.w->request("DELETE", fmt::format("/v1/analyses/{}?user_id=soak", hash)).status, 200u);
  std::this_thread::sleep_for(push_bound);
  EXPECT_EQ(Pair::read(*p.r, hash), -1);
}

TEST(NearCoherence, soak_of_sixty_seconds_has_no_stale_read_after_an_invalidation) {
  Pair p;
  constexpr int keys = 20;
  std::vector<std::string> prompts;
  std::vector<std::string> hashes;
  std::vector<int> version(keys, 0);  // what the writer's last completed call left (-1: deleted)
  std::vector<Clock::time_point> changed(keys, Clock::now());
  for (int k = 0; k < keys; ++k) {
    prompts.push_back(fmt::format("soak-{}", k));
    hashes.push_back(p.put(*p.w, prompts.back(), 0));
  }
  std::minstd_rand rng(7);
  std::uint64_t reads = 0;
  std::uint64_t writes = 0;
  std::uint64_t deletes = 0;
  std::uint64_t early = 0;  // old state read within push_bound of the change: allowed
  std::uint64_t stale = 0;  // old state read later than that: never
  const auto end = Clock::now() + 60s;
  while (Clock::now() < end) {
    const int k = static_cast<int>(rng() % keys);
    const unsigned action = rng() % 10;
    if (action == 0) {  // an invalidation: the writer deletes the row and its cache entry
      const auto res =
          p.w->request("DELETE", fmt::format("/v1/analyses/{}?user_id=soak", hashes[k]));
      ASSERT_TRUE(res.status == 200u || res.status == 404u) << res.body;
      version[k] = -1;
      changed[k] = Clock::now();
      ++deletes;
    } else if (action < 4) {
      const int next = std::max(version[k], 0) + 1;
      p.put(*p.w, prompts[k], next);
      version[k] = next;
      changed[k] = Clock::now();
      ++writes;
    } else {  // reads, mostly through the other process's near tier
      for (HttpClient* c : {p.r.get(), p.r.get(), p.w.get()}) {
        const auto started = Clock::now();
        const int got = Pair::read(*c, hashes[k]);
        ++reads;
        if (got == version[k]) continue;
        const bool in_window = c == p.r.get() && started - changed[k] < push_bound;
        (in_window ? early : stale) += 1;
        if (!in_window) {
          ADD_FAILURE()
              << "stale read of key " << k << ": " << got << " after " << version[k]
              << " was written "
              << std::chrono::duration_cast<std::chrono::milliseconds>(started - changed[k]).count()
              << " ms before";
        }
      }
    }
  }
  const std::uint64_t hits = Pair::near_hits(*p.r);
  std::cout << fmt::format(
                   "soak: {} reads, {} writes, {} deletions; near hits in the reader {}; old "
                   "state within {} ms of a change {}; stale reads after an invalidation {}\n",
                   reads, writes, deletes, hits, push_bound.count(), early, stale)
            << std::flush;
  EXPECT_EQ(stale, 0u);
  EXPECT_GT(hits, reads / 10);  // the reader's near tier did answer
}

}  // namespace
}  // namespace promptcache
