#include "serve.hpp"

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>

#include "env_default.hpp"
#include "promptcache/cache/config.hpp"
#include "promptcache/cache/service.hpp"
#include "promptcache/db/database.hpp"
#include "promptcache/net/config.hpp"
#include "promptcache/redact.hpp"
#include "promptcache/telemetry/otlp.hpp"
#include "server/api.hpp"
#include "server/http_server.hpp"

namespace promptcache::app {

namespace asio = boost::asio;

namespace {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string db = "sqlite://data/promptcache.db";
  std::string api_key;
  std::size_t threads = 0;  // 0: one per core
  std::size_t db_connections = 4;
  std::size_t body_limit = 1024 * 1024;
  unsigned shutdown_grace = 10;
  // Per request and cache operation (docs/consistency.md): past it, the database answers.
  unsigned cache_read_budget_ms = 100;
  unsigned cache_write_budget_ms = 250;
  unsigned max_connections = 0;  // 0: derived from the descriptor limit
  unsigned idle_timeout_ms = 5000;
};

// host:port, [v6]:port, or :port (all interfaces).
std::pair<std::string, std::uint16_t> split_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("expected HOST:PORT");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  const std::string port_text = listen.substr(colon + 1);
  std::size_t used = 0;
  unsigned long port = 0;
  try {
    port = std::stoul(port_text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != port_text.size() || port > 65535) {
    throw std::invalid_argument(fmt::format("{:?} is not a port", port_text));
  }
  return {host, static_cast<std::uint16_t>(port)};
}

bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

// A reason serve cannot start, for its one error line.
struct StartupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

server::HttpOptions http_options(const ServeOptions& o) {
  server::HttpOptions http;
  try {
    std::tie(http.host, http.port) = split_listen(o.listen);
  } catch (const std::invalid_argument& e) {
    throw StartupError(fmt::format("--listen {:?}: {}", o.listen, e.what()));
  }
  if (o.api_key.empty() && !is_loopback(http.host)) {
    throw StartupError(fmt::format(
        "refusing to listen on {} without an API key: anyone who can reach it could read and "
        "change every analysis. Set --api-key (or PROMPTCACHE_API_KEY), or listen on 127.0.0.1.",
        http.host));
  }
  http.threads = o.threads != 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  http.body_limit = o.body_limit;
  http.shutdown_grace = std::chrono::seconds(o.shutdown_grace);
  http.max_connections = o.max_connections;
  http.idle_timeout = std::chrono::milliseconds(o.idle_timeout_ms);
  return http;
}

cache::CacheConfig serve_cache_config() {
  cache::CacheConfig config;
  try {
    config = cache::CacheConfig::from_env();
  } catch (const net::ConfigError& e) {
    throw StartupError(e.what());
  }
  // serve fences its fills with the lease (a Redis restart voids a fill in flight) and makes
  // one database read per key across processes, unless PROMPTCACHE_LEASE_MS says otherwise.
  if (std::getenv("PROMPTCACHE_LEASE_MS") == nullptr) {
    config.service.lease = std::chrono::milliseconds(2000);
  }
  return config;
}

std::unique_ptr<db::Database> open_serve_database(const ServeOptions& o) {
  try {
    return db::open_database(o.db, o.db_connections);
  } catch (const db::DbError& e) {
    throw StartupError(db::open_failure(o.db, e));
  }
}

server::ApiOptions api_options(const ServeOptions& o) {
  server::ApiOptions options;
  options.api_key = o.api_key;
  options.db_threads = o.db_connections;
  options.cache_read_budget = std::chrono::milliseconds(o.cache_read_budget_ms);
  options.cache_write_budget = std::chrono::milliseconds(o.cache_write_budget_ms);
  return options;
}

// Listens, serves until SIGINT or SIGTERM, then finishes the requests in flight.
int run_server(const ServeOptions& o, const server::HttpOptions& http,
               const cache::CacheConfig& cache_config, db::Database& database) {
  server::Api* api_ptr = nullptr;  // set below, before the server serves
  server::HttpServer server(
      http,
      [&api_ptr](server::Request& req, const server::Peer& peer) {
        return api_ptr->handle(req, peer);
      },
      [](unsigned status, std::string_view message) { return server::Api::error(status, message); },
      [&api_ptr](const server::Request::header_type& h) { return api_ptr->admit(h); });
  std::unique_ptr<cache::PromptCacheService> service;
  std::shared_ptr<telemetry::OtlpTracer> tracer;
  try {
    server.listen();
    tracer = telemetry::make_otlp_tracer(cache_config.tracing);
    // One tracer for the requests and the cache: a cache operation's span is a child of its
    // request's (Api calls the service through traced()).
    service = cache::PromptCacheService::from_config(cache_config, server.executors(), tracer);
  } catch (const std::system_error& e) {
    throw StartupError(e.what());
  } catch (const net::ConfigError& e) {
    throw StartupError(e.what());
  }
  server::ApiOptions options = api_options(o);
  options.tracer = tracer;
  server::Api api(*service, database, std::move(options));
  api_ptr = &api;
  api.start_invalidation_retry(server.executors().front());

  asio::signal_set signals(server.executors().front(), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {} received: finishing the requests in flight, then stopping", signal);
    server.stop();
  });
  const std::string cache_desc =
      cache_config.redis ? fmt::format("redis {}", cache_config.redis->address()) : "in-process";
  spdlog::info(
      "promptcache serving on http://{}:{} threads={} max_connections={} cache=\"{}\" "
      "database={} ({})",
      http.host, server.port(), http.threads, server.max_connections(), cache_desc, database.kind(),
      db::redact_url(o.db));
  spdlog::info("{}", cache_config.tracing.describe());
  std::cout << fmt::format("listening on http://{}:{}", http.host, server.port()) << std::endl;
  spdlog::flush_every(std::chrono::seconds(1));  // the buffered access log
  server.run();
  signals.cancel();
  service->close();
  // What the requests traced is sent before the process ends (within OTEL_BSP_EXPORT_TIMEOUT).
  if (tracer) tracer->shutdown(cache_config.tracing.export_timeout);
  if (auto access = spdlog::get("access")) access->flush();
  spdlog::info("promptcache stopped");
  return 0;
}

