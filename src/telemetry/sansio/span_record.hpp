// A finished span as a flat record of bytes: what a recording thread queues for the exporter's
// thread. Writing one is a few copies — no text to escape, no number to format — so a request
// pays that much for its spans; the exporter's thread reads the records back and encodes them
// as OTLP/JSON (otlp_span_json) on its own time. The format is this process's own (native
// byte order), never stored or sent:
//
//   trace id 16 · span id 8 · parent span id 8 · kind 1 · status 1 · start 8 · end 8 ·
//   name · trace state · status message · attributes · events
//
// where a text is its length (4 bytes) and its bytes; attributes are a count (4 bytes) and
// each key (text), a type byte and its value (bool 1, int64 8, double 8, text); events are a
// count and each name (text), time 8 and attributes.
#pragma once

#include <string>
#include <string_view>

#include "telemetry/sansio/span_data.hpp"

namespace promptcache::telemetry {

// Appends `span`'s record to `out`.
void write_span_record(std::string& out, const SpanData& span);

// Reads the record at the front of `in` into `span` (its attributes' slots reused) and moves
// `in` past it; false, with `in` unchanged, when `in` does not start with a whole record.
[[nodiscard]] bool read_span_record(std::string_view& in, SpanData& span);

}  // namespace promptcache::telemetry
