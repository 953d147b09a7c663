#include "promptcache/cache/circuit_breaker.hpp"

#include <algorithm>

namespace promptcache::cache {

std::string_view to_string(CircuitBreaker::State s) noexcept {
  switch (s) {
    case CircuitBreaker::State::closed:
      return "closed";
    case CircuitBreaker::State::open:
      return "open";
    case CircuitBreaker::State::half_open:
      return "half_open";
  }
  return "unknown";
}

bool CircuitBreaker::allow(Clock::time_point now) {
  if (state_.load(std::memory_order_acquire) == State::closed) return true;
  std::lock_guard lock(mutex_);
  switch (state_.load(std::memory_order_relaxed)) {
    case State::closed:
      return true;
    case State::open:
      if (now < open_until_) break;
      state_.store(State::half_open, std::memory_order_release);
      probe_out_ = true;
      return true;
    case State::half_open:
      if (probe_out_) break;
      probe_out_ = true;
      return true;
  }
  rejected_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool CircuitBreaker::rejecting(Clock::time_point now) {
  if (state_.load(std::memory_order_acquire) == State::closed) return false;
  std::lock_guard lock(mutex_);
  switch (state_.load(std::memory_order_relaxed)) {
    case State::closed:
      return false;
    case State::open:
      return now < open_until_;
    case State::half_open:
      return probe_out_;
  }
  return false;
}

void CircuitBreaker::on_success() {
  if (state_.load(std::memory_order_acquire) == State::closed &&
      failures_.load(std::memory_order_relaxed) == 0) {
    return;
  }
  std::lock_guard lock(mutex_);
  failures_ = 0;
  probe_out_ = false;
  backoff_ = std::chrono::milliseconds(0);
  state_.store(State::closed, std::memory_order_release);
}

void CircuitBreaker::on_failure(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  switch (state_.load(std::memory_order_relaxed)) {
    case State::closed:
      if (++failures_ >= options_.failure_threshold) open(now);
      break;
    case State::half_open:
      open(now);
      break;  // the probe failed
    case State::open:
      break;  // a call from before the trip
  }
}

void CircuitBreaker::open(Clock::time_point now) {
  backoff_ =
      backoff_.count() == 0 ? options_.open_for : std::min(backoff_ * 2, options_.max_open_for);
  open_until_ = now + backoff_;
  probe_out_ = false;
  failures_ = 0;
  opened_.fetch_add(1, std::memory_order_relaxed);
  state_.store(State::open, std::memory_order_release);
}

}  // namespace promptcache::cache
