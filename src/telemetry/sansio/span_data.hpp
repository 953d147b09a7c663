// A finished span as the exporter sends it: plain data, made by the recording tracer when the
// span ends, encoded by otlp_json.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "promptcache/telemetry/span_context.hpp"
#include "promptcache/telemetry/tracer.hpp"

namespace promptcache::telemetry {

struct Attribute {
  std::string key;
  AttributeValue value;
};

// A span's attributes, kept as OTLP/protobuf sends them: each a Span.attributes field (9: its
// tag, its length, the KeyValue message) in the order set, encoded as it is set into a buffer
// the span keeps — clear() keeps its room (the tracer pools SpanData: no allocation once warm),
// and a finished span's attributes go into its record in one copy. A key set again replaces
// its earlier field. Text that is not UTF-8 (a hostile header, say) is repaired as it is set:
// protobuf receivers refuse a string that is not, and with it the whole batch.
class Attributes {
 public:
  Attributes() = default;
  Attributes(std::initializer_list<Attribute> list) {
    for (const Attribute& a : list) set(a.key, a.value);
  }

  void set(std::string_view key, const AttributeValue& value);
  void set_text(std::string_view key, std::string_view value);
  void clear() noexcept {
    bytes_.clear();
    entries_.clear();
  }

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  // The fields, ready for a Span message.
  [[nodiscard]] std::string_view encoded() const noexcept { return bytes_; }
  // Every attribute decoded, in order, into `out` (its strings' room reused).
  void decode(std::vector<Attribute>& out) const;
  [[nodiscard]] std::vector<Attribute> decoded() const;
  // The value set for `key`, if any.
  [[nodiscard]] std::optional<AttributeValue> get(std::string_view key) const;

 private:
  struct Entry {
    std::uint32_t offset;      // of its field in bytes_
    std::uint32_t size;        // of its field
    std::uint32_t key_offset;  // of its key's bytes in bytes_
    std::uint32_t key_size;
  };
  using ValueView = std::variant<bool, std::int64_t, double, std::string_view>;
  // Appends the field for `key` and `value`, after dropping an earlier field of the same key.
  void put(std::string_view key, const ValueView& value);

  std::string bytes_;
  std::vector<Entry> entries_;
};

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
