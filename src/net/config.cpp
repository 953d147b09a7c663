#include "promptcache/net/config.hpp"

#include "net/env_values.hpp"
#include "promptcache/redact.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace promptcache::net {
namespace {

// Boost.URL takes one host: "scheme://[userinfo@]h1:p1,h2:p2/rest" becomes the URL with only
// the first host, and the list of them all.
struct HostList {
  std::string url;
  std::string_view hosts;  // into the original text
};

HostList split_hosts(std::string_view text) {
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return {std::string(text), {}};
  const auto start = scheme_end + 3;
  auto end = text.find_first_of("/?#", start);
  if (end == std::string_view::npos) end = text.size();
  const std::string_view authority = text.substr(start, end - start);
  const auto at = authority.rfind('@');
  const auto host_start = at == std::string_view::npos ? 0 : at + 1;
  const std::string_view hosts = authority.substr(host_start);
  const auto comma = hosts.find(',');
  if (comma == std::string_view::npos) return {std::string(text), hosts};
  std::string url(text.substr(0, start + host_start));
  url += hosts.substr(0, comma);
  url += text.substr(end);
  return {std::move(url), hosts};
}

// redis+sentinel://[user[:password]@]host[:port][,…]/master[/db] (and rediss+sentinel://).
void apply_sentinel_url(ClientConfig& cfg, const boost::urls::url_view& u, const HostList& split,
                        std::string_view name) {
  cfg.transport = u.scheme() == "rediss+sentinel" ? Transport::tls : Transport::tcp;
  SentinelConfig sentinel;
  sentinel.sentinels = parse_endpoint_list(name, split.hosts, 26379);
  const std::string decoded_path = u.path();  // a decoded copy: the view below is into it
  std::string_view path = decoded_path;
  if (!path.empty()) path.remove_prefix(1);
  const auto slash = path.find('/');
  sentinel.master_name = std::string(path.substr(0, slash));
  if (sentinel.master_name.empty()) {
    throw ConfigError(fmt::format(
        "{}: a Sentinel URL names the master in its path (redis+sentinel://host:26379/mymaster)",
        name));
  }
  if (slash != std::string_view::npos && slash + 1 < path.size()) {
    cfg.db = parse_int<int>(fmt::format("{} (database in the path)", name), path.substr(slash + 1),
                            0, 1 << 20);
  }
  cfg.host.clear();
  cfg.sentinel = std::move(sentinel);
}

// redis://[user[:password]@]host[:port][,host[:port]…][/db] (and rediss://).
void apply_server_url(ClientConfig& cfg, const boost::urls::url_view& u, const HostList& split,
                      std::string_view name) {
  cfg.transport = u.scheme() == "rediss" ? Transport::tls : Transport::tcp;
  if (split.hosts.find(',') != std::string_view::npos) {
    cfg.seeds = parse_endpoint_list(name, split.hosts, 6379);
  }
  cfg.host = u.host_address();
  if (cfg.host.empty()) throw ConfigError(fmt::format("{}: the URL has no host", name));
  std::string path = u.path();
  if (!path.empty() && path.front() != '/') {
    // "host:6379x3" parses as port "6379" and path "x3".
    throw ConfigError(fmt::format("{}: invalid port or database (\"{}\")", name, path));
  }
  if (u.has_port()) cfg.port = parse_int<std::uint16_t>(name, u.port(), 1, 65535);
  if (!path.empty() && path != "/") {
    cfg.db = parse_int<int>(fmt::format("{} (database in the path)", name),
                            std::string_view(path).substr(1), 0, 1 << 20);
  }
}

// The user info and the query parameters of any of the URLs.
void apply_credentials_and_params(ClientConfig& cfg, const boost::urls::url_view& u,
                                  std::string_view name) {
  if (u.has_userinfo()) {
    cfg.username = u.user();
    if (u.has_password()) cfg.password = u.password();
    // "redis://:secret@host" and "redis://secret@host" both mean a password only.
    if (!u.has_password()) std::swap(cfg.username, cfg.password);
  }
  for (auto param : u.params()) {
    if (param.key == "db") {
      cfg.db = parse_int<int>(fmt::format("{} (db parameter)", name), param.value, 0, 1 << 20);
    } else if (param.key == "password") {
      cfg.password = param.value;
    } else if (param.key == "username") {
      cfg.username = param.value;
    } else if (param.key == "sentinel_password" && cfg.sentinel) {
      cfg.sentinel->password = param.value;
    } else if (param.key == "sentinel_username" && cfg.sentinel) {
      cfg.sentinel->username = param.value;
    } else {
      throw ConfigError(fmt::format("{}: unknown parameter \"{}\"", name, param.key));
    }
  }
}

void apply_url(ClientConfig& cfg, std::string_view text, std::string_view name) {
  // Its credentials are secrets from here on, for every message that might quote the URL.
  register_url_secrets(text);
  const HostList split = split_hosts(text);
  auto parsed = boost::urls::parse_uri(split.url);
  if (!parsed) {
    throw ConfigError(fmt::format("{}: not a valid URL ({})", name, parsed.error().message()));
  }
  const boost::urls::url_view u = *parsed;
  const std::string scheme = u.scheme();
  if (scheme == "redis+sentinel" || scheme == "rediss+sentinel") {
    apply_sentinel_url(cfg, u, split, name);
  } else if (scheme == "redis" || scheme == "rediss") {
    apply_server_url(cfg, u, split, name);
  } else if (scheme == "unix") {
    cfg.transport = Transport::unix_socket;
    cfg.unix_path = u.path();
    if (cfg.unix_path.empty()) {
      throw ConfigError(fmt::format("{}: a unix:// URL needs a socket path", name));
    }
  } else {
    throw ConfigError(
        fmt::format("{}: unsupported scheme \"{}\" (expected redis://, rediss://, unix:// or "
                    "redis+sentinel://)",
                    name, scheme));
  }
  apply_credentials_and_params(cfg, u, name);
}

// An IPv6 address in brackets, so that "[::1]:6379" reads unambiguously.
std::string bracketed(const std::string& host) {
  return host.find(':') == std::string::npos ? host : "[" + host + "]";
}

}  // namespace

