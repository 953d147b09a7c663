#include "promptcache/cache/circuit_breaker.hpp"

#include <gtest/gtest.h>

namespace promptcache::cache {
namespace {

using namespace std::chrono_literals;
using State = CircuitBreaker::State;

CircuitBreaker make() {
  return CircuitBreaker(
      CircuitBreakerOptions{.failure_threshold = 3, .open_for = 100ms, .max_open_for = 350ms});
}

const CircuitBreaker::Clock::time_point t0{};

TEST(CircuitBreaker, stays_closed_below_the_failure_threshold) {
  auto b = make();
  b.on_failure(t0);
  b.on_failure(t0);
  EXPECT_EQ(b.state(), State::closed);
  EXPECT_TRUE(b.allow(t0));
}

TEST(CircuitBreaker, a_success_resets_the_consecutive_failure_count) {
  auto b = make();
  b.on_failure(t0);
  b.on_failure(t0);
  b.on_success();
  b.on_failure(t0);
  b.on_failure(t0);
  EXPECT_EQ(b.state(), State::closed);
}

TEST(CircuitBreaker, opens_at_the_threshold_and_rejects_until_the_back_off_ends) {
  auto b = make();
  for (int i = 0; i < 3; ++i) b.on_failure(t0);
  EXPECT_EQ(b.state(), State::open);
  EXPECT_EQ(b.times_opened(), 1u);
  EXPECT_FALSE(b.allow(t0 + 50ms));
  EXPECT_FALSE(b.allow(t0 + 99ms));
  EXPECT_EQ(b.rejected(), 2u);
}

TEST(CircuitBreaker, lets_one_probe_through_after_the_back_off) {
  auto b = make();
  for (int i = 0; i < 3; ++i) b.on_failure(t0);
  EXPECT_TRUE(b.allow(t0 + 100ms));
  EXPECT_EQ(b.state(), State::half_open);
  EXPECT_FALSE(b.allow(t0 + 101ms));  // the probe is still out
  b.on_success();
  EXPECT_EQ(b.state(), State::closed);
  EXPECT_TRUE(b.allow(t0 + 102ms));
}

TEST(CircuitBreaker, a_failed_probe_reopens_with_a_doubled_back_off_up_to_the_cap) {
  auto b = make();
  for (int i = 0; i < 3; ++i) b.on_failure(t0);
  auto now = t0 + 100ms;
  ASSERT_TRUE(b.allow(now));
  b.on_failure(now);  // back-off 200 ms
  EXPECT_EQ(b.state(), State::open);
  EXPECT_FALSE(b.allow(now + 199ms));
  ASSERT_TRUE(b.allow(now + 200ms));
  now += 200ms;
  b.on_failure(now);  // back-off 350 ms (capped, not 400)
  EXPECT_FALSE(b.allow(now + 349ms));
  EXPECT_TRUE(b.allow(now + 350ms));
  EXPECT_EQ(b.times_opened(), 3u);
}

TEST(CircuitBreaker, back_off_starts_over_after_the_tier_recovers) {
  auto b = make();
  for (int i = 0; i < 3; ++i) b.on_failure(t0);
  ASSERT_TRUE(b.allow(t0 + 100ms));
  b.on_failure(t0 + 100ms);  // 200 ms
  ASSERT_TRUE(b.allow(t0 + 300ms));
  b.on_success();
  for (int i = 0; i < 3; ++i) b.on_failure(t0 + 400ms);
  EXPECT_FALSE(b.allow(t0 + 499ms));
  EXPECT_TRUE(b.allow(t0 + 500ms));  // 100 ms again
}

TEST(CircuitBreaker, failures_reported_while_open_do_not_extend_the_back_off) {
  auto b = make();
  for (int i = 0; i < 3; ++i) b.on_failure(t0);
  b.on_failure(t0 + 90ms);  // a call that started before the trip
  EXPECT_TRUE(b.allow(t0 + 100ms));
}

TEST(CircuitBreaker, rejecting_tells_without_taking_the_probe) {
  auto b = make();
  EXPECT_FALSE(b.rejecting(t0));
  for (int i = 0; i < 3; ++i) b.on_failure(t0);
  EXPECT_TRUE(b.rejecting(t0 + 99ms));
  EXPECT_FALSE(b.rejecting(t0 + 100ms));  // a probe may go
  EXPECT_FALSE(b.rejecting(t0 + 100ms));  // and still may: asking took nothing
  EXPECT_TRUE(b.allow(t0 + 100ms));
  EXPECT_TRUE(b.rejecting(t0 + 101ms));  // the probe is out
}

TEST(CircuitBreaker, state_names) {
  EXPECT_EQ(to_string(State::closed), "closed");
  EXPECT_EQ(to_string(State::open), "open");
  EXPECT_EQ(to_string(State::half_open), "half_open");
}

}  // namespace
}  // namespace promptcache::cache
