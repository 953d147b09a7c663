// One log line per interval for an event that can repeat thousands of times a second (an
// accept failing for want of descriptors): the first occurrence is reported at once, the
// others counted and reported together once the interval has passed. Sans-IO: the caller
// passes the time. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>

namespace promptcache::server {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogThrottle(Clock::duration interval) : interval_(interval) {}

  // How many occurrences to report now (this one and those kept quiet since the last report),
  // or 0 to stay quiet.
  [[nodiscard]] std::size_t note(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    ++pending_;
    if (reported_once_ && now - last_report_ < interval_) return 0;
    reported_once_ = true;
    last_report_ = now;
    const std::size_t n = pending_;
    pending_ = 0;
    return n;
  }

 private:
  std::mutex mutex_;
  Clock::duration interval_;
  Clock::time_point last_report_{};
  bool reported_once_ = false;
  std::size_t pending_ = 0;  // occurrences not yet reported
};

}  // namespace promptcache::server
