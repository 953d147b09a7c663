// How to reach a Redis server and how the client behaves: parsed from REDIS_URL and the
// REDIS_* environment, validated up front (a bad value names its variable).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "promptcache/resp/parser.hpp"

namespace promptcache::net {

// A configuration value that cannot be used. what() names the variable and never holds a
// password.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class Transport { tcp, tls, unix_socket };

struct TlsOptions {
  std::string ca_file;    // REDIS_SSL_CA_CERTS; empty: the system's trust store
  std::string cert_file;  // REDIS_SSL_CERTFILE (client certificate)
  std::string key_file;   // REDIS_SSL_KEYFILE
  bool verify_peer = true;
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

  // redis://[user[:password]@]host[:port][/db], rediss://… (TLS), unix:///path[?db=N].
  // Throws ConfigError.
  [[nodiscard]] static ClientConfig from_url(std::string_view url);

  using Getenv = std::function<std::optional<std::string>(const char*)>;
  // Reads REDIS_URL (or REDIS_HOST/PORT/DB/USERNAME/PASSWORD/SSL), the REDIS_SSL_* files and
  // the timeouts. Unset variables keep their defaults; a set but invalid one throws
  // ConfigError naming it.
  [[nodiscard]] static ClientConfig from_env(const Getenv& getenv = system_getenv);
  static std::optional<std::string> system_getenv(const char* name);

  // "127.0.0.1:6379", "tls://host:6380", "unix:/path": for logs and errors; no credentials.
  [[nodiscard]] std::string address() const;
};

}  // namespace promptcache::net
