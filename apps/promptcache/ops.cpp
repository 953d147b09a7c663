#include "ops.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include "env_default.hpp"
#include "promptcache/cache/config.hpp"
#include "promptcache/cache/keys.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/db/database.hpp"
#include "promptcache/json_text.hpp"
#include "promptcache/net/client.hpp"
#include "promptcache/redact.hpp"
#include "promptcache/store/factory.hpp"

namespace promptcache::app {

namespace asio = boost::asio;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

// Thrown for the one line an operator reads when a command cannot go on.
struct Failure {
  std::string message;
  int exit_code = 1;
};

struct Common {
  std::string redis_url;  // overrides REDIS_URL
  std::string db = "sqlite://data/promptcache.db";
};

// A one-line progress display on stderr, redrawn at most ten times a second, and only when
// stderr is a terminal (scripts get the final count alone).
class ProgressBar {
 public:
  ProgressBar(std::string what, std::optional<std::uint64_t> total)
      : what_(std::move(what)), total_(total), shown_(isatty(STDERR_FILENO) != 0) {}
  void update(std::uint64_t done) {
    done_ = done;
    const auto now = Clock::now();
    if (!shown_ || now - drawn_ < std::chrono::milliseconds(100)) return;
    drawn_ = now;
    draw();
  }
  void finish() {
    if (!shown_) return;
    draw();
    std::fputc('\n', stderr);
  }

 private:
  void draw() const {
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0;
    if (total_ && *total_ > 0) {
      constexpr int width = 30;
      const double f = std::min(1.0, static_cast<double>(done_) / static_cast<double>(*total_));
      const int filled = static_cast<int>(f * width);
      std::fprintf(stderr, "\r%s [%s%s] %3.0f%% %llu/%llu (%.0f/s)", what_.c_str(),
                   std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - filled), '-').c_str(), f * 100,
                   static_cast<unsigned long long>(done_), static_cast<unsigned long long>(*total_),
                   rate);
    } else {
      std::fprintf(stderr, "\r%s %llu (%.0f/s)", what_.c_str(),
                   static_cast<unsigned long long>(done_), rate);
    }
    std::fflush(stderr);
  }

  std::string what_;
  std::optional<std::uint64_t> total_;
  bool shown_;
  std::uint64_t done_ = 0;
  Clock::time_point start_ = Clock::now();
  Clock::time_point drawn_{};
};

// The cache as serve sees it, on Redis: an operator command against an in-process cache would
// act on an empty cache of its own.
struct Cache {
  std::unique_ptr<cache::PromptCacheService> service;
};

asio::awaitable<Cache> connect_cache(const Common& common) {
  cache::CacheConfig config;
  try {
    config = cache::CacheConfig::from_env();
    if (!common.redis_url.empty()) config.redis = net::ClientConfig::from_url(common.redis_url);
  } catch (const net::ConfigError& e) {
    throw Failure{e.what(), 2};
  }
  if (!common.redis_url.empty()) config.cluster_nodes = config.redis->seeds;  // --redis wins
  if (!config.redis) {
    throw Failure{
        "no Redis configured: set REDIS_URL or --redis (the in-process cache lives inside "
        "`promptcache serve` and cannot be reached from here)",
        2};
  }
  // The same choice as serve's (standalone, Sentinel, or a cluster given or detected), then
  // one clear line if it cannot be reached.
  std::vector<asio::any_io_executor> executors;  // not a braced list: g++ 12 coroutines
  executors.push_back(co_await asio::this_coro::executor);
  std::shared_ptr<store::Store> chosen = store::make_store(config.store_spec(), executors);
  if (co_await chosen->connect()) {
    throw Failure{
        fmt::format("cannot reach Redis at {}: {}", config.redis->address(), chosen->last_error())};
  }
  co_return Cache{std::make_unique<cache::PromptCacheService>(chosen, config.service_options())};
}

// Runs one command's coroutine to its end; its Failure becomes the one line and exit code.
int run(const std::string& name, std::function<asio::awaitable<int>()> body) {
  asio::io_context io(1);
  int status = 1;
  asio::co_spawn(io, body(), [&](std::exception_ptr e, int result) {
    status = result;
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const Failure& f) {
      std::cerr << "promptcache " << name << ": " << redact(f.message) << "\n";
      status = f.exit_code;
    } catch (const cache::CacheError& ex) {
      std::cerr << "promptcache " << name << ": " << redact(ex.what()) << "\n";
      status = 1;
    } catch (const std::exception& ex) {
      std::cerr << "promptcache " << name << ": " << redact(ex.what()) << "\n";
      status = 1;
    }
  });
  io.run();
  return status;
}

