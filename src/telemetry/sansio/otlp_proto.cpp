#include "telemetry/sansio/otlp_proto.hpp"

#include "telemetry/sansio/protobuf.hpp"
#include "telemetry/sansio/span_record.hpp"

namespace promptcache::telemetry {
namespace {

namespace pb = protobuf;

// The envelope's field numbers (trace_service.proto, trace.proto, resource.proto, common.proto).
constexpr unsigned request_resource_spans = 1;
constexpr unsigned resource_spans_resource = 1, resource_spans_scope_spans = 2;
constexpr unsigned resource_attributes = 1;
constexpr unsigned scope_spans_scope = 1;
constexpr unsigned scope_name = 1, scope_version = 2;
constexpr unsigned response_partial_success = 1, partial_rejected_spans = 1;

// The envelope's fields before the records, within ResourceSpans and ScopeSpans.
std::string resource_field(const Resource& resource) {
  std::string out;
  const std::size_t body = pb::open(out, resource_spans_resource);
  append_key_values(out, resource_attributes, resource.attributes);
  pb::close(out, body);
  return out;
}

std::string scope_field(const Scope& scope) {
  std::string out;
  const std::size_t body = pb::open(out, scope_spans_scope);
  // The scope is ours: ASCII.
  pb::put_bytes(out, scope_name, scope.name);
  if (!scope.version.empty()) pb::put_bytes(out, scope_version, scope.version);
  pb::close(out, body);
  return out;
}

void put_length(std::string& out, unsigned field, std::size_t length) {
  pb::put_tag(out, field, pb::Wire::len);
  pb::put_varint(out, length);
}

}  // namespace

void otlp_proto_open(std::string& out, const Resource& resource, const Scope& scope,
                     std::size_t records_size) {
  // Two short strings an export: nothing beside its records.
  const std::string resource_bytes = resource_field(resource);
  const std::string scope_bytes = scope_field(scope);
  const std::size_t scope_spans = scope_bytes.size() + records_size;
  const std::size_t resource_spans =
      resource_bytes.size() + 1 + pb::varint_size(scope_spans) + scope_spans;
  put_length(out, request_resource_spans, resource_spans);
  out += resource_bytes;
  put_length(out, resource_spans_scope_spans, scope_spans);
  out += scope_bytes;
}

std::string otlp_proto(const Resource& resource, const Scope& scope,
                       std::span<const SpanData> spans) {
  std::string records;
  for (const SpanData& s : spans) write_span_record(records, s);
  std::string out;
  otlp_proto_open(out, resource, scope, records.size());
  out += records;
  return out;
}

std::uint64_t otlp_proto_rejected_spans(std::string_view response) {
  // Fields are read where they are expected and skipped otherwise; anything unreadable is 0.
  const auto find = [](std::string_view message, unsigned wanted, pb::Wire wanted_wire,
                       auto&& take) {
    pb::Reader r(message);
    while (!r.done()) {
      unsigned number = 0;
      pb::Wire wire{};
      if (!r.tag(number, wire)) return false;
      if (number == wanted && wire == wanted_wire) {
        if (!take(r)) return false;
      } else if (!r.skip(wire)) {
        return false;
      }
    }
    return true;
  };
  std::string_view partial;
  if (!find(response, response_partial_success, pb::Wire::len,
            [&](pb::Reader& r) { return r.bytes(partial); })) {
    return 0;
  }
  std::uint64_t rejected = 0;
  if (!find(partial, partial_rejected_spans, pb::Wire::varint,
            [&](pb::Reader& r) { return r.varint(rejected); })) {
    return 0;
  }
  return static_cast<std::int64_t>(rejected) < 0 ? 0 : rejected;
}

}  // namespace promptcache::telemetry
