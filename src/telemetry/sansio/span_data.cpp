#include "telemetry/sansio/span_data.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "promptcache/json_text.hpp"
#include "telemetry/sansio/protobuf.hpp"

namespace promptcache::telemetry {
namespace {

namespace pb = protobuf;

constexpr unsigned span_attributes = 9;             // Span.attributes
constexpr unsigned key_field = 1, value_field = 2;  // KeyValue
constexpr unsigned string_value = 1, bool_value = 2, int_value = 3, double_value = 4;  // AnyValue

// Each tag written here is one byte (field numbers below 16).
constexpr std::size_t len_field_size(std::size_t n) noexcept {
  return 1 + pb::varint_size(n) + n;
}

// No byte at or past 0x80: ASCII, so UTF-8. Most text is; checked eight bytes at a time.
bool ascii(std::string_view s) noexcept {
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

bool utf8(std::string_view s) noexcept {
  return ascii(s) || valid_utf8(s);
}

// Writes at a place sized beforehand.
struct Cursor {
  char* at;
  void varint(std::uint64_t v) noexcept { at += pb::write_varint(at, v); }
  void tag(unsigned number, pb::Wire wire) noexcept {
    *at++ = static_cast<char>((number << 3) | static_cast<unsigned>(wire));
  }
  void len(unsigned number, std::size_t n) noexcept {
    tag(number, pb::Wire::len);
    varint(n);
  }
  void bytes(unsigned number, std::string_view v) noexcept {
    len(number, v.size());
    std::memcpy(at, v.data(), v.size());
    at += v.size();
  }
};

bool read_any_value(std::string_view message, AttributeValue& slot) {
  pb::Reader r(message);
  bool seen = false;
  while (!r.done()) {
    unsigned number = 0;
    pb::Wire wire{};
    if (!r.tag(number, wire)) return false;
    std::uint64_t n = 0;
    if (number == string_value && wire == pb::Wire::len) {
      std::string_view s;
      if (!r.bytes(s)) return false;
      if (auto* held = std::get_if<std::string>(&slot)) {
        held->assign(s.data(), s.size());
      } else {
        slot.emplace<std::string>(s);
      }
    } else if (number == bool_value && wire == pb::Wire::varint) {
      if (!r.varint(n)) return false;
      slot = n != 0;
    } else if (number == int_value && wire == pb::Wire::varint) {
      if (!r.varint(n)) return false;
      slot = static_cast<std::int64_t>(n);
    } else if (number == double_value && wire == pb::Wire::i64) {
      if (!r.fixed64(n)) return false;
      slot = std::bit_cast<double>(n);
    } else {
      if (!r.skip(wire)) return false;
      continue;
    }
    seen = true;
  }
  return seen;  // arrays, maps and bytes are not written by this process
}

}  // namespace

bool read_attribute(std::string_view key_value, Attribute& out) {
  pb::Reader r(key_value);
  std::string_view key;
  std::string_view value;
  bool has_key = false;
  bool has_value = false;
  while (!r.done()) {
    unsigned number = 0;
    pb::Wire wire{};
    if (!r.tag(number, wire)) return false;
    if (wire == pb::Wire::len && number == key_field) {
      if (!r.bytes(key)) return false;
      has_key = true;
    } else if (wire == pb::Wire::len && number == value_field) {
      if (!r.bytes(value)) return false;
      has_value = true;
    } else if (!r.skip(wire)) {
      return false;
    }
  }
  if (!has_key || !has_value) return false;
  out.key.assign(key.data(), key.size());
  return read_any_value(value, out.value);
}

void Attributes::set(std::string_view key, const AttributeValue& value) {
  if (const auto* text = std::get_if<std::string>(&value)) {
    set_text(key, *text);
  } else {
    put(key, &value, {});
  }
}

void Attributes::set_text(std::string_view key, std::string_view value) {
  put(key, nullptr, value);
}

void Attributes::put(std::string_view key, const AttributeValue* value, std::string_view text) {
  if (!utf8(key) || (value == nullptr && !utf8(text))) {
    const std::string fixed_key = utf8(key) ? std::string(key) : repaired_utf8(key);
    if (value != nullptr) {
      put(fixed_key, value, {});
    } else {
      put(fixed_key, nullptr, utf8(text) ? std::string(text) : repaired_utf8(text));
    }
    return;
  }
  // A key set again: its earlier field goes (rare: most spans set each key once).
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->key_size != key.size() ||
        std::memcmp(bytes_.data() + it->key_offset, key.data(), key.size()) != 0) {
      continue;
    }
    const Entry gone = *it;
    bytes_.erase(gone.offset, gone.size);
    for (auto later = entries_.erase(it); later != entries_.end(); ++later) {
      later->offset -= gone.size;
      later->key_offset -= gone.size;
    }
    break;
  }
  std::size_t any = 0;
  std::uint64_t number = 0;
  if (value == nullptr) {
    any = len_field_size(text.size());
  } else if (const auto* i = std::get_if<std::int64_t>(value)) {
    number = static_cast<std::uint64_t>(*i);
    any = 1 + pb::varint_size(number);
  } else if (const auto* b = std::get_if<bool>(value)) {
    number = *b ? 1 : 0;
    any = 2;
  } else {
    number = std::bit_cast<std::uint64_t>(*std::get_if<double>(value));
    any = 9;
  }
  const std::size_t kv = len_field_size(key.size()) + len_field_size(any);
  const std::size_t field = len_field_size(kv);
  if (bytes_.size() + field > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("a span's attributes past 4 GiB");
  }
  const std::size_t offset = bytes_.size();
  bytes_.resize(offset + field);
  Cursor c{bytes_.data() + offset};
  c.len(span_attributes, kv);
  c.len(key_field, key.size());
  const std::size_t key_offset = static_cast<std::size_t>(c.at - bytes_.data());
  std::memcpy(c.at, key.data(), key.size());
  c.at += key.size();
  c.len(value_field, any);
  if (value == nullptr) {
    c.bytes(string_value, text);
  } else if (std::holds_alternative<double>(*value)) {
    c.tag(double_value, pb::Wire::i64);
    std::memcpy(c.at, &number, sizeof number);
    c.at += sizeof number;
  } else {
    c.tag(std::holds_alternative<bool>(*value) ? bool_value : int_value, pb::Wire::varint);
    c.varint(number);
  }
  entries_.push_back({static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(field),
                      static_cast<std::uint32_t>(key_offset),
                      static_cast<std::uint32_t>(key.size())});
}

void Attributes::decode(std::vector<Attribute>& out) const {
  out.resize(entries_.size());
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    pb::Reader r(std::string_view(bytes_).substr(entries_[i].offset, entries_[i].size));
    unsigned number = 0;
    pb::Wire wire{};
    std::string_view key_value;
    // Written by put(): always readable.
    if (!r.tag(number, wire) || !r.bytes(key_value) || !read_attribute(key_value, out[i])) {
      throw std::logic_error("Attributes: a field that put() did not write");
    }
  }
}

std::vector<Attribute> Attributes::decoded() const {
  std::vector<Attribute> out;
  decode(out);
  return out;
}

std::optional<AttributeValue> Attributes::get(std::string_view key) const {
  for (const Attribute& a : decoded()) {
    if (a.key == key) return a.value;
  }
  return std::nullopt;
}

}  // namespace promptcache::telemetry
