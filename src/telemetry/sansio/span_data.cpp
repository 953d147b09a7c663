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

using ValueView = std::variant<bool, std::int64_t, double, std::string_view>;

ValueView view_of(const AttributeValue& value) noexcept {
  return std::visit([](const auto& v) -> ValueView { return v; }, value);
}

std::size_t any_value_size(const ValueView& value) noexcept {
  if (const auto* text = std::get_if<std::string_view>(&value)) {
    return pb::len_field_size(text->size());
  }
  if (const auto* i = std::get_if<std::int64_t>(&value)) {
    return 1 + pb::varint_size(static_cast<std::uint64_t>(*i));
  }
  return std::holds_alternative<bool>(value) ? 2 : 9;  // a double: fixed64
}

std::size_t key_value_size(std::string_view key, std::size_t any_value) noexcept {
  return pb::len_field_size(key.size()) + pb::len_field_size(any_value);
}

char* write_field(char* at, unsigned field, std::string_view key, const ValueView& value) noexcept {
  const std::size_t any = any_value_size(value);
  pb::Cursor c{at};
  c.len(field, key_value_size(key, any));
  c.bytes(key_field, key);
  c.len(value_field, any);
  if (const auto* text = std::get_if<std::string_view>(&value)) {
    c.bytes(string_value, *text);
  } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
    c.uint(int_value, static_cast<std::uint64_t>(*i));
  } else if (const auto* b = std::get_if<bool>(&value)) {
    c.uint(bool_value, *b ? 1 : 0);
  } else {
    c.fixed64(double_value, std::bit_cast<std::uint64_t>(*std::get_if<double>(&value)));
  }
  return c.at;
}

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

std::size_t key_value_field_size(const Attribute& attribute) noexcept {
  return pb::len_field_size(
      key_value_size(attribute.key, any_value_size(view_of(attribute.value))));
}

char* write_key_value_field(char* at, unsigned field, const Attribute& attribute) noexcept {
  return write_field(at, field, attribute.key, view_of(attribute.value));
}

void Attributes::set(std::string_view key, const AttributeValue& value) {
  put(key, view_of(value));
}

void Attributes::set_text(std::string_view key, std::string_view value) {
  put(key, value);
}

void Attributes::put(std::string_view key, const ValueView& value) {
  const auto* text = std::get_if<std::string_view>(&value);
  if (!valid_utf8(key) || (text != nullptr && !valid_utf8(*text))) {
    const std::string fixed_key = repaired_utf8(key);
    if (text == nullptr) {
      put(fixed_key, value);
    } else {
      put(fixed_key, std::string_view(repaired_utf8(*text)));
    }
    return;
  }
  if ((key_sizes_ & size_bit(key.size())) != 0) erase(key);
  const std::size_t any = any_value_size(value);
  const std::size_t kv = key_value_size(key, any);
  const std::size_t size = pb::len_field_size(kv);
  if (bytes_.size() + size > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("a span's attributes past 4 GiB");
  }
  const std::size_t offset = bytes_.size();
  bytes_.resize(offset + size);
  write_field(bytes_.data() + offset, span_attributes, key, value);
  // The key's bytes follow the field's tag and length, then the key's own.
  const std::size_t key_offset = offset + 1 + pb::varint_size(kv) + 1 + pb::varint_size(key.size());
  entries_.push_back({static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(size),
                      static_cast<std::uint32_t>(key_offset),
                      static_cast<std::uint32_t>(key.size())});
  key_sizes_ |= size_bit(key.size());
}

// A key set again: its earlier field goes (rare: most spans set each key once, and the callers
// look only for a key of a size an earlier key had).
void Attributes::erase(std::string_view key) noexcept {
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
    return;
  }
}

void Attributes::append(const Attributes& other) {
  if (this == &other) return;  // each of its keys set again: the same set
  if (empty()) {               // the common case, a fresh span: its fields and entries as they are
    bytes_.assign(other.bytes_);
    entries_.assign(other.entries_.begin(), other.entries_.end());
    key_sizes_ = other.key_sizes_;
    return;
  }
  for (const Entry& e : other.entries_) {
    const std::string_view key(other.bytes_.data() + e.key_offset, e.key_size);
    if ((key_sizes_ & size_bit(key.size())) != 0) erase(key);
    if (bytes_.size() + e.size > std::numeric_limits<std::uint32_t>::max()) {
      throw std::length_error("a span's attributes past 4 GiB");
    }
    const std::size_t offset = bytes_.size();
    bytes_.append(other.bytes_, e.offset, e.size);
    entries_.push_back({static_cast<std::uint32_t>(offset), e.size,
                        static_cast<std::uint32_t>(offset + (e.key_offset - e.offset)),
                        e.key_size});
    key_sizes_ |= size_bit(e.key_size);
  }
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
