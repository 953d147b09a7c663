// A finished span as the exporter sends it: plain data, made by the recording tracer when the
// span ends, encoded by otlp_json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "promptcache/telemetry/span_context.hpp"
#include "promptcache/telemetry/tracer.hpp"

namespace promptcache::telemetry {

struct Attribute {
  std::string key;
  AttributeValue value;
};

struct SpanEvent {
  std::string name;
  std::uint64_t time_ns = 0;  // since the Unix epoch
  std::vector<Attribute> attributes;
};

// OTLP's Status.code.
enum class StatusCode : std::uint8_t { unset = 0, ok = 1, error = 2 };

struct SpanData {
  std::string name;
  SpanKind kind = SpanKind::internal;
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};  // all zeros: a root span
  std::string trace_state;
  std::uint64_t start_ns = 0;  // since the Unix epoch
  std::uint64_t end_ns = 0;
  std::vector<Attribute> attributes;
  std::vector<SpanEvent> events;
  StatusCode status = StatusCode::unset;
  std::string status_message;
};

}  // namespace promptcache::telemetry
