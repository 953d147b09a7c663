// Who a span is: its trace, its own id, whether it is sampled, the vendors' trace state — and
// the W3C Trace Context header that carries them between processes (traceparent, tracestate;
// https://www.w3.org/TR/trace-context/).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace promptcache::telemetry {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

struct SpanContext {
  TraceId trace_id{};
  SpanId span_id{};
  bool sampled = false;
  std::string trace_state;  // tracestate, passed on as it came (empty: none)
  bool remote = false;      // came from another process

  // Neither id all zeros (the standard's "invalid").
  [[nodiscard]] bool valid() const noexcept;
};

// Lowercase hex of an id, as traceparent and OTLP/JSON write it.
[[nodiscard]] std::string to_hex(const TraceId& id);
[[nodiscard]] std::string to_hex(const SpanId& id);
// The same, written at `out` (2 × bytes.size() characters): no string of its own.
void write_hex(char* out, std::span<const std::uint8_t> bytes) noexcept;

// The traceparent header of a context: "00-<trace id>-<span id>-<flags>".
[[nodiscard]] std::string format_traceparent(const SpanContext& context);
// The same text in place, without an allocation (a response header per request).
struct TraceparentText {
  char text[55];
  [[nodiscard]] std::string_view view() const noexcept { return {text, sizeof text}; }
};
[[nodiscard]] TraceparentText traceparent_text(const SpanContext& context) noexcept;

// A traceparent header as W3C Trace Context level 1 reads it: version 00 exactly (55
// characters); a later version's first four fields, whatever follows them; version ff, upper
// case, all-zero ids or any other deviation: nullopt (the caller then starts a new trace).
// `trace_state` is the tracestate header, kept only with a valid traceparent, and dropped when
// it is longer than 512 characters (the standard's limit for what must be passed on).
[[nodiscard]] std::optional<SpanContext> parse_traceparent(std::string_view traceparent,
                                                           std::string_view trace_state = {});

// Random ids, never all zeros: a per-thread generator seeded from the system's entropy.
[[nodiscard]] TraceId new_trace_id();
[[nodiscard]] SpanId new_span_id();

}  // namespace promptcache::telemetry
