// promptcache's error codes: one boost::system category for every layer below the service.
#pragma once

#include <boost/system/error_code.hpp>
#include <stdexcept>
#include <type_traits>

namespace promptcache {

// A configuration value that cannot be used. what() names the variable and never holds a
// password or any other secret.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class error {
  ok = 0,
  protocol_error,    // malformed RESP from the server; the connection is closed
  limit_exceeded,    // a reply over a parser limit (depth, bulk, aggregate, line)
  timeout,           // the command's deadline passed before its reply arrived
  overloaded,        // the connection's bound on in-flight commands or bytes is reached
  connection_lost,   // the connection dropped after the command was written
  not_connected,     // no connection could be made before the deadline
  connect_timeout,   // connect or handshake took longer than the connect timeout
  auth_failed,       // the server refused the credentials
  server_error,      // the server answered the command with an error reply
  unexpected_reply,  // a reply of a type the command does not produce
  closed,            // the client was shut down
  invalid_config,    // a configuration value is invalid
  corrupt_value,     // a cached value that is neither our envelope nor JSON
  circuit_open,      // the Redis tier is skipped after repeated failures
  cluster_down,      // no master serves the key's slot (a cluster mid-failover, or broken)
  not_master,        // Sentinel named no master, or the server it named is not one (failover)
};

[[nodiscard]] const boost::system::error_category& error_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace promptcache

template <>
struct boost::system::is_error_code_enum<promptcache::error> : std::true_type {};
