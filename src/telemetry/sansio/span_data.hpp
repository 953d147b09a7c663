// A finished span as the exporter sends it: plain data, made by the recording tracer when the
// span ends, encoded by otlp_json.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "promptcache/telemetry/attributes.hpp"
#include "promptcache/telemetry/span_context.hpp"
#include "promptcache/telemetry/tracer.hpp"

namespace promptcache::telemetry {

// A KeyValue message read into `out`; false when it is not one this process writes (a key and
// a string, bool, int or double value).
[[nodiscard]] bool read_attribute(std::string_view key_value, Attribute& out);

// The protobuf field `field` holding an attribute's KeyValue message (its key and value UTF-8):
// its size, and the field written at `at` (that many bytes; returns their end).
[[nodiscard]] std::size_t key_value_field_size(const Attribute& attribute) noexcept;
char* write_key_value_field(char* at, unsigned field, const Attribute& attribute) noexcept;

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
  Attributes attributes;
  std::vector<SpanEvent> events;
  StatusCode status = StatusCode::unset;
  std::string status_message;
};

}  // namespace promptcache::telemetry
