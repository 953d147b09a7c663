// Circuit breaker for a cache tier (sans-IO: time is passed in). After `failure_threshold`
// consecutive connection failures the tier is skipped at once — no call waits for a timeout
// during an outage — and one probe is let through after a back-off that doubles while the
// tier stays down. Thread-safe; the closed-state check is one atomic load.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>

namespace promptcache::cache {

struct CircuitBreakerOptions {
  unsigned failure_threshold = 5;
  std::chrono::milliseconds open_for{1000};       // first back-off
  std::chrono::milliseconds max_open_for{30000};  // back-off cap
};

class CircuitBreaker {
 public:
  using Options = CircuitBreakerOptions;
  using Clock = std::chrono::steady_clock;
  enum class State : std::uint8_t { closed, open, half_open };

  explicit CircuitBreaker(Options options = {}) noexcept : options_(options) {}

  // May a call go to the tier now? In half-open state only one probe is out at a time; a
  // caller that got true must report on_success or on_failure.
  [[nodiscard]] bool allow(Clock::time_point now);
  // Would allow(now) refuse? Changes nothing (no probe is taken).
  [[nodiscard]] bool rejecting(Clock::time_point now);
  void on_success();
  void on_failure(Clock::time_point now);

  [[nodiscard]] State state() const noexcept { return state_.load(std::memory_order_acquire); }
  [[nodiscard]] std::uint64_t times_opened() const noexcept { return opened_.load(); }
  [[nodiscard]] std::uint64_t rejected() const noexcept { return rejected_.load(); }

 private:
  void open(Clock::time_point now);  // with mutex_ held

  Options options_;
  std::atomic<State> state_{State::closed};
  std::atomic<std::uint64_t> opened_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::mutex mutex_;
  std::atomic<unsigned> failures_{0};  // consecutive, while closed
  bool probe_out_ = false;
  std::chrono::milliseconds backoff_{0};
  Clock::time_point open_until_{};
};

[[nodiscard]] std::string_view to_string(CircuitBreaker::State s) noexcept;

}  // namespace promptcache::cache