void add_common(CLI::App* cmd, Common& c) {
  cmd->add_option("--redis", c.redis_url, "Redis URL (default: REDIS_URL / REDIS_HOST ...)");
}

asio::awaitable<int> print_value(const std::optional<json::value>& v) {
  if (!v) co_return 1;  // a miss: nothing on stdout
  std::cout << json_text(*v) << "\n";
  co_return 0;
}

// `stats` for a terminal: one line per field, nested objects indented.
void print_table(const json::object& o, int indent = 0) {
  for (const auto& [key, value] : o) {
    if (value.is_object()) {
      std::cout << fmt::format("{:{}}{}\n", "", indent, std::string_view(key));
      print_table(value.as_object(), indent + 2);
    } else {
      const std::string text =
          value.is_string() ? std::string(value.as_string()) : json_text(value);
      std::cout << fmt::format("{:{}}{:<{}} {}\n", "", indent, std::string_view(key),
                               std::max(1, 28 - indent), text);
    }
  }
}

// The `get` command: the cached JSON under a key.
void add_get_command(CLI::App& app, const std::shared_ptr<Common>& common, int& exit_code) {
  auto key = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("get", "Print the cached JSON under KEY (exit 1: a miss)");
  cmd->add_option("key", *key, "The cache key")->required();
  add_common(cmd, *common);
  cmd->callback([=, &exit_code] {
    exit_code = run("get", [=]() -> asio::awaitable<int> {
      Cache c = co_await connect_cache(*common);
      auto v = co_await c.service->get(*key);
      co_return co_await print_value(v);
    });
  });
}

