// The consistency checker (issue 11), in the manner of a Jepsen checker: serve processes share
// one Redis and one database; each round, clients upsert, delete and read a handful of keys
// through all of them at once (some rounds with Redis restarted or paused midway); then the
// clients stop, the processes are let settle (no pending cache repair), and every key is read
// through every process and compared with the database row. Any difference is a stale answer.
//
// Rounds per test: PROMPTCACHE_CONSISTENCY_ROUNDS (default 6, which CI runs); round length in
// ms: PROMPTCACHE_CONSISTENCY_ROUND_MS (default 600). A longer run is one command away:
//   PROMPTCACHE_CONSISTENCY_ROUNDS=60 build/tests/e2e_tests --gtest_filter='Consistency.*'
// PROMPTCACHE_TEST_BIN runs the checker against another promptcache binary (an older build).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "support/http_client.hpp"
#include "support/pg_server.hpp"
#include "support/redis_server.hpp"
#include "support/serve_process.hpp"

namespace promptcache {
namespace {

namespace json = boost::json;
using testing::EnvVars;
using testing::HttpClient;
using testing::PgServer;
using testing::RedisServer;
using testing::ServeProcess;
using namespace std::chrono_literals;

constexpr int keys = 6;
constexpr int clients = 16;
const std::string user = "checker";

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

enum class Db { sqlite, postgres };
enum class Disruption { none, redis_restart, redis_pause };

struct Mode {
  int processes = 2;
  bool near = false;
  Db db = Db::sqlite;
};

// The database's state of a key, read behind the service's back: the row's "n" (the write that
// made it), or nullopt when there is no row.
class Truth {
 public:
  virtual ~Truth() = default;
  virtual std::optional<std::int64_t> n(const std::string& hash) = 0;
};

std::optional<std::int64_t> n_of(std::string_view quality_scores) {
  return json::parse(quality_scores).at("n").to_number<std::int64_t>();
}

class SqliteTruth final : public Truth {
 public:
  explicit SqliteTruth(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot open " + path);
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~SqliteTruth() override { sqlite3_close(db_); }
  std::optional<std::int64_t> n(const std::string& hash) override {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db_,
                       "SELECT quality_scores FROM prompt_analysis_results WHERE prompt_hash = ?1 "
                       "AND user_id = ?2 AND analysis_type = 'default'",
                       -1, &s, nullptr);
    sqlite3_bind_text(s, 1, hash.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, user.c_str(), -1, SQLITE_TRANSIENT);
    std::optional<std::int64_t> out;
    if (sqlite3_step(s) == SQLITE_ROW) {
      out = n_of(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
    }
    sqlite3_finalize(s);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

class PgTruth final : public Truth {
 public:
  explicit PgTruth(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) throw std::runtime_error("cannot connect to PostgreSQL");
  }
  ~PgTruth() override { PQfinish(conn_); }
  std::optional<std::int64_t> n(const std::string& hash) override {
    const char* params[] = {hash.c_str(), user.c_str()};
    PGresult* r = PQexecParams(conn_,
                               "SELECT quality_scores::text FROM prompt_analysis_results WHERE "
                               "prompt_hash = $1 AND user_id = $2 AND analysis_type = 'default'",
                               2, nullptr, params, nullptr, nullptr, 0);
    std::optional<std::int64_t> out;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) out = n_of(PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
  }

 private:
  PGconn* conn_;
};

class Checker {
 public:
  explicit Checker(Mode mode) {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("promptcache-consistency-{}-{}", ::getpid(), counter_++);
    std::filesystem::create_directories(dir_);
    std::string db_url;
    if (mode.db == Db::postgres) {
      pg_ = std::make_unique<PgServer>();
      db_url = pg_->url();
    } else {
      db_url = "sqlite://" + (dir_ / "truth.db").string();
    }
    EnvVars env{{"REDIS_URL", redis_.url()},
                {"PROMPTCACHE_BREAKER_OPEN_SECONDS", "1"},
                {"PROMPTCACHE_NEAR_CACHE", mode.near ? "on" : "off"}};
    const std::vector<std::string> args{"serve", "--listen", "127.0.0.1:0", "--threads",
                                        "2",     "--db",     db_url};
    for (int i = 0; i < mode.processes; ++i) {
      processes_.push_back(std::make_unique<ServeProcess>(args, env));
    }
    if (mode.db == Db::postgres) {
      truth_ = std::make_unique<PgTruth>(db_url);
    } else {
      truth_ = std::make_unique<SqliteTruth>((dir_ / "truth.db").string());
    }
    // Every key once, for its hash (the server computes it).
    HttpClient c(processes_.front()->port());
    for (int k = 0; k < keys; ++k) {
      const auto res = c.request("POST", "/v1/analyses", body(k, next_n_++));
      EXPECT_EQ(res.status, 201u) << res.body;
      hashes_.push_back(std::string(json::parse(res.body).at("prompt_hash").as_string()));
    }
  }
  ~Checker() {
    processes_.clear();
    std::filesystem::remove_all(dir_);
  }

  // One round of concurrent traffic; `disruption` happens halfway.
  void round(Disruption disruption, std::chrono::milliseconds length) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([this, t, &stop] { traffic(t, stop); });
    }
    std::this_thread::sleep_for(length / 2);
    if (disruption == Disruption::redis_restart) {
      redis_.stop();
      std::this_thread::sleep_for(50ms);
      redis_.start();
    } else if (disruption == Disruption::redis_pause) {
      redis_.freeze();
      std::this_thread::sleep_for(400ms);
      redis_.thaw();
    }
    std::this_thread::sleep_for(length / 2);
    stop = true;
    for (auto& th : threads) th.join();
  }