int serve(const ServeOptions& o) {
  try {
    const server::HttpOptions http = http_options(o);
    const cache::CacheConfig cache_config = serve_cache_config();
    const std::unique_ptr<db::Database> database = open_serve_database(o);
    return run_server(o, http, cache_config, *database);
  } catch (const StartupError& e) {
    std::cerr << "promptcache serve: " << redact(e.what()) << "\n";
    return 1;
  }
}

}  // namespace

namespace {

// The values serve also takes from the environment; a flag given wins.
struct EnvNumbers {
  std::string read_budget = env_or("PROMPTCACHE_CACHE_READ_BUDGET_MS", "");
  std::string write_budget = env_or("PROMPTCACHE_CACHE_WRITE_BUDGET_MS", "");
  std::string max_connections = env_or("PROMPTCACHE_MAX_CONNECTIONS", "");
  std::string idle_timeout = env_or("PROMPTCACHE_IDLE_TIMEOUT_MS", "");
};

// Applies the variables whose flag was not given; false (said on stderr) for a bad value.
bool apply_env_numbers(ServeOptions& o, const CLI::App& cmd, const EnvNumbers& env) {
  for (const auto& [flag, name, value, target, most, unit] :
       {std::tuple{"--cache-read-budget-ms", "PROMPTCACHE_CACHE_READ_BUDGET_MS", env.read_budget,
                   &o.cache_read_budget_ms, 60000u, "milliseconds"},
        std::tuple{"--cache-write-budget-ms", "PROMPTCACHE_CACHE_WRITE_BUDGET_MS", env.write_budget,
                   &o.cache_write_budget_ms, 60000u, "milliseconds"},
        std::tuple{"--max-connections", "PROMPTCACHE_MAX_CONNECTIONS", env.max_connections,
                   &o.max_connections, 1000000u, "connections"},
        std::tuple{"--idle-timeout-ms", "PROMPTCACHE_IDLE_TIMEOUT_MS", env.idle_timeout,
                   &o.idle_timeout_ms, 3600000u, "milliseconds"}}) {
    if (value.empty() || cmd.count(flag) > 0) continue;
    unsigned n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || end != value.data() + value.size() || n < 1 || n > most) {
      std::cerr << fmt::format("promptcache serve: {}={:?}: expected {}, 1 to {}\n", name, value,
                               unit, most);
      return false;
    }
    *target = n;
  }
  return true;
}