// The `get-analysis` command: a cached analysis result.
void add_get_analysis_command(CLI::App& app, const std::shared_ptr<Common>& common,
                              int& exit_code) {
  struct Args {
    std::string hash, user, type = "default";
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("get-analysis", "Print a cached analysis result (exit 1: a miss)");
  cmd->add_option("--prompt-hash", a->hash, "SHA-256 hex of the prompt")->required();
  cmd->add_option("--user", a->user, "User id")->required();
  cmd->add_option("--type", a->type, "Analysis type")->capture_default_str();
  add_common(cmd, *common);
  cmd->callback([=, &exit_code] {
    exit_code = run("get-analysis", [=]() -> asio::awaitable<int> {
      Cache c = co_await connect_cache(*common);
      auto v = co_await c.service->get_analysis_result(a->hash, a->user, a->type);
      co_return co_await print_value(v);
    });
  });
}

// The `set` command: JSON stored under a key.
void add_set_command(CLI::App& app, const std::shared_ptr<Common>& common, int& exit_code) {
  struct Args {
    std::string key, value;
    std::optional<std::int64_t> ttl;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("set", "Store JSON under KEY");
  cmd->add_option("key", a->key, "The cache key")->required();
  cmd->add_option("json", a->value, "The value: JSON text")->required();
  cmd->add_option("--ttl", a->ttl, "Seconds to live (0: no expiry; default: the default TTL)")
      ->check(CLI::NonNegativeNumber);
  add_common(cmd, *common);
  cmd->callback([=, &exit_code] {
    exit_code = run("set", [=]() -> asio::awaitable<int> {
      boost::system::error_code ec;
      (void)json::parse(a->value, ec);
      if (ec) throw Failure{fmt::format("the value is not JSON: {}", ec.message()), 2};
      Cache c = co_await connect_cache(*common);
      const cache::Ttl ttl = a->ttl ? cache::Ttl(std::chrono::seconds(*a->ttl)) : cache::Ttl();
      co_await c.service->set_json(a->key, a->value, ttl);
      std::cout << "OK\n";
      co_return 0;
    });
  });
}

// The `invalidate` command: one user's analyses, or a pattern's keys.
void add_invalidate_command(CLI::App& app, const std::shared_ptr<Common>& common, int& exit_code) {
  struct Args {
    std::string user, pattern;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "invalidate", "Delete one user's cached analyses, or every key matching a pattern");
  auto* user = cmd->add_option("--user", a->user, "User id: that user's analysis entries");
  auto* pattern = cmd->add_option("--pattern", a->pattern, "Redis glob pattern (admin)");
  user->excludes(pattern);
  cmd->require_option(1);
  add_common(cmd, *common);
  cmd->callback([=, &exit_code] {
    exit_code = run("invalidate", [=]() -> asio::awaitable<int> {
      Cache c = co_await connect_cache(*common);
      ProgressBar bar("deleted", std::nullopt);
      const store::Progress progress = [&bar](std::uint64_t n) { bar.update(n); };
      std::uint64_t n = 0;
      if (a->user.empty()) {
        n = co_await c.service->invalidate_pattern(a->pattern, progress);
      } else {
        n = co_await c.service->invalidate_user_analysis_cache(a->user, progress);
      }
      bar.update(n);
      bar.finish();
      std::cout << n << "\n";
      co_return 0;
    });
  });
}

// The `stats` command: the cache's statistics.
void add_stats_command(CLI::App& app, const std::shared_ptr<Common>& common, int& exit_code) {
  auto as_json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("stats", "Cache statistics (a table, or --json)");
  cmd->add_flag("--json", *as_json, "One JSON object, for scripts");
  add_common(cmd, *common);
  cmd->callback([=, &exit_code] {
    exit_code = run("stats", [=]() -> asio::awaitable<int> {
      Cache c = co_await connect_cache(*common);
      const json::object s = co_await c.service->get_cache_stats();
      if (*as_json || isatty(STDOUT_FILENO) == 0) {
        std::cout << json_text(s) << "\n";
      } else {
        print_table(s);
      }
      co_return s.contains("error") ? 1 : 0;
    });
  });
}

// A page of rows as cache entries, each at its row's version: a row changed meanwhile by
// `serve` keeps its newer cache entry. A row that cannot be decoded is reported, counted in
// `skipped` and not cached.
std::vector<cache::PromptCacheService::VersionedEntry> warm_entries(
    const std::vector<db::AnalysisRecord>& rows, std::uint64_t& skipped) {
  std::vector<cache::PromptCacheService::VersionedEntry> entries;
  entries.reserve(rows.size());
  for (const auto& r : rows) {
    if (!r.corrupt.empty()) {
      ++skipped;
      std::cerr << fmt::format(
          "warm: skipped the row with id {} (prompt_hash {}, user_id {:?}, analysis_type {:?}): "
          "{}\n",
          r.id, r.prompt_hash, r.user_id, r.analysis_type, r.corrupt);
      continue;
    }
    entries.push_back({cache::analysis_key(r.prompt_hash, r.user_id, r.analysis_type),
                       json_text(db::to_json(r)), static_cast<std::uint64_t>(r.version)});
  }
  return entries;
}

// The `warm` command: the database's rows loaded into the cache.
void add_warm_command(CLI::App& app, const std::shared_ptr<Common>& common, int& exit_code) {
  struct Args {
    bool from_db = false;
    std::optional<std::string> user;
    std::size_t batch = 1000;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("warm", "Load rows of the database into the cache, pipelined");
  cmd->add_flag("--from-db", a->from_db, "Read the rows from the database (--db)")->required();
  cmd->add_option("--user", a->user, "Only this user's rows");
  cmd->add_option("--db", common->db, "Database URL (env PROMPTCACHE_DATABASE_URL)")
      ->default_str(
          default_text("sqlite://data/promptcache.db", "PROMPTCACHE_DATABASE_URL", Shown::url));
  cmd->add_option("--batch", a->batch, "Rows per pipelined write")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  add_common(cmd, *common);
  cmd->callback([=, &exit_code] {
    exit_code = run("warm", [=]() -> asio::awaitable<int> {
      std::unique_ptr<db::Database> database;
      try {
        database = db::open_database(common->db, 1);
      } catch (const db::DbError& e) {
        throw Failure{db::open_failure(common->db, e)};
      }
      Cache c = co_await connect_cache(*common);
      ProgressBar bar("warmed", database->count(a->user));
      std::uint64_t done = 0;
      std::uint64_t skipped = 0;
      std::int64_t after = 0;
      for (;;) {
        const auto rows = database->page(after, a->batch, a->user);
        if (rows.empty()) break;
        const auto entries = warm_entries(rows, skipped);
        co_await c.service->set_multiple_versioned(entries);
        done += entries.size();
        after = rows.back().id;
        bar.update(done + skipped);
      }
      bar.finish();
      std::cout << done << "\n";
      if (skipped > 0) std::cerr << fmt::format("warm: {} rows skipped\n", skipped);
      co_return skipped > 0 ? 1 : 0;
    });
  });
}

}  // namespace

void add_operator_commands(CLI::App& app, int& exit_code) {
  auto common = std::make_shared<Common>();
  common->db = env_or("PROMPTCACHE_DATABASE_URL", common->db);
  add_get_command(app, common, exit_code);
  add_get_analysis_command(app, common, exit_code);
  add_set_command(app, common, exit_code);
  add_invalidate_command(app, common, exit_code);
  add_stats_command(app, common, exit_code);
  add_warm_command(app, common, exit_code);
}

}  // namespace promptcache::app
