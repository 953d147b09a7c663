// The one redaction (promptcache/redact.hpp): URLs shown without their secrets, and every
// registered secret replaced wherever it appears.
#include "promptcache/redact.hpp"

#include <gtest/gtest.h>

#include "server/log_throttle.hpp"

namespace promptcache {
namespace {

TEST(RedactUrl, HidesThePasswordAndEveryParameterButKeepsTheRest) {
  EXPECT_EQ(redact_url("postgresql://u:secret@h:5432/d"), "postgresql://u:***@h:5432/d");
  EXPECT_EQ(redact_url("postgresql://u@h/d"), "postgresql://u@h/d");
  EXPECT_EQ(redact_url("redis://:pw@h:6379/2"), "redis://:***@h:6379/2");
  EXPECT_EQ(redact_url("postgresql://u@h/d?password=pw&sslmode=require"), "postgresql://u@h/d?***");
  EXPECT_EQ(redact_url("postgresql://u@h/d#pw"), "postgresql://u@h/d?***");
  EXPECT_EQ(redact_url("sqlite:///data/x.db"), "sqlite:///data/x.db");
  // An '@' in the path is not a userinfo.
  EXPECT_EQ(redact_url("sqlite:///data/a:b@c.db"), "sqlite:///data/a:b@c.db");
  EXPECT_EQ(redact_url("host=h password=pw"), "(not a URL)");
}

TEST(Redact, ReplacesEveryRegisteredSecretAndItsUrlForm) {
  register_secret("unit-secret+/value");
  EXPECT_TRUE(holds_secret("x unit-secret+/value y"));
  EXPECT_EQ(redact("a unit-secret+/value b unit-secret+/value"), "a *** b ***");
  EXPECT_EQ(redact("in a URL: unit-secret%2B%2Fvalue"), "in a URL: ***");
  EXPECT_FALSE(holds_secret("nothing here"));
  EXPECT_EQ(redact("nothing here"), "nothing here");
}

TEST(Redact, ShortValuesAreNotRegistered) {
  register_secret("abc");
  EXPECT_EQ(redact("abc abcd"), "abc abcd");
}

TEST(Redact, ALongerSecretHoldingAShorterOneIsReplacedWhole) {
  register_secret("nested-key");
  register_secret("nested-key-longer");
  EXPECT_EQ(redact("[nested-key-longer]"), "[***]");
}

TEST(Redact, UrlSecretsAreRegisteredFromTheUserinfoAndPasswordParameters) {
  register_url_secrets("postgresql://app:url%40pass1@h/db?sslpassword=url-pass2&sslmode=x");
  register_url_secrets("redis://url-pass3@h");
  register_url_secrets("host=h password=url-pass4 port=1");
  EXPECT_EQ(redact("url@pass1 url%40pass1 url-pass2 url-pass3 url-pass4"), "*** *** *** *** ***");
  EXPECT_EQ(redact("sslmode=x app"), "sslmode=x app");  // not secrets
}

TEST(LogThrottle, ReportsTheFirstAtOnceThenOncePerIntervalWithTheCount) {
  using namespace std::chrono_literals;
  server::LogThrottle t(10s);
  const auto t0 = server::LogThrottle::Clock::time_point{} + 1h;
  EXPECT_EQ(t.note(t0), 1u);
  for (int i = 0; i < 999; ++i) EXPECT_EQ(t.note(t0 + 1ms * i), 0u);
  EXPECT_EQ(t.note(t0 + 10s), 1000u);  // the 999 kept quiet and this one
  EXPECT_EQ(t.note(t0 + 11s), 0u);
  EXPECT_EQ(t.note(t0 + 25s), 2u);
}

}  // namespace
}  // namespace promptcache