std::optional<std::string> ClientConfig::system_getenv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

ClientConfig ClientConfig::from_url(std::string_view url) {
  ClientConfig cfg;
  apply_url(cfg, url, "REDIS_URL");
  return cfg;
}

namespace {

// Where the server is: REDIS_URL, or REDIS_SENTINELS with REDIS_SENTINEL_MASTER, or
// REDIS_HOST and REDIS_PORT.
void read_address(ClientConfig& cfg, const EnvReader& env) {
  auto sentinels = env.text("REDIS_SENTINELS");
  auto master = env.text("REDIS_SENTINEL_MASTER");
  if (sentinels.has_value() != master.has_value()) {
    throw ConfigError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER: set both or neither");
  }
  if (const auto url = env.text("REDIS_URL")) {
    apply_url(cfg, *url, "REDIS_URL");
    if (sentinels) {
      throw ConfigError(
          "REDIS_SENTINELS: set either REDIS_URL or REDIS_SENTINELS with REDIS_SENTINEL_MASTER, "
          "not both");
    }
    return;
  }
  if (sentinels) {
    SentinelConfig sentinel;
    sentinel.sentinels = parse_endpoint_list("REDIS_SENTINELS", *sentinels, 26379);
    if (master->empty()) throw ConfigError("REDIS_SENTINEL_MASTER: must not be empty");
    sentinel.master_name = *master;
    cfg.host.clear();
    cfg.sentinel = std::move(sentinel);
  } else {
    if (auto v = env.text("REDIS_HOST")) {
      if (v->empty()) throw ConfigError("REDIS_HOST: must not be empty");
      cfg.host = *v;
    }
    env.integer("REDIS_PORT", cfg.port, 1, 65535);
  }
  // Without a URL (whose scheme says it) TLS is REDIS_SSL's to choose, for a host or sentinels.
  bool tls = false;
  env.flag("REDIS_SSL", tls);
  if (tls) cfg.transport = Transport::tls;
}

// Credentials (a URL's win) and TLS files.
void read_credentials(ClientConfig& cfg, const EnvReader& env) {
  for (const char* secret : {"REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD"}) {
    if (auto v = env.text(secret)) register_secret(*v);
  }
  if (auto v = env.text("REDIS_USERNAME"); v && cfg.username.empty()) cfg.username = *v;
  if (auto v = env.text("REDIS_PASSWORD"); v && cfg.password.empty()) cfg.password = *v;
  if (cfg.sentinel) {
    if (auto v = env.text("REDIS_SENTINEL_USERNAME")) cfg.sentinel->username = *v;
    if (auto v = env.text("REDIS_SENTINEL_PASSWORD")) cfg.sentinel->password = *v;
  }
  if (auto v = env.text("REDIS_SSL_CA_CERTS")) cfg.tls.ca_file = *v;
  if (auto v = env.text("REDIS_SSL_CERTFILE")) cfg.tls.cert_file = *v;
  if (auto v = env.text("REDIS_SSL_KEYFILE")) cfg.tls.key_file = *v;
  if (cfg.tls.cert_file.empty() != cfg.tls.key_file.empty()) {
    throw ConfigError("REDIS_SSL_CERTFILE and REDIS_SSL_KEYFILE: set both or neither");
  }
}

}  // namespace

ClientConfig ClientConfig::from_env(const Getenv& getenv) {
  const EnvReader env(getenv);
  ClientConfig cfg;
  read_address(cfg, env);
  env.integer("REDIS_DB", cfg.db, 0, 1 << 20);
  read_credentials(cfg, env);
  env.integer("REDIS_MAX_CONNECTIONS", cfg.max_connections, 1, 10000);
  env.seconds("REDIS_SOCKET_TIMEOUT", cfg.command_timeout, false);
  env.seconds("REDIS_CONNECT_TIMEOUT", cfg.connect_timeout, false);
  env.flag("REDIS_RETRY_ON_TIMEOUT", cfg.retry_on_timeout);
  env.seconds("REDIS_HEALTH_CHECK_INTERVAL", cfg.health_check_interval, true);
  return cfg;
}

std::string ClientConfig::address() const {
  if (sentinel && host.empty()) return fmt::format("sentinel master {}", sentinel->master_name);
  switch (transport) {
    case Transport::unix_socket:
      return "unix:" + unix_path;
    case Transport::tls:
      return fmt::format("tls://{}:{}", bracketed(host), port);
    case Transport::tcp:
      break;
  }
  return fmt::format("{}:{}", bracketed(host), port);
}

}  // namespace promptcache::net
