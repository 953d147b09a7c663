// When a load runs and how it waits, as arithmetic over the options and the times it is given
// (no clock, no randomness of its own): the policy part of load coordination, which
// service_load.cpp carries out with single-flight (single_flight.hpp) and the store's lease.
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>

namespace promptcache::cache {

struct LoadPolicy {
  using SystemClock = std::chrono::system_clock;

  double early_refresh = 0;            // ServiceOptions::early_refresh
  std::chrono::milliseconds lease{0};  // ServiceOptions::lease (0: no lease)
  std::chrono::seconds tombstone_ttl{60};

  // Whether a value written at `created` that goes stale at `soft_expiry` (epoch: never), read
  // at `now`, is refreshed in the background: only in the last `early_refresh` part of its
  // life, with a chance growing linearly from 0 at that window's start to 1 at the expiry;
  // `draw()` gives a number uniform in [0, 1), asked for only inside the window (a read outside
  // it, the common case, costs no random number).
  template <class Draw>
  requires std::is_invocable_r_v<double, Draw&>
  [[nodiscard]] bool refresh_due(SystemClock::time_point created,
                                 SystemClock::time_point soft_expiry, SystemClock::time_point now,
                                 Draw&& draw) const {
    const double threshold = refresh_threshold(created, soft_expiry, now);
    return threshold <= 1 && draw() >= threshold;
  }
  [[nodiscard]] bool refresh_due(SystemClock::time_point created,
                                 SystemClock::time_point soft_expiry, SystemClock::time_point now,
                                 double draw) const noexcept {
    return refresh_due(created, soft_expiry, now, [draw] { return draw; });
  }
  // The pause before a lease waiter's poll number `polls` (0 first): 2 ms doubling to 50 ms.
  [[nodiscard]] static std::chrono::milliseconds lease_pause(int polls) noexcept;
  // How long a miss waits for another process's load at most: the lease's life twice over.
  [[nodiscard]] std::chrono::milliseconds lease_wait() const noexcept { return 2 * lease; }
  // The latest a fill whose load read the source at `read_at` may land (ms since the epoch, the
  // store's clock): half a tombstone's life later, so that no fill outlives the tombstone that
  // must stop it.
  [[nodiscard]] std::int64_t fill_deadline_ms(SystemClock::time_point read_at) const noexcept;

 private:
  // The draw at or above which a read refreshes: left/window inside the window (1 at its start,
  // 0 at the expiry, below once stale); above 1 when no refresh is due at all.
  [[nodiscard]] double refresh_threshold(SystemClock::time_point created,
                                         SystemClock::time_point soft_expiry,
                                         SystemClock::time_point now) const noexcept;
};

}  // namespace promptcache::cache
