// LoadPolicy (src/cache/load_policy.hpp): when an early refresh is due, how a lease waiter
// paces its polls and how long it waits, and the bound that keeps a fill from outliving the
// tombstone that must stop it — over times and draws given, no clock.
#include "cache/load_policy.hpp"

#include <gtest/gtest.h>

namespace promptcache::cache {
namespace {

using namespace std::chrono_literals;
using SystemClock = LoadPolicy::SystemClock;

const SystemClock::time_point t0 = SystemClock::time_point{} + 1000000s;

TEST(LoadPolicy, no_refresh_when_off_without_an_expiry_or_before_the_window) {
  LoadPolicy p;
  EXPECT_FALSE(p.refresh_due(t0, t0 + 100s, t0 + 99s, 0.999));  // off
  p.early_refresh = 0.2;                                        // the last 20 s of 100
  EXPECT_FALSE(p.refresh_due(t0, SystemClock::time_point{}, t0 + 99s, 0.999));  // no expiry
  EXPECT_FALSE(p.refresh_due(t0, t0 + 100s, t0 + 79s, 0.999));                  // before the window
  EXPECT_FALSE(p.refresh_due(t0, t0 + 100s, t0 + 80s, 0.999));  // its very start: chance 0
}

TEST(LoadPolicy, the_chance_grows_linearly_through_the_window_to_one_at_the_expiry) {
  LoadPolicy p;
  p.early_refresh = 0.2;
  // 10 s left of a 20 s window: due for draws of one half and more.
  EXPECT_FALSE(p.refresh_due(t0, t0 + 100s, t0 + 90s, 0.49));
  EXPECT_TRUE(p.refresh_due(t0, t0 + 100s, t0 + 90s, 0.5));
  // 2 s left: due for draws of one tenth and more (a chance of nine in ten).
  EXPECT_FALSE(p.refresh_due(t0, t0 + 100s, t0 + 98s, 0.09));
  EXPECT_TRUE(p.refresh_due(t0, t0 + 100s, t0 + 98s, 0.1));
  // 18 s left: one tenth of a chance.
  EXPECT_FALSE(p.refresh_due(t0, t0 + 100s, t0 + 82s, 0.89));
  EXPECT_TRUE(p.refresh_due(t0, t0 + 100s, t0 + 82s, 0.91));
  // At and past the expiry: always.
  EXPECT_TRUE(p.refresh_due(t0, t0 + 100s, t0 + 100s, 0.0));
  EXPECT_TRUE(p.refresh_due(t0, t0 + 100s, t0 + 101s, 0.0));
}

TEST(LoadPolicy, lease_polls_start_at_2ms_double_and_stay_at_50ms) {
  EXPECT_EQ(LoadPolicy::lease_pause(0), 2ms);
  EXPECT_EQ(LoadPolicy::lease_pause(1), 4ms);
  EXPECT_EQ(LoadPolicy::lease_pause(3), 16ms);
  EXPECT_EQ(LoadPolicy::lease_pause(4), 32ms);
  EXPECT_EQ(LoadPolicy::lease_pause(5), 50ms);
  EXPECT_EQ(LoadPolicy::lease_pause(1000), 50ms);
  LoadPolicy p;
  p.lease = 300ms;
  EXPECT_EQ(p.lease_wait(), 600ms);
}

TEST(LoadPolicy, a_fill_lands_no_later_than_half_a_tombstones_life_after_its_read) {
  LoadPolicy p;
  p.tombstone_ttl = 60s;
  const auto read_at = SystemClock::time_point{} + 1700000000s + 250ms;
  EXPECT_EQ(p.fill_deadline_ms(read_at), 1700000030250);
}

}  // namespace
}  // namespace promptcache::cache
