#include "telemetry/sansio/otlp_json.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "promptcache/json_text.hpp"

namespace promptcache::telemetry {
namespace {

using namespace std::string_view_literals;  // literals appended without a strlen

// Whether `s` is printable ASCII without a quote or a backslash: written as it is. Most keys
// and values are; checked eight bytes at a time.
bool plain(std::string_view s) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  const auto has_byte = [&](std::uint64_t w, unsigned char b) {
    const std::uint64_t x = w ^ (ones * b);
    return ((x - ones) & ~x & highs) != 0;
  };
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, sizeof w);
    // A byte at or past 0x80, below 0x20 (w - 0x20 borrows into its high bit), '"' or '\\'.
    if (((w | (w - ones * 0x20)) & highs) != 0 || has_byte(w, '"') || has_byte(w, '\\')) {
      return false;
    }
  }
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return false;
  }
  return true;
}

void text(std::string& out, std::string_view s) {
  if (plain(s)) {
    out += '"';
    out += s;
    out += '"';
  } else if (valid_utf8(s)) {
    json_string_append(out, s);
  } else {
    json_string_append(out, repaired_utf8(s));
  }
}

// A 64-bit integer as the protobuf JSON mapping writes one: a decimal string.
template <class Int>
void int64(std::string& out, Int v) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  (void)ec;
  out += '"';
  out.append(digits, static_cast<std::size_t>(end - digits));
  out += '"';
}

void any_value(std::string& out, const AttributeValue& value) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          out += v ? R"({"boolValue":true})"sv : R"({"boolValue":false})"sv;
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          out += R"({"intValue":)"sv;
          int64(out, v);
          out += '}';
        } else if constexpr (std::is_same_v<T, double>) {
          // JSON has no NaN or infinity: the mapping's strings for them.
          out += R"({"doubleValue":)"sv;
          if (std::isnan(v)) {
            out += R"("NaN")"sv;
          } else if (std::isinf(v)) {
            out += v > 0 ? R"("Infinity")"sv : R"("-Infinity")"sv;
          } else {
            char digits[32];
            const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
            (void)ec;
            out.append(digits, static_cast<std::size_t>(end - digits));
          }
          out += '}';
        } else {
          out += R"({"stringValue":)"sv;
          text(out, v);
          out += '}';
        }
      },
      value);
}

// [write(item), …] for the items of `list`.
template <class List, class Write>
void array(std::string& out, const List& list, Write write) {
  out += '[';
  bool first = true;
  for (const auto& item : list) {
    if (!first) out += ',';
    first = false;
    write(item);
  }
  out += ']';
}

template <class List>
void attributes(std::string& out, const List& list) {
  array(out, list, [&out](const Attribute& a) {
    out += R"({"key":)"sv;
    text(out, a.key);
    out += R"(,"value":)"sv;
    any_value(out, a.value);
    out += '}';
  });
}

// A span's attributes are kept encoded for protobuf: decoded first (the exporter's thread, into
// a list whose room it keeps).
void attributes(std::string& out, const Attributes& list) {
  thread_local std::vector<Attribute> decoded;
  list.decode(decoded);
  attributes(out, decoded);
}

void events(std::string& out, const std::vector<SpanEvent>& list) {
  array(out, list, [&out](const SpanEvent& e) {
    out += R"({"timeUnixNano":)"sv;
    int64(out, e.time_ns);
    out += R"(,"name":)"sv;
    text(out, e.name);
    out += R"(,"attributes":)"sv;
    attributes(out, e.attributes);
    out += '}';
  });
}

bool is_root(const SpanId& parent) {
  for (auto b : parent) {
    if (b != 0) return false;
  }
  return true;
}

// An id's lowercase hex, appended (no string of its own).
template <std::size_t N>
void hex(std::string& out, const std::array<std::uint8_t, N>& id) {
  const std::size_t at = out.size();
  out.resize(at + 2 * N);
  write_hex(out.data() + at, id);
}

}  // namespace

void otlp_span_json(std::string& out, const SpanData& s) {
  out += R"({"traceId":")"sv;
  hex(out, s.trace_id);
  out += R"(","spanId":")"sv;
  hex(out, s.span_id);
  out += '"';
  if (!s.trace_state.empty()) {
    out += R"(,"traceState":)"sv;
    text(out, s.trace_state);
  }
  if (!is_root(s.parent_span_id)) {
    out += R"(,"parentSpanId":")"sv;
    hex(out, s.parent_span_id);
    out += '"';
  }
  out += R"(,"name":)"sv;
  text(out, s.name);
  out += R"(,"kind":)"sv;
  out += static_cast<char>('0' + static_cast<int>(s.kind));
  out += R"(,"startTimeUnixNano":)"sv;
  int64(out, s.start_ns);
  out += R"(,"endTimeUnixNano":)"sv;
  int64(out, s.end_ns);
  out += R"(,"attributes":)"sv;
  attributes(out, s.attributes);
  if (!s.events.empty()) {
    out += R"(,"events":)"sv;
    events(out, s.events);
  }
  out += R"(,"status":{)"sv;
  if (s.status != StatusCode::unset) {
    out += R"("code":)"sv;
    out += static_cast<char>('0' + static_cast<int>(s.status));
    if (!s.status_message.empty()) {
      out += R"(,"message":)"sv;
      text(out, s.status_message);
    }
  }
  out += "}}"sv;
}

std::string otlp_json(const Resource& resource, const Scope& scope,
                      std::span<const SpanData> spans) {
  std::string out;
  otlp_json_open(out, resource, scope);
  bool first = true;
  for (const SpanData& s : spans) {
    if (!first) out += ',';
    first = false;
    otlp_span_json(out, s);
  }
  otlp_json_close(out);
  return out;
}

void otlp_json_open(std::string& out, const Resource& resource, const Scope& scope) {
  out += R"({"resourceSpans":[{"resource":{"attributes":)"sv;
  attributes(out, resource.attributes);
  out += R"(},"scopeSpans":[{"scope":{"name":)"sv;
  text(out, scope.name);
  if (!scope.version.empty()) {
    out += R"(,"version":)"sv;
    text(out, scope.version);
  }
  out += R"(},"spans":[)"sv;
}

void otlp_json_close(std::string& out) {
  out += "]}]}]}"sv;
}

}  // namespace promptcache::telemetry
