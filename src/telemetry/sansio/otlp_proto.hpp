// Spans as an OTLP/HTTP protobuf export request: ExportTraceServiceRequest
// (opentelemetry/proto/collector/trace/v1/trace_service.proto) holding one ResourceSpans with
// one ScopeSpans. The spans inside are span records (span_record.hpp) as they are: an exporter
// writes the envelope for their total size (otlp_proto_open) and appends them — no span is
// encoded on the exporter's thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "telemetry/sansio/otlp_json.hpp"
#include "telemetry/sansio/span_data.hpp"

namespace promptcache::telemetry {

// The request's bytes up to its first span, for records of `records_size` bytes in all,
// appended to `out`.
void otlp_proto_open(std::string& out, const Resource& resource, const Scope& scope,
                     std::size_t records_size);
// A whole request of `spans`.
[[nodiscard]] std::string otlp_proto(const Resource& resource, const Scope& scope,
                                     std::span<const SpanData> spans);
// partial_success.rejected_spans of an ExportTraceServiceResponse; 0 when the response has
// none or cannot be read.
[[nodiscard]] std::uint64_t otlp_proto_rejected_spans(std::string_view response);

}  // namespace promptcache::telemetry
