// Spans as an OTLP/HTTP JSON export request (ExportTraceServiceRequest in the protobuf JSON
// mapping, as OTLP 1.x specifies it): ids as lowercase hex, 64-bit integers and times as
// decimal strings, enums as numbers, lowerCamelCase field names. Text that is not UTF-8 (a
// hostile header, say) is repaired, so one bad attribute cannot make a receiver refuse the
// whole batch.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "telemetry/sansio/span_data.hpp"

namespace promptcache::telemetry {

struct Resource {
  std::vector<Attribute> attributes;  // service.name and the rest
};

// The instrumentation scope every span of ours belongs to.
struct Scope {
  std::string name = "promptcache";
  std::string version;
};

[[nodiscard]] std::string otlp_json(const Resource& resource, const Scope& scope,
                                    std::span<const SpanData> spans);
// One span's JSON object, appended to `out`: what a recording thread queues (BatchQueue).
void otlp_span_json(std::string& out, const SpanData& span);
// The export request in two halves around its spans' objects (written between them with
// otlp_span_json, separated by commas), appended to `out` (an exporter reuses one buffer: no
// allocation once warm).
void otlp_json_open(std::string& out, const Resource& resource, const Scope& scope);
void otlp_json_close(std::string& out);

}  // namespace promptcache::telemetry
