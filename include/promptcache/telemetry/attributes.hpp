// A span's attributes, kept as OTLP/protobuf sends them — and a set of them prepared once for
// many spans (a connection's peer, say: ScopedSpan::set(const Attributes&) appends the set in
// one copy, where setting each would encode each again).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace promptcache::telemetry {

using AttributeValue = std::variant<bool, std::int64_t, double, std::string>;

struct Attribute {
  std::string key;
  AttributeValue value;
};

// Each attribute a Span.attributes field (9: its tag, its length, the KeyValue message) in the
// order set, encoded as it is set into a buffer kept — clear() keeps its room (the tracer pools
// spans: no allocation once warm), and a finished span's attributes go into its record in one
// copy. A key set again replaces its earlier field. Text that is not UTF-8 (a hostile header,
// say) is repaired as it is set: protobuf receivers refuse a string that is not, and with it the
// whole batch.
class Attributes {
 public:
  Attributes() = default;
  Attributes(std::initializer_list<Attribute> list) {
    for (const Attribute& a : list) set(a.key, a.value);
  }

  void set(std::string_view key, const AttributeValue& value);
  void set_text(std::string_view key, std::string_view value);
  // Every attribute of `other`, in its order, as if each were set (as they are, encoded: one
  // copy when this set is empty).
  void append(const Attributes& other);
  void clear() noexcept {
    bytes_.clear();
    entries_.clear();
    key_sizes_ = 0;
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
  // Drops the field of `key`, if there is one.
  void erase(std::string_view key) noexcept;
  static std::uint64_t size_bit(std::size_t key_size) noexcept {
    return std::uint64_t{1} << (key_size % 64);
  }

  std::string bytes_;
  std::vector<Entry> entries_;
  std::uint64_t key_sizes_ = 0;  // a bit for each key's size (mod 64): most keys set are new
};

}  // namespace promptcache::telemetry
