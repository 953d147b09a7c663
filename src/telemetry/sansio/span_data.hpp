// A finished span as the exporter sends it: plain data, made by the recording tracer when the
// span ends, encoded by otlp_json.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "promptcache/telemetry/span_context.hpp"
#include "promptcache/telemetry/tracer.hpp"

namespace promptcache::telemetry {

struct Attribute {
  std::string key;
  AttributeValue value;
};

// A span's attributes, each key once (set() replaces). clear() keeps the slots — their keys'
// and text values' room — for the next span that reuses this one (the tracer pools SpanData):
// setting an attribute then allocates nothing once warm.
class Attributes {
 public:
  Attributes() = default;
  Attributes(std::initializer_list<Attribute> list) {
    for (const Attribute& a : list) set(a.key, a.value);
  }

  // The attribute's value slot, added if the key is new. Its text is not looked at: ascii()
  // then no longer promises anything.
  AttributeValue& slot(std::string_view key) {
    ascii_ = false;
    return find_or_add(key);
  }
  void set(std::string_view key, AttributeValue value) {
    const auto* text = std::get_if<std::string>(&value);
    const bool plain = is_ascii(key) && (text == nullptr || is_ascii(*text));
    find_or_add(key) = std::move(value);
    ascii_ = ascii_ && plain;
  }
  // A text value, written into the slot's own string when it held one.
  void set_text(std::string_view key, std::string_view value) {
    ascii_ = ascii_ && is_ascii(key) && is_ascii(value);
    AttributeValue& v = find_or_add(key);
    if (auto* text = std::get_if<std::string>(&v)) {
      text->assign(value.data(), value.size());
    } else {
      v.emplace<std::string>(value);
    }
  }
  void clear() noexcept {
    size_ = 0;
    ascii_ = true;
  }
  void reserve(std::size_t n) { slots_.reserve(n); }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  // Every key and text value is ASCII (so UTF-8, as protobuf's strings must be): what an
  // encoder need not check again. Known for what set() and set_text() wrote.
  [[nodiscard]] bool ascii() const noexcept { return ascii_; }
  [[nodiscard]] const Attribute* begin() const noexcept { return slots_.data(); }
  [[nodiscard]] const Attribute* end() const noexcept { return slots_.data() + size_; }

  // No byte at or past 0x80; eight bytes at a time.
  [[nodiscard]] static bool is_ascii(std::string_view s) noexcept {
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, sizeof w);
      if ((w & 0x8080808080808080ULL) != 0) return false;
    }
    for (; i < s.size(); ++i) {
      if (static_cast<unsigned char>(s[i]) >= 0x80) return false;
    }
    return true;
  }

 private:
  AttributeValue& find_or_add(std::string_view key) {
    for (std::size_t i = 0; i < size_; ++i) {
      if (slots_[i].key == key) return slots_[i].value;
    }
    if (size_ == slots_.size()) slots_.emplace_back();
    Attribute& a = slots_[size_++];
    a.key.assign(key.data(), key.size());
    return a.value;
  }

  std::vector<Attribute> slots_;  // the first size_ are the span's
  std::size_t size_ = 0;
  bool ascii_ = true;
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
  Attributes attributes;
  std::vector<SpanEvent> events;
  StatusCode status = StatusCode::unset;
  std::string status_message;
};

}  // namespace promptcache::telemetry
