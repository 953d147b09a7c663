// One connect attempt as a sans-IO algorithm (see step.hpp): [ask the sentinels where the
// master is], open the stream, hand over to the handshake. The runner adds the time bound
// (a watchdog that closes the stream) and the retries.
#pragma once

#include <optional>
#include <string>

#include "promptcache/net/config.hpp"
#include "promptcache/net/sansio/handshake.hpp"
#include "promptcache/net/sansio/sentinel_lookup.hpp"
#include "promptcache/net/sansio/step.hpp"

namespace promptcache::net::sansio {

class ConnectAlgo {
 public:
  // `cfg` must outlive the algorithm. `sentinel_first`: the sentinel asked first.
  ConnectAlgo(const ClientConfig& cfg, std::size_t sentinel_first);

  [[nodiscard]] Step resume(const Outcome& last);

  // Sentinel: the master found (set even if connecting to it then failed), and the sentinel
  // that named it.
  [[nodiscard]] const std::optional<Endpoint>& master() const noexcept { return master_; }
  [[nodiscard]] std::size_t sentinel_answered() const noexcept { return sentinel_answered_; }
  // After success.
  [[nodiscard]] bool resp3() const noexcept { return handshake_ && handshake_->resp3(); }
  [[nodiscard]] std::optional<std::string> tracking_refused() const {
    return handshake_ ? handshake_->tracking_refused() : std::nullopt;
  }
  // After failure: why, in words.
  [[nodiscard]] const std::string& detail() const noexcept { return detail_; }

 private:
  enum class Phase : std::uint8_t { start, lookup, connecting, handshake, finished };

  Step on_lookup(const Outcome& last);
  Step on_connected(const Outcome& last);
  Step on_handshake(const Outcome& last);
  Step finish(Step done, const std::string& detail);

  const ClientConfig& cfg_;
  Phase phase_ = Phase::start;
  std::optional<SentinelLookupAlgo> lookup_;
  std::optional<HandshakeAlgo> handshake_;
  std::optional<Endpoint> master_;
  std::size_t sentinel_answered_;
  std::string detail_;
};

}  // namespace promptcache::net::sansio
