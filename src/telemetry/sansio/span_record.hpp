// A finished span as a record of bytes: what a recording thread queues for the exporter's
// thread. The record is the span as OTLP/protobuf writes it inside a ScopeSpans message — the
// `spans` field (2): its tag, its length, the Span message (trace_id 1, span_id 2, trace_state
// 3, parent_span_id 4, name 5, kind 6, start 7, end 8, attributes 9, events 11, status 15;
// opentelemetry/proto/trace/v1/trace.proto). Writing one is copies and varints — no text to
// escape, no number to format — so a request pays that much for its spans; an OTLP/protobuf
// export is then the records as they are behind a few bytes of envelope (otlp_proto.hpp), and
// an OTLP/JSON one reads them back (read_span_record) and encodes them (otlp_span_json).
//
// Text that is not UTF-8 (a hostile header, say) is repaired as it is written: protobuf
// receivers refuse a string field that is not UTF-8, and with it the whole batch.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "telemetry/sansio/span_data.hpp"

namespace promptcache::telemetry {

// Appends `span`'s record to `out`.
void write_span_record(std::string& out, const SpanData& span);
// The same in two steps, for a caller that places the record itself: its size, then the
// record written at `out` (that many bytes; returns their end). For a span whose texts are all
// UTF-8 (what RecordingSpan records; write_span_record above repairs any other first).
[[nodiscard]] std::size_t span_record_size(const SpanData& span);
char* write_span_record(char* out, const SpanData& span);
// Whether every text of `span` is UTF-8: what the two-step writer needs.
[[nodiscard]] bool utf8_throughout(const SpanData& span) noexcept;

// Repeated KeyValue fields numbered `field` (a Resource's attributes, say), appended to `out`.
void append_key_values(std::string& out, unsigned field, std::span<const Attribute> list);

// Reads the record at the front of `in` into `span` (its attributes' slots reused) and moves
// `in` past it; false, with `in` unchanged, when `in` does not start with a whole, well-formed
// record.
[[nodiscard]] bool read_span_record(std::string_view& in, SpanData& span);

}  // namespace promptcache::telemetry
