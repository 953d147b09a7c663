// Unit tests for promptcache::net::ClientConfig: REDIS_URL parsing and the REDIS_* environment.
// from_env is always given a fake getenv backed by a std::map; the real environment is never
// read.
#include "promptcache/net/config.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace {

using namespace std::chrono_literals;
using promptcache::net::ClientConfig;
using promptcache::net::ConfigError;
using promptcache::net::Transport;

using Env = std::map<std::string, std::string>;

ClientConfig from_env(const Env& env) {
  return ClientConfig::from_env([&env](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

// Runs `f`, which must throw ConfigError, and returns what() ("" and a failure otherwise).
template <class F>
std::string config_error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than ConfigError: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

std::string env_error(const Env& env) {
  return config_error_of([&] { (void)from_env(env); });
}

std::string url_error(std::string_view url) {
  return config_error_of([&] { (void)ClientConfig::from_url(url); });
}

// Asserts that from_env(env) throws ConfigError and that what() names `variable`.
void expect_env_error_names(const Env& env, std::string_view variable) {
  const std::string what = env_error(env);
  EXPECT_NE(what.find(variable), std::string::npos)
      << "error \"" << what << "\" does not name " << variable;
}

// ---------------------------------------------------------------------------------------------
// from_url

TEST(ConfigFromUrl, redis_url_sets_host_port_and_db_from_path) {
  const ClientConfig c = ClientConfig::from_url("redis://cache.example.com:6380/4");
  EXPECT_EQ(c.transport, Transport::tcp);
  EXPECT_EQ(c.host, "cache.example.com");
  EXPECT_EQ(c.port, 6380);
  EXPECT_EQ(c.db, 4);
  EXPECT_TRUE(c.username.empty());
  EXPECT_TRUE(c.password.empty());
}

TEST(ConfigFromUrl, redis_url_without_port_or_path_keeps_default_port_and_db_zero) {
  const ClientConfig c = ClientConfig::from_url("redis://cache");
  EXPECT_EQ(c.host, "cache");
  EXPECT_EQ(c.port, 6379);
  EXPECT_EQ(c.db, 0);
}

TEST(ConfigFromUrl, trailing_slash_means_db_zero) {
  const ClientConfig c = ClientConfig::from_url("redis://cache:7000/");
  EXPECT_EQ(c.port, 7000);
  EXPECT_EQ(c.db, 0);
}

TEST(ConfigFromUrl, rediss_scheme_selects_tls_transport) {
  const ClientConfig c = ClientConfig::from_url("rediss://secure.example.com:6380/1");
  EXPECT_EQ(c.transport, Transport::tls);
  EXPECT_EQ(c.host, "secure.example.com");
  EXPECT_EQ(c.port, 6380);
  EXPECT_EQ(c.db, 1);
}

TEST(ConfigFromUrl, unix_url_sets_socket_path_and_db_query_parameter) {
  const ClientConfig c = ClientConfig::from_url("unix:///var/run/redis/redis.sock?db=3");
  EXPECT_EQ(c.transport, Transport::unix_socket);
  EXPECT_EQ(c.unix_path, "/var/run/redis/redis.sock");
  EXPECT_EQ(c.db, 3);
}

TEST(ConfigFromUrl, db_query_parameter_works_on_redis_url_too) {
  const ClientConfig c = ClientConfig::from_url("redis://h?db=7");
  EXPECT_EQ(c.db, 7);
}

TEST(ConfigFromUrl, user_and_password_are_taken_from_userinfo) {
  const ClientConfig c = ClientConfig::from_url("redis://alice:s3cret@h:6379/0");
  EXPECT_EQ(c.username, "alice");
  EXPECT_EQ(c.password, "s3cret");
  EXPECT_EQ(c.host, "h");
}

TEST(ConfigFromUrl, empty_user_with_password_is_password_only) {
  const ClientConfig c = ClientConfig::from_url("redis://:secret@h");
  EXPECT_EQ(c.username, "");
  EXPECT_EQ(c.password, "secret");
  EXPECT_EQ(c.host, "h");
}

TEST(ConfigFromUrl, lone_userinfo_without_colon_is_a_password) {
  const ClientConfig c = ClientConfig::from_url("redis://secret@h");
  EXPECT_EQ(c.username, "");
  EXPECT_EQ(c.password, "secret");
  EXPECT_EQ(c.host, "h");
}

TEST(ConfigFromUrl, percent_encoded_password_is_decoded) {
  const ClientConfig c = ClientConfig::from_url("redis://bob:p%40ss%3Aw%2Frd%25@h");
  EXPECT_EQ(c.username, "bob");
  EXPECT_EQ(c.password, "p@ss:w/rd%");
}

TEST(ConfigFromUrl, percent_encoded_password_only_form_is_decoded) {
  const ClientConfig c = ClientConfig::from_url("redis://p%40ss@h");
  EXPECT_EQ(c.username, "");
  EXPECT_EQ(c.password, "p@ss");
}

TEST(ConfigFromUrl, username_and_password_query_parameters_are_accepted) {
  const ClientConfig c = ClientConfig::from_url("redis://h?username=carol&password=pw");
  EXPECT_EQ(c.username, "carol");
  EXPECT_EQ(c.password, "pw");
}

TEST(ConfigFromUrl, ipv6_literal_host_is_unbracketed_and_port_parsed) {
  const ClientConfig c = ClientConfig::from_url("redis://[::1]:6380");
  EXPECT_EQ(c.transport, Transport::tcp);
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.port, 6380);
}

TEST(ConfigFromUrl, untouched_fields_keep_their_defaults) {
  const ClientConfig c = ClientConfig::from_url("redis://h");
  EXPECT_EQ(c.connect_timeout, 5000ms);
  EXPECT_EQ(c.command_timeout, 5000ms);
  EXPECT_EQ(c.health_check_interval, 30000ms);
  EXPECT_TRUE(c.retry_on_timeout);
  EXPECT_EQ(c.max_connections, 10u);
}

// ---------------------------------------------------------------------------------------------
// from_url errors

TEST(ConfigFromUrl, http_scheme_is_rejected_naming_redis_url) {
  EXPECT_NE(url_error("http://h:6379").find("REDIS_URL"), std::string::npos);
}

TEST(ConfigFromUrl, url_without_host_is_rejected) {
  EXPECT_NE(url_error("redis://").find("REDIS_URL"), std::string::npos);
  EXPECT_NE(url_error("redis://:6379/0").find("REDIS_URL"), std::string::npos);
}

TEST(ConfigFromUrl, non_numeric_port_is_rejected) {
  EXPECT_NE(url_error("redis://h:notaport").find("REDIS_URL"), std::string::npos);
}

TEST(ConfigFromUrl, port_with_trailing_garbage_is_rejected) {
  // Not a port followed by a database: the path must start with '/'.
  for (const char* url : {"redis://h:6379x3", "redis://h:12a5", "redis://h:6379x"}) {
    SCOPED_TRACE(url);
    EXPECT_NE(url_error(url).find("REDIS_URL"), std::string::npos);
  }
}

TEST(ConfigFromUrl, out_of_range_port_is_rejected) {
  EXPECT_NE(url_error("redis://h:0").find("REDIS_URL"), std::string::npos);
  EXPECT_NE(url_error("redis://h:65536").find("REDIS_URL"), std::string::npos);
}

TEST(ConfigFromUrl, non_numeric_db_path_is_rejected) {
  EXPECT_NE(url_error("redis://h/abc").find("REDIS_URL"), std::string::npos);
  EXPECT_NE(url_error("redis://h/-1").find("REDIS_URL"), std::string::npos);
}

TEST(ConfigFromUrl, bad_db_query_parameter_is_rejected) {
  EXPECT_NE(url_error("unix:///tmp/r.sock?db=x").find("REDIS_URL"), std::string::npos);
}

TEST(ConfigFromUrl, unknown_query_parameter_is_rejected_and_named) {
  const std::string what = url_error("redis://h?timeout=5");
  EXPECT_NE(what.find("REDIS_URL"), std::string::npos) << what;
  EXPECT_NE(what.find("timeout"), std::string::npos) << what;
}

TEST(ConfigFromUrl, unix_url_without_path_is_rejected) {
  EXPECT_NE(url_error("unix://").find("REDIS_URL"), std::string::npos);
}

TEST(ConfigFromUrl, unparseable_url_is_rejected) {
  EXPECT_NE(url_error("not a url").find("REDIS_URL"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Passwords never leak

TEST(ConfigPasswordSecrecy, error_for_bad_port_does_not_contain_password) {
  const std::string what = url_error("redis://u:hunter2@h:notaport");
  EXPECT_NE(what.find("REDIS_URL"), std::string::npos) << what;
  EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
}

TEST(ConfigPasswordSecrecy, no_url_error_contains_the_password) {
  for (const char* url : {
           "redis://u:hunter2@h:notaport",
           "redis://u:hunter2@h:99999",
           "redis://u:hunter2@h:0",
           "redis://u:hunter2@h/notadb",
           "redis://u:hunter2@h?nope=1",
           "redis://u:hunter2@h?db=x",
           "redis://u:hunter2@",
           "redis://:hunter2@h:bad",
           "redis://hunter2@h:bad",
           "http://u:hunter2@h",
           "rediss://u:hunter2@h:-1",
           "redis://u:hunter2%zz@h",
           "unix://u:hunter2@",
       }) {
    SCOPED_TRACE(url);
    const std::string what = url_error(url);
    EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
  }
}

TEST(ConfigPasswordSecrecy, env_error_with_password_in_redis_url_does_not_contain_it) {
  const std::string what = env_error({{"REDIS_URL", "redis://u:hunter2@h:notaport"}});
  EXPECT_NE(what.find("REDIS_URL"), std::string::npos) << what;
  EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
}

TEST(ConfigPasswordSecrecy, env_error_elsewhere_does_not_contain_redis_password) {
  const std::string what =
      env_error({{"REDIS_PASSWORD", "hunter2"}, {"REDIS_PORT", "bad"}, {"REDIS_USERNAME", "u"}});
  EXPECT_NE(what.find("REDIS_PORT"), std::string::npos) << what;
  EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
}

TEST(ConfigPasswordSecrecy, address_never_contains_credentials) {
  for (const char* url :
       {"redis://u:hunter2@h:6380/2", "rediss://u:hunter2@h:6380", "redis://:hunter2@h",
        "redis://hunter2@h", "unix://u:hunter2@/tmp/r.sock", "redis://h?password=hunter2"}) {
    SCOPED_TRACE(url);
    const ClientConfig c = ClientConfig::from_url(url);
    EXPECT_EQ(c.password, "hunter2");
    EXPECT_EQ(c.address().find("hunter2"), std::string::npos) << c.address();
  }
  const ClientConfig e = from_env({{"REDIS_HOST", "h"}, {"REDIS_PASSWORD", "hunter2"}});
  EXPECT_EQ(e.password, "hunter2");
  EXPECT_EQ(e.address().find("hunter2"), std::string::npos) << e.address();
}

TEST(ConfigAddress, address_formats_tcp_tls_and_unix) {
  EXPECT_EQ(ClientConfig::from_url("redis://u:pw@h:6380/2").address(), "h:6380");
  EXPECT_EQ(ClientConfig::from_url("rediss://h:6390").address(), "tls://h:6390");
  EXPECT_EQ(ClientConfig::from_url("unix:///tmp/r.sock").address(), "unix:/tmp/r.sock");
  EXPECT_EQ(ClientConfig{}.address(), "127.0.0.1:6379");
}

// ---------------------------------------------------------------------------------------------
// from_env

TEST(ConfigFromEnv, defaults_when_nothing_is_set) {
  const ClientConfig c = from_env({});
  EXPECT_EQ(c.transport, Transport::tcp);
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.port, 6379);
  EXPECT_EQ(c.db, 0);
  EXPECT_TRUE(c.username.empty());
  EXPECT_TRUE(c.password.empty());
  EXPECT_TRUE(c.unix_path.empty());
  EXPECT_TRUE(c.tls.ca_file.empty());
  EXPECT_TRUE(c.tls.cert_file.empty());
  EXPECT_TRUE(c.tls.key_file.empty());
  EXPECT_EQ(c.connect_timeout, 5000ms);
  EXPECT_EQ(c.command_timeout, 5000ms);
  EXPECT_EQ(c.health_check_interval, 30000ms);
  EXPECT_TRUE(c.retry_on_timeout);
  EXPECT_EQ(c.max_connections, 10u);
  EXPECT_EQ(c.address(), "127.0.0.1:6379");
}

TEST(ConfigFromEnv, fake_getenv_is_asked_only_for_redis_variables) {
  std::map<std::string, int> asked;
  (void)ClientConfig::from_env([&asked](const char* name) -> std::optional<std::string> {
    ++asked[name];
    return std::nullopt;
  });
  EXPECT_FALSE(asked.empty());
  for (const auto& [name, count] : asked) {
    EXPECT_EQ(name.rfind("REDIS_", 0), 0u) << name;
  }
}

TEST(ConfigFromEnv, reads_host_port_db_username_password) {
  const ClientConfig c = from_env({{"REDIS_HOST", "db.internal"},
                                   {"REDIS_PORT", "6390"},
                                   {"REDIS_DB", "5"},
                                   {"REDIS_USERNAME", "app"},
                                   {"REDIS_PASSWORD", "pw"}});
  EXPECT_EQ(c.transport, Transport::tcp);
  EXPECT_EQ(c.host, "db.internal");
  EXPECT_EQ(c.port, 6390);
  EXPECT_EQ(c.db, 5);
  EXPECT_EQ(c.username, "app");
  EXPECT_EQ(c.password, "pw");
  EXPECT_EQ(c.address(), "db.internal:6390");
}

TEST(ConfigFromEnv, redis_ssl_true_selects_tls) {
  for (const char* v : {"true", "1", "yes", "on", "TRUE", "True"}) {
    SCOPED_TRACE(v);
    EXPECT_EQ(from_env({{"REDIS_SSL", v}}).transport, Transport::tls);
  }
}

TEST(ConfigFromEnv, redis_ssl_false_keeps_tcp) {
  for (const char* v : {"false", "0", "no", "off", "FALSE"}) {
    SCOPED_TRACE(v);
    EXPECT_EQ(from_env({{"REDIS_SSL", v}}).transport, Transport::tcp);
  }
}

TEST(ConfigFromEnv, reads_ssl_ca_cert_and_key_files) {
  const ClientConfig c = from_env({{"REDIS_SSL", "true"},
                                   {"REDIS_SSL_CA_CERTS", "/etc/ca.pem"},
                                   {"REDIS_SSL_CERTFILE", "/etc/client.pem"},
                                   {"REDIS_SSL_KEYFILE", "/etc/client.key"}});
  EXPECT_EQ(c.transport, Transport::tls);
  EXPECT_EQ(c.tls.ca_file, "/etc/ca.pem");
  EXPECT_EQ(c.tls.cert_file, "/etc/client.pem");
  EXPECT_EQ(c.tls.key_file, "/etc/client.key");
}

TEST(ConfigFromEnv, ca_certs_alone_is_accepted) {
  const ClientConfig c = from_env({{"REDIS_SSL_CA_CERTS", "/etc/ca.pem"}});
  EXPECT_EQ(c.tls.ca_file, "/etc/ca.pem");
  EXPECT_TRUE(c.tls.cert_file.empty());
}

TEST(ConfigFromEnv, reads_max_connections) {
  EXPECT_EQ(from_env({{"REDIS_MAX_CONNECTIONS", "64"}}).max_connections, 64u);
  EXPECT_EQ(from_env({{"REDIS_MAX_CONNECTIONS", "1"}}).max_connections, 1u);
}

TEST(ConfigFromEnv, socket_timeout_in_whole_seconds) {
  EXPECT_EQ(from_env({{"REDIS_SOCKET_TIMEOUT", "2"}}).command_timeout, 2000ms);
}

TEST(ConfigFromEnv, socket_timeout_fraction_becomes_milliseconds) {
  EXPECT_EQ(from_env({{"REDIS_SOCKET_TIMEOUT", "0.25"}}).command_timeout, 250ms);
  EXPECT_EQ(from_env({{"REDIS_SOCKET_TIMEOUT", "1.5"}}).command_timeout, 1500ms);
}

TEST(ConfigFromEnv, connect_timeout_is_read_separately_from_socket_timeout) {
  const ClientConfig c =
      from_env({{"REDIS_CONNECT_TIMEOUT", "3"}, {"REDIS_SOCKET_TIMEOUT", "0.5"}});
  EXPECT_EQ(c.connect_timeout, 3000ms);
  EXPECT_EQ(c.command_timeout, 500ms);
}

TEST(ConfigFromEnv, connect_timeout_fraction_becomes_milliseconds) {
  EXPECT_EQ(from_env({{"REDIS_CONNECT_TIMEOUT", "0.1"}}).connect_timeout, 100ms);
}

TEST(ConfigFromEnv, positive_timeout_never_rounds_down_to_zero) {
  // A timeout that must be positive (0 is rejected) must not silently become 0 ms either:
  // either it is rejected, or it is at least 1 ms.
  for (const char* name : {"REDIS_SOCKET_TIMEOUT", "REDIS_CONNECT_TIMEOUT"}) {
    SCOPED_TRACE(name);
    try {
      const ClientConfig c = from_env({{name, "0.0001"}});
      EXPECT_GT(c.command_timeout.count(), 0);
      EXPECT_GT(c.connect_timeout.count(), 0);
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

TEST(ConfigFromEnv, retry_on_timeout_can_be_disabled_and_enabled) {
  EXPECT_FALSE(from_env({{"REDIS_RETRY_ON_TIMEOUT", "false"}}).retry_on_timeout);
  EXPECT_FALSE(from_env({{"REDIS_RETRY_ON_TIMEOUT", "0"}}).retry_on_timeout);
  EXPECT_TRUE(from_env({{"REDIS_RETRY_ON_TIMEOUT", "true"}}).retry_on_timeout);
}

TEST(ConfigFromEnv, health_check_interval_in_seconds) {
  EXPECT_EQ(from_env({{"REDIS_HEALTH_CHECK_INTERVAL", "15"}}).health_check_interval, 15000ms);
  EXPECT_EQ(from_env({{"REDIS_HEALTH_CHECK_INTERVAL", "0.5"}}).health_check_interval, 500ms);
}

TEST(ConfigFromEnv, health_check_interval_zero_disables_it) {
  EXPECT_EQ(from_env({{"REDIS_HEALTH_CHECK_INTERVAL", "0"}}).health_check_interval, 0ms);
}

TEST(ConfigFromEnv, redis_url_is_used_instead_of_host_port_and_ssl) {
  const ClientConfig c = from_env({{"REDIS_URL", "redis://urlhost:7001/2"},
                                   {"REDIS_HOST", "ignored"},
                                   {"REDIS_PORT", "1234"},
                                   {"REDIS_SSL", "true"}});
  EXPECT_EQ(c.transport, Transport::tcp);
  EXPECT_EQ(c.host, "urlhost");
  EXPECT_EQ(c.port, 7001);
  EXPECT_EQ(c.db, 2);
}

TEST(ConfigFromEnv, rediss_redis_url_selects_tls) {
  const ClientConfig c = from_env({{"REDIS_URL", "rediss://h:6380"}});
  EXPECT_EQ(c.transport, Transport::tls);
  EXPECT_EQ(c.address(), "tls://h:6380");
}

TEST(ConfigFromEnv, url_credentials_take_precedence_over_username_and_password_variables) {
  const ClientConfig c = from_env({{"REDIS_URL", "redis://urluser:urlpw@h"},
                                   {"REDIS_USERNAME", "envuser"},
                                   {"REDIS_PASSWORD", "envpw"}});
  EXPECT_EQ(c.username, "urluser");
  EXPECT_EQ(c.password, "urlpw");
}

TEST(ConfigFromEnv, password_variable_fills_in_when_url_has_none) {
  const ClientConfig c = from_env({{"REDIS_URL", "redis://h"}, {"REDIS_PASSWORD", "envpw"}});
  EXPECT_EQ(c.password, "envpw");
}

TEST(ConfigFromEnv, timeouts_and_files_apply_together_with_redis_url) {
  const ClientConfig c = from_env({{"REDIS_URL", "unix:///tmp/r.sock"},
                                   {"REDIS_SOCKET_TIMEOUT", "0.25"},
                                   {"REDIS_MAX_CONNECTIONS", "3"}});
  EXPECT_EQ(c.transport, Transport::unix_socket);
  EXPECT_EQ(c.unix_path, "/tmp/r.sock");
  EXPECT_EQ(c.command_timeout, 250ms);
  EXPECT_EQ(c.max_connections, 3u);
}

// ---------------------------------------------------------------------------------------------
// from_env errors: each names its variable

TEST(ConfigFromEnvErrors, port_zero_is_rejected) {
  expect_env_error_names({{"REDIS_PORT", "0"}}, "REDIS_PORT");
}

TEST(ConfigFromEnvErrors, port_above_65535_is_rejected) {
  expect_env_error_names({{"REDIS_PORT", "70000"}}, "REDIS_PORT");
}

TEST(ConfigFromEnvErrors, non_numeric_port_is_rejected) {
  expect_env_error_names({{"REDIS_PORT", "abc"}}, "REDIS_PORT");
  expect_env_error_names({{"REDIS_PORT", ""}}, "REDIS_PORT");
  expect_env_error_names({{"REDIS_PORT", "6379x"}}, "REDIS_PORT");
}

TEST(ConfigFromEnvErrors, empty_host_is_rejected) {
  expect_env_error_names({{"REDIS_HOST", ""}}, "REDIS_HOST");
}

TEST(ConfigFromEnvErrors, negative_db_is_rejected) {
  expect_env_error_names({{"REDIS_DB", "-1"}}, "REDIS_DB");
}

TEST(ConfigFromEnvErrors, zero_max_connections_is_rejected) {
  expect_env_error_names({{"REDIS_MAX_CONNECTIONS", "0"}}, "REDIS_MAX_CONNECTIONS");
}

TEST(ConfigFromEnvErrors, zero_socket_timeout_is_rejected) {
  expect_env_error_names({{"REDIS_SOCKET_TIMEOUT", "0"}}, "REDIS_SOCKET_TIMEOUT");
}

TEST(ConfigFromEnvErrors, negative_socket_timeout_is_rejected) {
  expect_env_error_names({{"REDIS_SOCKET_TIMEOUT", "-1"}}, "REDIS_SOCKET_TIMEOUT");
}

TEST(ConfigFromEnvErrors, non_numeric_socket_timeout_is_rejected) {
  expect_env_error_names({{"REDIS_SOCKET_TIMEOUT", "x"}}, "REDIS_SOCKET_TIMEOUT");
  expect_env_error_names({{"REDIS_SOCKET_TIMEOUT", ""}}, "REDIS_SOCKET_TIMEOUT");
  expect_env_error_names({{"REDIS_SOCKET_TIMEOUT", "5s"}}, "REDIS_SOCKET_TIMEOUT");
}

TEST(ConfigFromEnvErrors, nan_and_infinite_connect_timeout_are_rejected) {
  expect_env_error_names({{"REDIS_CONNECT_TIMEOUT", "nan"}}, "REDIS_CONNECT_TIMEOUT");
  expect_env_error_names({{"REDIS_CONNECT_TIMEOUT", "inf"}}, "REDIS_CONNECT_TIMEOUT");
}

TEST(ConfigFromEnvErrors, negative_health_check_interval_is_rejected) {
  expect_env_error_names({{"REDIS_HEALTH_CHECK_INTERVAL", "-1"}}, "REDIS_HEALTH_CHECK_INTERVAL");
}

TEST(ConfigFromEnvErrors, unrecognised_retry_on_timeout_is_rejected) {
  expect_env_error_names({{"REDIS_RETRY_ON_TIMEOUT", "maybe"}}, "REDIS_RETRY_ON_TIMEOUT");
}

TEST(ConfigFromEnvErrors, redis_ssl_other_than_a_boolean_is_rejected) {
  expect_env_error_names({{"REDIS_SSL", "2"}}, "REDIS_SSL");
}

TEST(ConfigFromEnvErrors, redis_url_with_http_scheme_is_rejected) {
  expect_env_error_names({{"REDIS_URL", "http://h:6379"}}, "REDIS_URL");
}

TEST(ConfigFromEnvErrors, redis_url_without_host_is_rejected) {
  expect_env_error_names({{"REDIS_URL", "redis://"}}, "REDIS_URL");
}

TEST(ConfigFromEnvErrors, redis_url_with_bad_port_is_rejected) {
  expect_env_error_names({{"REDIS_URL", "redis://h:notaport"}}, "REDIS_URL");
  expect_env_error_names({{"REDIS_URL", "redis://h:70000"}}, "REDIS_URL");
}

TEST(ConfigFromEnvErrors, redis_url_with_unknown_query_parameter_is_rejected) {
  expect_env_error_names({{"REDIS_URL", "redis://h?foo=bar"}}, "REDIS_URL");
}

TEST(ConfigFromEnvErrors, unix_redis_url_without_path_is_rejected) {
  expect_env_error_names({{"REDIS_URL", "unix://"}}, "REDIS_URL");
}

TEST(ConfigFromEnvErrors, certfile_without_keyfile_is_rejected) {
  expect_env_error_names({{"REDIS_SSL_CERTFILE", "/etc/client.pem"}}, "REDIS_SSL_CERTFILE");
  expect_env_error_names({{"REDIS_SSL_CERTFILE", "/etc/client.pem"}}, "REDIS_SSL_KEYFILE");
}

TEST(ConfigFromEnvErrors, keyfile_without_certfile_is_rejected) {
  expect_env_error_names({{"REDIS_SSL_KEYFILE", "/etc/client.key"}}, "REDIS_SSL_KEYFILE");
  expect_env_error_names({{"REDIS_SSL_KEYFILE", "/etc/client.key"}}, "REDIS_SSL_CERTFILE");
}

TEST(ConfigFromEnvErrors, config_error_is_an_invalid_argument) {
  try {
    (void)from_env({{"REDIS_PORT", "abc"}});
    FAIL() << "did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("REDIS_PORT"), std::string::npos);
  }
}

// ---- several hosts and Sentinel --------------------------------------------------------

using promptcache::net::Endpoint;

TEST(ConfigFromUrl, several_hosts_are_cluster_seeds_and_the_first_is_the_host) {
  const ClientConfig c = ClientConfig::from_url("redis://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002/0");
  const std::vector<Endpoint> expected{{"10.0.0.1", 7000}, {"10.0.0.2", 6379}, {"::1", 7002}};
  EXPECT_EQ(c.seeds, expected);
  EXPECT_EQ(c.host, "10.0.0.1");
  EXPECT_EQ(c.port, 7000);
  EXPECT_EQ(c.password, "pw");
  EXPECT_TRUE(ClientConfig::from_url("redis://h:7000").seeds.empty());
}

TEST(ConfigFromUrl, sentinel_url_names_sentinels_master_and_db) {
  const ClientConfig c =
      ClientConfig::from_url("redis+sentinel://:pw@s1,s2:26380/mymaster/3?sentinel_password=sp");
  ASSERT_TRUE(c.sentinel.has_value());
  const std::vector<Endpoint> expected{{"s1", 26379}, {"s2", 26380}};
  EXPECT_EQ(c.sentinel->sentinels, expected);
  EXPECT_EQ(c.sentinel->master_name, "mymaster");
  EXPECT_EQ(c.sentinel->password, "sp");
  EXPECT_EQ(c.password, "pw");  // the master's, not the sentinels'
  EXPECT_EQ(c.db, 3);
  EXPECT_EQ(c.transport, Transport::tcp);
  EXPECT_TRUE(c.host.empty());  // found at connect time
  EXPECT_EQ(c.address(), "sentinel master mymaster");
  EXPECT_EQ(ClientConfig::from_url("rediss+sentinel://s1/m").transport, Transport::tls);
}

TEST(ConfigFromUrl, sentinel_url_without_master_name_is_rejected) {
  EXPECT_NE(url_error("redis+sentinel://s1:26379").find("master"), std::string::npos);
  EXPECT_NE(url_error("redis+sentinel://s1:26379/").find("master"), std::string::npos);
}

TEST(ConfigFromUrl, a_bad_host_in_a_list_is_rejected_naming_it) {
  const std::string why = url_error("redis://h1:7000,h2:0");
  EXPECT_NE(why.find("REDIS_URL"), std::string::npos) << why;
  EXPECT_NE(why.find("h2:0"), std::string::npos) << why;
  EXPECT_NE(url_error("redis+sentinel://s1,,s2/m").find("REDIS_URL"), std::string::npos);
}

TEST(ConfigFromEnv, sentinels_and_master_variables_select_sentinel) {
  const ClientConfig c = from_env({{"REDIS_SENTINELS", "10.0.0.5:26379, 10.0.0.6"},
                                   {"REDIS_SENTINEL_MASTER", "cache"},
                                   {"REDIS_SENTINEL_PASSWORD", "sp"},
                                   {"REDIS_PASSWORD", "pw"},
                                   {"REDIS_DB", "2"}});
  ASSERT_TRUE(c.sentinel.has_value());
  const std::vector<Endpoint> expected{{"10.0.0.5", 26379}, {"10.0.0.6", 26379}};
  EXPECT_EQ(c.sentinel->sentinels, expected);
  EXPECT_EQ(c.sentinel->master_name, "cache");
  EXPECT_EQ(c.sentinel->password, "sp");
  EXPECT_EQ(c.password, "pw");
  EXPECT_EQ(c.db, 2);
}

TEST(ConfigFromEnvErrors, sentinel_variables_must_come_together_and_alone) {
  expect_env_error_names({{"REDIS_SENTINELS", "s1"}}, "REDIS_SENTINEL_MASTER");
  expect_env_error_names({{"REDIS_SENTINEL_MASTER", "m"}}, "REDIS_SENTINELS");
  expect_env_error_names(
      {{"REDIS_SENTINELS", "s1"}, {"REDIS_SENTINEL_MASTER", "m"}, {"REDIS_URL", "redis://h"}},
      "REDIS_SENTINELS");
  expect_env_error_names({{"REDIS_SENTINELS", "s1:x"}, {"REDIS_SENTINEL_MASTER", "m"}},
                         "REDIS_SENTINELS");
  expect_env_error_names({{"REDIS_SENTINELS", "s1"}, {"REDIS_SENTINEL_MASTER", ""}},
                         "REDIS_SENTINEL_MASTER");
}

TEST(ConfigPasswordSecrecy, sentinel_errors_never_hold_a_password) {
  const std::string why = url_error("redis+sentinel://:hunter2@s1:0/m?sentinel_password=hunter3");
  EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
  EXPECT_EQ(why.find("hunter3"), std::string::npos) << why;
}

}  // namespace
