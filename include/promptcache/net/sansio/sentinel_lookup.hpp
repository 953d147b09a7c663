// Asking Redis Sentinel where the master is, as a sans-IO algorithm (see step.hpp). The
// sentinels are asked in turn, starting with the one that answered last time; each gets a
// connection of its own: connect, [AUTH], SENTINEL get-master-addr-by-name, close. The first
// that names the master ends it; if none does, error::not_master with every sentinel's answer
// in detail().
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "promptcache/net/config.hpp"
#include "promptcache/net/sansio/step.hpp"

namespace promptcache::net::sansio {

class SentinelLookupAlgo {
 public:
  // `cfg` must outlive the algorithm and name at least one sentinel.
  SentinelLookupAlgo(const SentinelConfig& cfg, std::size_t first);

  [[nodiscard]] Step resume(const Outcome& last);

  // After success: the master's address, and the sentinel that named it (ask it first next).
  [[nodiscard]] const std::optional<Endpoint>& master() const noexcept { return master_; }
  [[nodiscard]] std::size_t answered() const noexcept { return current(); }
  [[nodiscard]] const std::string& detail() const noexcept { return detail_; }

 private:
  enum class Phase : std::uint8_t { start, connecting, asking, closing, finished };

  [[nodiscard]] std::size_t current() const noexcept {
    return (first_ + tried_) % cfg_.sentinels.size();
  }
  // The answer of the current sentinel, in failures_ when it is not a master's address.
  void read_answer(std::span<const resp::Reply> replies);
  void note_failure(std::string_view why);

  const SentinelConfig& cfg_;
  std::size_t first_;
  std::size_t tried_ = 0;
  Phase phase_ = Phase::start;
  resp::Request ask_;
  std::optional<Endpoint> master_;
  std::string failures_;
  std::string detail_;
};

}  // namespace promptcache::net::sansio
