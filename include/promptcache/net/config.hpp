// How to reach a Redis server and how the client behaves: parsed from REDIS_URL and the
// REDIS_* environment, validated up front (a bad value names its variable).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "promptcache/error.hpp"
#include "promptcache/net/endpoint.hpp"
#include "promptcache/resp/parser.hpp"

namespace promptcache::net {

// A configuration value that cannot be used (promptcache/error.hpp).
using ConfigError = promptcache::ConfigError;

enum class Transport { tcp, tls, unix_socket };

struct TlsOptions {
  std::string ca_file;    // REDIS_SSL_CA_CERTS; empty: the system's trust store
  std::string cert_file;  // REDIS_SSL_CERTFILE (client certificate)
  std::string key_file;   // REDIS_SSL_KEYFILE
  bool verify_peer = true;
};

// A master found through Redis Sentinel: before every connect the sentinels are asked for
// `master_name`'s address, and the server found there must answer ROLE as a master.
struct SentinelConfig {
  std::vector<Endpoint> sentinels;
  std::string master_name;
  std::string username;  // the sentinels' own credentials (REDIS_SENTINEL_USERNAME/_PASSWORD)
  std::string password;
};

// Hears what server-assisted client-side caching (CLIENT TRACKING, RESP3) says: a near cache
// implements it. Called on the connection's executor; must not block.
class TrackingListener {
 public:
  virtual ~TrackingListener() = default;
  // This key changed (or was evicted from the server's tracking table); once per key of a push.
  virtual void invalidated(std::string_view key) = 0;
  // Every key changed (FLUSHALL / FLUSHDB): a null invalidation.
  virtual void invalidated_all() = 0;
  // A connection that carried invalidations dropped: what it tracked is no longer covered.
  virtual void link_down() = 0;
  // A connection could not turn tracking on (a RESP2-only server, or the server refused).
  virtual void tracking_refused(std::string_view why) = 0;
};

// CLIENT TRACKING ON after every handshake, on the same RESP3 connection (no redirect).
struct TrackingConfig {
  std::shared_ptr<TrackingListener> listener;  // null: no tracking
  bool bcast = false;                 // invalidations for every key under `prefixes`, read or not
  std::vector<std::string> prefixes;  // BCAST PREFIX …
};

struct ClientConfig {
  Transport transport = Transport::tcp;
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string unix_path;
  TlsOptions tls;
  std::string username;
  std::string password;
  int db = 0;
  std::string client_name = "promptcache";
  // A Redis Cluster replica that may serve reads: READONLY after the handshake.
  bool readonly = false;
  // Server-assisted client-side caching (see TrackingConfig).
  TrackingConfig tracking;
  // Set: host and port are not configured but asked of these sentinels (and empty until then).
  std::optional<SentinelConfig> sentinel;
  // Several hosts in REDIS_URL ("redis://h1:7000,h2:7000"): a Redis Cluster's seed nodes; host
  // and port are the first of them.
  std::vector<Endpoint> seeds;

  std::chrono::milliseconds connect_timeout{5000};         // REDIS_CONNECT_TIMEOUT (seconds)
  std::chrono::milliseconds command_timeout{5000};         // REDIS_SOCKET_TIMEOUT (seconds)
  std::chrono::milliseconds health_check_interval{30000};  // 0 disables
  bool retry_on_timeout = true;
  std::size_t max_connections = 10;

  // Past these a command fails with error::overloaded at once.
  std::size_t max_in_flight = 65536;
  std::size_t max_in_flight_bytes = 256u * 1024 * 1024;

  std::chrono::milliseconds reconnect_min_delay{50};
  std::chrono::milliseconds reconnect_max_delay{2000};
  resp::ParserLimits limits;

  // redis://[user[:password]@]host[:port][,host[:port]…][/db], rediss://… (TLS),
  // unix:///path[?db=N], redis+sentinel://[user[:password]@]host[:port][,…]/master[/db] (and
  // rediss+sentinel://; sentinels default to port 26379). Throws ConfigError.
  [[nodiscard]] static ClientConfig from_url(std::string_view url);

  using Getenv = std::function<std::optional<std::string>(const char*)>;
  // Reads REDIS_URL (or REDIS_SENTINELS with REDIS_SENTINEL_MASTER, or
  // REDIS_HOST/PORT/DB/USERNAME/PASSWORD/SSL), REDIS_SENTINEL_USERNAME/_PASSWORD, the
  // REDIS_SSL_* files and the timeouts. Unset variables keep their defaults; a set but invalid one
  // throws ConfigError naming it.
  [[nodiscard]] static ClientConfig from_env(const Getenv& getenv = system_getenv);
  static std::optional<std::string> system_getenv(const char* name);

  // "127.0.0.1:6379", "tls://host:6380", "unix:/path", "sentinel master mymaster" (until it
  // is found): for logs and errors; no credentials.
  [[nodiscard]] std::string address() const;
};

}  // namespace promptcache::net