  // Waits until no process has a cache repair pending, then compares every key through every
  // process with the database; the stale answers.
  int check(int round_no) {
    settle();
    int stale = 0;
    for (int k = 0; k < keys; ++k) {
      const auto expected = truth_->n(hashes_[static_cast<std::size_t>(k)]);
      for (std::size_t p = 0; p < processes_.size(); ++p) {
        HttpClient c(processes_[p]->port());
        const auto res = c.request("GET", read_target(k));
        std::optional<std::int64_t> got;
        if (res.status == 200) {
          got = json::parse(res.body).at("quality_scores").at("n").to_number<std::int64_t>();
        } else if (res.status != 404) {
          ADD_FAILURE() << "round " << round_no << ": status " << res.status << " " << res.body;
          continue;
        }
        if (got != expected) {
          ++stale;
          ADD_FAILURE() << fmt::format(
              "round {}: key {} through process {} answered {} (X-Cache: {}), the database "
              "holds {}",
              round_no, k, p, got ? std::to_string(*got) : "not found", res.header("X-Cache"),
              expected ? std::to_string(*expected) : "no row");
        }
      }
    }
    return stale;
  }

  [[nodiscard]] std::uint64_t errors() const { return errors_.load(); }
  [[nodiscard]] std::uint64_t operations() const { return operations_.load(); }

 private:
  std::string body(int k, std::int64_t n) const {
    return fmt::format(
        R"({{"prompt":"consistency key {}","user_id":"{}","quality_scores":{{"n":{}}},)"
        R"("improvement_suggestions":[]}})",
        k, user, n);
  }
  std::string read_target(int k) const {
    return fmt::format("/v1/analyses/{}?user_id={}", hashes_[static_cast<std::size_t>(k)], user);
  }

  void traffic(int t, const std::atomic<bool>& stop) {
    std::mt19937 rng(static_cast<unsigned>(t) * 7919u + static_cast<unsigned>(counter_));
    std::vector<std::unique_ptr<HttpClient>> conns;
    for (const auto& p : processes_) conns.push_back(std::make_unique<HttpClient>(p->port()));
    while (!stop) {
      const int k = static_cast<int>(rng() % keys);
      auto& c = *conns[rng() % conns.size()];
      const unsigned op = rng() % 100;
      try {
        testing::HttpResponse res;
        if (op < 40) {
          res = c.request("POST", "/v1/analyses", body(k, next_n_++));
          if (res.status != 201) ++errors_;
        } else if (op < 55) {
          res = c.request("DELETE", read_target(k));
          if (res.status != 200 && res.status != 404) ++errors_;
        } else {
          res = c.request("GET", read_target(k));
          if (res.status != 200 && res.status != 404) ++errors_;
        }
      } catch (const std::exception&) {
        ++errors_;
      }
      ++operations_;
    }
  }

  // Quiet: every process has repaired what it could not write (none pending), and a push has
  // had time to cross.
  void settle() {
    for (int attempt = 0; attempt < 300; ++attempt) {
      bool pending = false;
      for (const auto& p : processes_) {
        HttpClient c(p->port());
        const auto stats = json::parse(c.request("GET", "/v1/stats").body);
        pending = pending || stats.at("pending_invalidations").to_number<std::uint64_t>() > 0;
      }
      if (!pending) break;
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(300ms);
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  RedisServer redis_;
  std::unique_ptr<PgServer> pg_;
  std::vector<std::unique_ptr<ServeProcess>> processes_;
  std::unique_ptr<Truth> truth_;
  std::vector<std::string> hashes_;
  std::atomic<std::int64_t> next_n_{1};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<std::uint64_t> operations_{0};
};

void run_checker(Mode mode) {
  const int rounds = env_int("PROMPTCACHE_CONSISTENCY_ROUNDS", 6);
  const auto length = std::chrono::milliseconds(env_int("PROMPTCACHE_CONSISTENCY_ROUND_MS", 600));
  Checker checker(mode);
  int stale = 0;
  int stale_rounds = 0;
  for (int r = 0; r < rounds; ++r) {
    const auto disruption = r % 3 == 1   ? Disruption::redis_restart
                            : r % 3 == 2 ? Disruption::redis_pause
                                         : Disruption::none;
    checker.round(disruption, length);
    const int s = checker.check(r);
    stale += s;
    stale_rounds += s > 0 ? 1 : 0;
  }
  std::cout << fmt::format(
      "consistency: {} processes, near tier {}, {}: {} rounds, {} operations, {} errors, {} "
      "stale answers in {} rounds\n",
      mode.processes, mode.near ? "on" : "off", mode.db == Db::sqlite ? "SQLite" : "PostgreSQL",
      rounds, checker.operations(), checker.errors(), stale, stale_rounds);
  EXPECT_EQ(stale, 0);
  // Cache trouble (a restart, a pause) never fails a request: the database answers.
  EXPECT_EQ(checker.errors(), 0u);
}

TEST(Consistency, two_processes_on_sqlite_near_tier_off_serve_no_stale_answer) {
  run_checker(Mode{2, false, Db::sqlite});
}

TEST(Consistency, two_processes_on_sqlite_near_tier_on_serve_no_stale_answer) {
  run_checker(Mode{2, true, Db::sqlite});
}

TEST(Consistency, three_processes_on_sqlite_serve_no_stale_answer) {
  run_checker(Mode{3, true, Db::sqlite});
}

TEST(Consistency, two_processes_on_postgresql_near_tier_off_serve_no_stale_answer) {
  run_checker(Mode{2, false, Db::postgres});
}

TEST(Consistency, two_processes_on_postgresql_near_tier_on_serve_no_stale_answer) {
  run_checker(Mode{2, true, Db::postgres});
}

}  // namespace
}  // namespace promptcache