// The budgets and limits (the listening address, the database and the key are added by
// add_serve_command, with their defaults from the environment).
void add_limit_options(CLI::App& cmd, ServeOptions& o) {
  cmd.add_option("--threads", o.threads, "Event-loop threads (default: one per core)");
  cmd.add_option("--db-connections", o.db_connections, "Database connections and threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd.add_option("--body-limit", o.body_limit, "Largest request body, bytes")
      ->capture_default_str()
      ->check(CLI::Range(1024, 64 * 1024 * 1024));
  cmd.add_option("--shutdown-grace", o.shutdown_grace,
                 "Seconds to finish requests in flight at SIGTERM/SIGINT")
      ->capture_default_str();
  cmd.add_option("--cache-read-budget-ms", o.cache_read_budget_ms,
                 "Longest wait for a cache read (and lease) per request before the database "
                 "answers (env PROMPTCACHE_CACHE_READ_BUDGET_MS)")
      ->capture_default_str()
      ->check(CLI::Range(1, 60000));
  cmd.add_option("--cache-write-budget-ms", o.cache_write_budget_ms,
                 "Longest wait for a cache write or fill per request; a write that fails is "
                 "repaired later (env PROMPTCACHE_CACHE_WRITE_BUDGET_MS)")
      ->capture_default_str()
      ->check(CLI::Range(1, 60000));
  cmd.add_option("--max-connections", o.max_connections,
                 "Open connections at most; beyond, the longest-idle one is closed, or the new "
                 "one answered 503 (env PROMPTCACHE_MAX_CONNECTIONS; default: from the "
                 "descriptor limit)")
      ->default_str(std::to_string(server::default_max_connections()))
      ->check(CLI::Range(1, 1000000));
  cmd.add_option("--idle-timeout-ms", o.idle_timeout_ms,
                 "Longest wait for a request's first byte on an open connection "
                 "(env PROMPTCACHE_IDLE_TIMEOUT_MS)")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600000));
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ServeOptions>();
  const std::string builtin_listen = o->listen;
  const std::string builtin_db = o->db;
  o->listen = env_or("PROMPTCACHE_LISTEN", o->listen);
  o->db = env_or("PROMPTCACHE_DATABASE_URL", o->db);
  o->api_key = env_or("PROMPTCACHE_API_KEY", "");
  register_secret(o->api_key);
  const EnvNumbers env;
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve the prompt-analysis HTTP API: the database behind, the cache in front");
  cmd->add_option("--listen", o->listen, "HOST:PORT to listen on (env PROMPTCACHE_LISTEN)")
      ->default_str(default_text(builtin_listen, "PROMPTCACHE_LISTEN", Shown::plain));
  cmd->add_option("--db", o->db,
                  "sqlite:///path/file.db or postgresql://user:pass@host:port/db "
                  "(env PROMPTCACHE_DATABASE_URL)")
      ->default_str(default_text(builtin_db, "PROMPTCACHE_DATABASE_URL", Shown::url));
  cmd->add_option("--api-key", o->api_key,
                  "Require 'Authorization: Bearer KEY' (env PROMPTCACHE_API_KEY, never shown); "
                  "needed to listen beyond loopback")
      ->each([](const std::string& key) { register_secret(key); });
  add_limit_options(*cmd, *o);
  cmd->callback(
      [o, cmd, env, &exit_code] { exit_code = apply_env_numbers(*o, *cmd, env) ? serve(*o) : 1; });
}

}  // namespace promptcache::app
