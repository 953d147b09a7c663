// W3C trace context (span_context.hpp) and the samplers (sampler.hpp): the header read and
// written as the standard says, every malformed form refused, and which traces each sampler
// keeps — no exporter, no clock.
#include <gtest/gtest.h>

#include <set>

#include "promptcache/telemetry/sampler.hpp"
#include "promptcache/telemetry/span_context.hpp"

namespace promptcache::telemetry {
namespace {

constexpr std::string_view example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParent, the_standards_example_reads_back_as_it_was_written) {
  const auto c = parse_traceparent(example, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  ASSERT_TRUE(c);
  EXPECT_EQ(to_hex(c->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(to_hex(c->span_id), "00f067aa0ba902b7");
  EXPECT_TRUE(c->sampled);
  EXPECT_TRUE(c->remote);
  EXPECT_EQ(c->trace_state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  EXPECT_EQ(format_traceparent(*c), example);
}

TEST(TraceParent, the_sampled_flag_is_bit_zero_of_the_flags) {
  EXPECT_FALSE(
      parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")->sampled);
  EXPECT_FALSE(
      parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")->sampled);
  EXPECT_TRUE(
      parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03")->sampled);
  SpanContext c = *parse_traceparent(example);
  c.sampled = false;
  EXPECT_EQ(format_traceparent(c), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
}

TEST(TraceParent, malformed_headers_are_refused) {
  for (std::string_view bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero span id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 has no more fields
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
           "0-04bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // short version
           "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   // later version, no dash
       }) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
}

TEST(TraceParent, a_later_version_is_read_by_its_first_four_fields) {
  const auto c =
      parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->sampled);
  EXPECT_EQ(format_traceparent(*c), example);  // we write the version we know
}

TEST(TraceParent, an_oversized_tracestate_is_dropped_not_the_trace) {
  const std::string huge(513, 'a');
  const auto c = parse_traceparent(example, huge);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->trace_state.empty());
}

TEST(TraceParent, new_ids_are_never_zero_and_do_not_repeat) {
  std::set<std::string> traces;
  std::set<std::string> spans;
  for (int i = 0; i < 1000; ++i) {
    traces.insert(to_hex(new_trace_id()));
    spans.insert(to_hex(new_span_id()));
  }
  EXPECT_EQ(traces.size(), 1000u);
  EXPECT_EQ(spans.size(), 1000u);
  EXPECT_EQ(traces.count(std::string(32, '0')), 0u);
}

Sampler parsed(std::string_view name, std::optional<std::string_view> arg = std::nullopt) {
  std::string error;
  auto s = Sampler::parse(name, arg, error);
  EXPECT_TRUE(s) << error;
  return s.value_or(Sampler{});
}

SpanContext parent(bool sampled) {
  SpanContext c = *parse_traceparent(example);
  c.sampled = sampled;
  return c;
}

TEST(Sampler, always_on_and_always_off_ignore_the_parent_unless_parent_based) {
  const TraceId id = new_trace_id();
  const SpanContext kept = parent(true);
  const SpanContext dropped = parent(false);
  EXPECT_TRUE(parsed("always_on").sample(&dropped, id));
  EXPECT_FALSE(parsed("always_off").sample(&kept, id));
  EXPECT_TRUE(parsed("parentbased_always_off").sample(&kept, id));
  EXPECT_FALSE(parsed("parentbased_always_on").sample(&dropped, id));
  EXPECT_TRUE(parsed("parentbased_always_on").sample(nullptr, id));  // a root: the root sampler
  EXPECT_FALSE(parsed("parentbased_always_off").sample(nullptr, id));
  EXPECT_TRUE(Sampler{}.sample(nullptr, id));  // the default: parentbased_always_on
  EXPECT_FALSE(Sampler{}.sample(&dropped, id));
}

TEST(Sampler, a_ratio_keeps_about_that_share_of_traces_and_decides_each_the_same_way) {
  const Sampler quarter = parsed("traceidratio", "0.25");
  int kept = 0;
  for (int i = 0; i < 20000; ++i) {
    const TraceId id = new_trace_id();
    const bool first = quarter.sample(nullptr, id);
    EXPECT_EQ(quarter.sample(nullptr, id), first);
    kept += first ? 1 : 0;
  }
  EXPECT_GT(kept, 20000 * 0.22);
  EXPECT_LT(kept, 20000 * 0.28);
  EXPECT_FALSE(parsed("traceidratio", "0").sample(nullptr, new_trace_id()));
  EXPECT_TRUE(parsed("traceidratio", "1").sample(nullptr, new_trace_id()));
  EXPECT_TRUE(parsed("traceidratio").sample(nullptr, new_trace_id()));  // no arg: 1
  const SpanContext kept_parent = parent(true);
  EXPECT_TRUE(parsed("parentbased_traceidratio", "0").sample(&kept_parent, new_trace_id()));
}

TEST(Sampler, unknown_names_and_bad_ratios_are_errors_naming_the_variable) {
  std::string error;
  EXPECT_FALSE(Sampler::parse("sometimes", std::nullopt, error));
  EXPECT_NE(error.find("OTEL_TRACES_SAMPLER:"), std::string::npos);
  EXPECT_NE(error.find("\"sometimes\""), std::string::npos);
  for (std::string_view bad : {"1.5", "-0.1", "abc", "", "0.5x", "nan"}) {
    error.clear();
    EXPECT_FALSE(Sampler::parse("traceidratio", bad, error)) << bad;
    EXPECT_NE(error.find("OTEL_TRACES_SAMPLER_ARG:"), std::string::npos) << bad;
  }
  EXPECT_EQ(parsed("parentbased_traceidratio", "0.5").describe(), "parentbased_traceidratio{0.5}");
}

}  // namespace
}  // namespace promptcache::telemetry
