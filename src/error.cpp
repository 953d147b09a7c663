#include "promptcache/error.hpp"

namespace promptcache {
namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "promptcache"; }

  std::string message(int ev) const override {
    switch (static_cast<error>(ev)) {
      case error::ok:
        return "success";
      case error::protocol_error:
        return "malformed reply from the server (protocol error)";
      case error::limit_exceeded:
        return "reply exceeds a protocol limit";
      case error::timeout:
        return "command timed out";
      case error::overloaded:
        return "too many commands in flight on the connection";
      case error::connection_lost:
        return "connection lost before the reply arrived";
      case error::not_connected:
        return "not connected to the server";
      case error::connect_timeout:
        return "connect timed out";
      case error::auth_failed:
        return "authentication failed";
      case error::server_error:
        return "the server returned an error";
      case error::unexpected_reply:
        return "unexpected reply type";
      case error::closed:
        return "client closed";
      case error::invalid_config:
        return "invalid configuration";
      case error::corrupt_value:
        return "cached value is corrupt or of a foreign format";
      case error::circuit_open:
        return "cache tier skipped: circuit breaker open";
      case error::cluster_down:
        return "no cluster master serves the key's slot";
      case error::not_master:
        return "no master found: Sentinel named none, or the server is a replica";
    }
    return "unknown promptcache error";
  }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace promptcache
