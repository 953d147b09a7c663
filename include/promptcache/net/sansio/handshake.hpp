// The handshake on a new connection, as a sans-IO algorithm (see step.hpp):
//
//   HELLO 3 [AUTH user pass] SETNAME name, [SELECT db], [READONLY]   one pipeline
//     ├─ HELLO refused with NOPROTO / unknown command (a RESP2 server):
//     │    [AUTH [user] pass], CLIENT SETNAME name, [SELECT db], [READONLY]   one pipeline
//     ├─ any auth error (WRONGPASS, NOAUTH, …): error::auth_failed
//     └─ any other error, SELECT's or READONLY's included: error::server_error
//   [CLIENT TRACKING ON [BCAST PREFIX p …]]   RESP3 and a tracking listener; a refusal is
//                                             reported (tracking_refused), not a failure
//   [ROLE]   Sentinel: the server must say it is a master, else error::not_master
//
// An I/O error at any step ends it with that error.
#pragma once

#include <optional>
#include <string>

#include "promptcache/net/config.hpp"
#include "promptcache/net/sansio/step.hpp"

namespace promptcache::net::sansio {

class HandshakeAlgo {
 public:
  // `cfg` must outlive the algorithm; `address` names the server in detail().
  HandshakeAlgo(const ClientConfig& cfg, std::string address);

  [[nodiscard]] Step resume(const Outcome& last);

  // After done: the protocol spoken, and why tracking is off when it was asked for.
  [[nodiscard]] bool resp3() const noexcept { return resp3_; }
  [[nodiscard]] const std::optional<std::string>& tracking_refused() const noexcept {
    return tracking_refused_;
  }
  [[nodiscard]] const std::string& detail() const noexcept { return detail_; }

 private:
  enum class Phase : std::uint8_t { start, hello, legacy, tracking, role, finished };

  Step on_hello(const Outcome& last);
  Step on_legacy(const Outcome& last);
  Step on_tracking(const Outcome& last);
  Step on_role(const Outcome& last);
  // After the setup pipeline succeeded: tracking (RESP3), then the role check (Sentinel).
  Step after_setup();
  Step role_or_done();
  // The first error reply among `replies` as the handshake's failure; nullopt if none.
  std::optional<Step> refused(std::span<const resp::Reply> replies);
  Step fail(boost::system::error_code ec, std::string detail);
  Step send(Phase next);

  const ClientConfig& cfg_;
  std::string address_;
  Phase phase_ = Phase::start;
  resp::Request request_;
  bool resp3_ = false;
  std::optional<std::string> tracking_refused_;
  std::string detail_;
};

}  // namespace promptcache::net::sansio
