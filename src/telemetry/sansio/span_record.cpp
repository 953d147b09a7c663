#include "telemetry/sansio/span_record.hpp"

#include <cstdint>
#include <cstring>
#include <span>
#include <variant>

#include "promptcache/json_text.hpp"
#include "telemetry/sansio/protobuf.hpp"

namespace promptcache::telemetry {
namespace {

namespace pb = protobuf;

// The field numbers of trace.proto that records use (KeyValue's are span_data.cpp's).
namespace field {
constexpr unsigned scope_spans_spans = 2;
constexpr unsigned trace_id = 1, span_id = 2, trace_state = 3, parent_span_id = 4, name = 5,
                   kind = 6, start = 7, end = 8, attributes = 9, events = 11, status = 15;
constexpr unsigned event_time = 1, event_name = 2, event_attributes = 3;
constexpr unsigned status_message = 2, status_code = 3;
}  // namespace field

using pb::len_field_size;

template <class List>
std::size_t attributes_size(const List& list) noexcept {
  std::size_t n = 0;
  for (const Attribute& a : list) n += key_value_field_size(a);
  return n;
}

std::size_t event_size(const SpanEvent& e) noexcept {
  return 9 + len_field_size(e.name.size()) + attributes_size(e.attributes);
}

bool has_status(const SpanData& s) noexcept {
  return s.status != StatusCode::unset || !s.status_message.empty();
}

std::size_t status_size(const SpanData& s) noexcept {
  return (s.status_message.empty() ? 0 : len_field_size(s.status_message.size())) + 1 +
         pb::varint_size(static_cast<std::uint64_t>(s.status));
}

bool is_zero(const SpanId& id) noexcept {
  for (auto b : id) {
    if (b != 0) return false;
  }
  return true;
}

// The Span message's size: what write_span_record writes after its tag and length.
std::size_t span_size(const SpanData& s) noexcept {
  std::size_t n = len_field_size(sizeof s.trace_id) + len_field_size(sizeof s.span_id);
  if (!s.trace_state.empty()) n += len_field_size(s.trace_state.size());
  if (!is_zero(s.parent_span_id)) n += len_field_size(sizeof s.parent_span_id);
  n += len_field_size(s.name.size());
  n += 1 + pb::varint_size(static_cast<std::uint64_t>(s.kind));
  n += 9 + 9;  // start, end
  n += s.attributes.encoded().size();
  for (const SpanEvent& e : s.events) n += len_field_size(event_size(e));
  if (has_status(s)) n += len_field_size(status_size(s));
  return n;
}

// The span's writer: protobuf's, and the KeyValue fields of events.
struct Cursor : pb::Cursor {
  template <class List>
  void attributes(unsigned number, const List& list) noexcept {
    for (const Attribute& a : list) at = write_key_value_field(at, number, a);
  }
};

bool utf8_value(const AttributeValue& v) noexcept {
  const auto* text = std::get_if<std::string>(&v);
  return text == nullptr || valid_utf8(*text);
}

template <class List>
bool utf8_attributes(const List& list) noexcept {
  for (const Attribute& a : list) {
    if (!valid_utf8(a.key) || !utf8_value(a.value)) return false;
  }
  return true;
}

// The span with its texts made UTF-8 (a hostile header, say): the rare path, a copy.
SpanData repaired(const SpanData& s) {
  const auto fix_list = [](auto& list) {
    for (Attribute& a : list) {
      a.key = repaired_utf8(a.key);
      if (auto* text = std::get_if<std::string>(&a.value)) *text = repaired_utf8(*text);
    }
  };
  SpanData out = s;
  out.name = repaired_utf8(s.name);
  out.trace_state = repaired_utf8(s.trace_state);
  out.status_message = repaired_utf8(s.status_message);
  for (SpanEvent& e : out.events) {
    e.name = repaired_utf8(e.name);
    fix_list(e.attributes);
  }
  return out;
}

std::string_view id_text(std::span<const std::uint8_t> id) noexcept {
  return {reinterpret_cast<const char*>(id.data()), id.size()};
}

// An id field's bytes, which must be exactly the id's size.
template <std::size_t N>
bool read_id(pb::Reader& r, std::array<std::uint8_t, N>& id) {
  std::string_view v;
  if (!r.bytes(v) || v.size() != N) return false;
  std::memcpy(id.data(), v.data(), N);
  return true;
}

bool read_text(pb::Reader& r, std::string& into) {
  std::string_view v;
  if (!r.bytes(v)) return false;
  into.assign(v.data(), v.size());
  return true;
}

bool read_event(std::string_view message, SpanEvent& e) {
  pb::Reader r(message);
  while (!r.done()) {
    unsigned number = 0;
    pb::Wire wire{};
    if (!r.tag(number, wire)) return false;
    std::string_view v;
    bool ok = false;
    if (number == field::event_time && wire == pb::Wire::i64) {
      ok = r.fixed64(e.time_ns);
    } else if (number == field::event_name && wire == pb::Wire::len) {
      ok = read_text(r, e.name);
    } else if (number == field::event_attributes && wire == pb::Wire::len) {
      ok = r.bytes(v) && read_attribute(v, e.attributes.emplace_back());
    } else {
      ok = r.skip(wire);
    }
    if (!ok) return false;
  }
  return true;
}

bool read_status(std::string_view message, SpanData& s) {
  pb::Reader r(message);
  while (!r.done()) {
    unsigned number = 0;
    pb::Wire wire{};
    if (!r.tag(number, wire)) return false;
    std::uint64_t code = 0;
    bool ok = false;
    if (number == field::status_message && wire == pb::Wire::len) {
      ok = read_text(r, s.status_message);
    } else if (number == field::status_code && wire == pb::Wire::varint) {
      ok = r.varint(code) && code <= static_cast<std::uint64_t>(StatusCode::error);
      s.status = static_cast<StatusCode>(code);
    } else {
      ok = r.skip(wire);
    }
    if (!ok) return false;
  }
  return true;
}

void reset(SpanData& s) {
  s.name.clear();
  s.kind = SpanKind::internal;
  s.trace_id = {};
  s.span_id = {};
  s.parent_span_id = {};
  s.trace_state.clear();
  s.start_ns = s.end_ns = 0;
  s.attributes.clear();
  s.events.clear();
  s.status = StatusCode::unset;
  s.status_message.clear();
}

bool read_span(std::string_view message, SpanData& s) {
  reset(s);
  pb::Reader r(message);
  bool has_ids[2] = {false, false};
  while (!r.done()) {
    unsigned number = 0;
    pb::Wire wire{};
    if (!r.tag(number, wire)) return false;
    std::string_view v;
    std::uint64_t n = 0;
    bool ok = false;
    const bool len = wire == pb::Wire::len;
    if (number == field::trace_id && len) {
      ok = has_ids[0] = read_id(r, s.trace_id);
    } else if (number == field::span_id && len) {
      ok = has_ids[1] = read_id(r, s.span_id);
    } else if (number == field::trace_state && len) {
      ok = read_text(r, s.trace_state);
    } else if (number == field::parent_span_id && len) {
      ok = read_id(r, s.parent_span_id);
    } else if (number == field::name && len) {
      ok = read_text(r, s.name);
    } else if (number == field::kind && wire == pb::Wire::varint) {
      ok = r.varint(n) && n >= static_cast<std::uint64_t>(SpanKind::internal) &&
           n <= static_cast<std::uint64_t>(SpanKind::client);
      s.kind = static_cast<SpanKind>(n);
    } else if (number == field::start && wire == pb::Wire::i64) {
      ok = r.fixed64(s.start_ns);
    } else if (number == field::end && wire == pb::Wire::i64) {
      ok = r.fixed64(s.end_ns);
    } else if (number == field::attributes && len) {
      thread_local Attribute scratch;  // its strings' room kept
      ok = r.bytes(v) && read_attribute(v, scratch);
      if (ok) s.attributes.set(scratch.key, scratch.value);
    } else if (number == field::events && len) {
      ok = r.bytes(v) && read_event(v, s.events.emplace_back());
    } else if (number == field::status && len) {
      ok = r.bytes(v) && read_status(v, s);
    } else {
      ok = r.skip(wire);
    }
    if (!ok) return false;
  }
  return has_ids[0] && has_ids[1];
}

}  // namespace

// Whether every text of the span is UTF-8, as protobuf's string fields must be.
bool utf8_throughout(const SpanData& s) noexcept {
  // The attributes are UTF-8 as they are set.
  if (!valid_utf8(s.name) || !valid_utf8(s.trace_state) || !valid_utf8(s.status_message)) {
    return false;
  }
  for (const SpanEvent& e : s.events) {
    if (!valid_utf8(e.name) || !utf8_attributes(e.attributes)) return false;
  }
  return true;
}

std::size_t span_record_size(const SpanData& s) {
  const std::size_t body = span_size(s);
  return 1 + pb::varint_size(body) + body;
}

char* write_span_record(char* out, const SpanData& s) {
  Cursor c{{out}};
  c.len(field::scope_spans_spans, span_size(s));
  c.bytes(field::trace_id, id_text(s.trace_id));
  c.bytes(field::span_id, id_text(s.span_id));
  if (!s.trace_state.empty()) c.bytes(field::trace_state, s.trace_state);
  if (!is_zero(s.parent_span_id)) c.bytes(field::parent_span_id, id_text(s.parent_span_id));
  c.bytes(field::name, s.name);
  c.uint(field::kind, static_cast<std::uint64_t>(s.kind));
  c.fixed64(field::start, s.start_ns);
  c.fixed64(field::end, s.end_ns);
  c.raw(s.attributes.encoded());  // already the Span.attributes fields
  for (const SpanEvent& e : s.events) {
    c.len(field::events, event_size(e));
    c.fixed64(field::event_time, e.time_ns);
    c.bytes(field::event_name, e.name);
    c.attributes(field::event_attributes, e.attributes);
  }
  if (has_status(s)) {
    c.len(field::status, status_size(s));
    if (!s.status_message.empty()) c.bytes(field::status_message, s.status_message);
    c.uint(field::status_code, static_cast<std::uint64_t>(s.status));
  }
  return c.at;
}

void write_span_record(std::string& out, const SpanData& s) {
  if (!utf8_throughout(s)) {
    write_span_record(out, repaired(s));
    return;
  }
  const std::size_t at = out.size();
  out.resize(at + span_record_size(s));
  write_span_record(out.data() + at, s);
}

void append_key_values(std::string& out, unsigned number, std::span<const Attribute> list) {
  for (const Attribute& a : list) {
    if (!valid_utf8(a.key) || !utf8_value(a.value)) {
      Attribute fixed{repaired_utf8(a.key), a.value};
      if (auto* text = std::get_if<std::string>(&fixed.value)) *text = repaired_utf8(*text);
      append_key_values(out, number, std::span<const Attribute>(&fixed, 1));
      continue;
    }
    const std::size_t at = out.size();
    out.resize(at + key_value_field_size(a));
    write_key_value_field(out.data() + at, number, a);
  }
}

bool read_span_record(std::string_view& in, SpanData& s) {
  pb::Reader r(in);
  unsigned number = 0;
  pb::Wire wire{};
  std::string_view message;
  if (!r.tag(number, wire) || number != field::scope_spans_spans || wire != pb::Wire::len ||
      !r.bytes(message) || !read_span(message, s)) {
    return false;
  }
  in = r.rest();
  return true;
}

}  // namespace promptcache::telemetry
