#include "telemetry/sansio/span_record.hpp"

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace promptcache::telemetry {
namespace {

template <class T>
void put(std::string& out, const T& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put_text(std::string& out, std::string_view s) {
  put(out, static_cast<std::uint32_t>(s.size()));
  out.append(s.data(), s.size());
}

enum class Type : std::uint8_t { boolean, integer, real, text };

template <class List>
void put_attributes(std::string& out, const List& list) {
  put(out, static_cast<std::uint32_t>(list.size()));
  for (const Attribute& a : list) {
    put_text(out, a.key);
    std::visit(
        [&out](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) {
            put(out, Type::boolean);
            put(out, static_cast<std::uint8_t>(v));
          } else if constexpr (std::is_same_v<T, std::int64_t>) {
            put(out, Type::integer);
            put(out, v);
          } else if constexpr (std::is_same_v<T, double>) {
            put(out, Type::real);
            put(out, v);
          } else {
            put(out, Type::text);
            put_text(out, v);
          }
        },
        a.value);
  }
}

// Reads from a record; every read checks the room left (a short record fails, never overruns).
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <class T>
  bool get(T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (in_.size() < sizeof v) return false;
    std::memcpy(&v, in_.data(), sizeof v);
    in_.remove_prefix(sizeof v);
    return true;
  }
  bool text(std::string_view& s) {
    std::uint32_t n = 0;
    if (!get(n) || in_.size() < n) return false;
    s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool text(std::string& s) {
    std::string_view v;
    if (!text(v)) return false;
    s.assign(v.data(), v.size());
    return true;
  }
  // One attribute's value into `slot`.
  bool value(AttributeValue& slot) {
    Type type{};
    if (!get(type)) return false;
    switch (type) {
      case Type::boolean: {
        std::uint8_t b = 0;
        if (!get(b)) return false;
        slot = b != 0;
        return true;
      }
      case Type::integer: {
        std::int64_t i = 0;
        if (!get(i)) return false;
        slot = i;
        return true;
      }
      case Type::real: {
        double d = 0;
        if (!get(d)) return false;
        slot = d;
        return true;
      }
      case Type::text: {
        std::string_view s;
        if (!text(s)) return false;
        if (auto* held = std::get_if<std::string>(&slot)) {
          held->assign(s.data(), s.size());
        } else {
          slot.emplace<std::string>(s);
        }
        return true;
      }
    }
    return false;
  }
  [[nodiscard]] std::string_view rest() const noexcept { return in_; }

 private:
  std::string_view in_;
};

bool read_attributes(Reader& r, Attributes& into) {
  std::uint32_t n = 0;
  if (!r.get(n)) return false;
  into.clear();
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.text(key) || !r.value(into.slot(key))) return false;
  }
  return true;
}

bool read_attributes(Reader& r, std::vector<Attribute>& into) {
  std::uint32_t n = 0;
  if (!r.get(n)) return false;
  into.clear();
  for (std::uint32_t i = 0; i < n; ++i) {
    Attribute& a = into.emplace_back();
    if (!r.text(a.key) || !r.value(a.value)) return false;
  }
  return true;
}

}  // namespace

void write_span_record(std::string& out, const SpanData& s) {
  put(out, s.trace_id);
  put(out, s.span_id);
  put(out, s.parent_span_id);
  put(out, s.kind);
  put(out, s.status);
  put(out, s.start_ns);
  put(out, s.end_ns);
  put_text(out, s.name);
  put_text(out, s.trace_state);
  put_text(out, s.status_message);
  put_attributes(out, s.attributes);
  put(out, static_cast<std::uint32_t>(s.events.size()));
  for (const SpanEvent& e : s.events) {
    put_text(out, e.name);
    put(out, e.time_ns);
    put_attributes(out, e.attributes);
  }
}

bool read_span_record(std::string_view& in, SpanData& s) {
  Reader r(in);
  std::uint32_t events = 0;
  if (!r.get(s.trace_id) || !r.get(s.span_id) || !r.get(s.parent_span_id) || !r.get(s.kind) ||
      !r.get(s.status) || !r.get(s.start_ns) || !r.get(s.end_ns) || !r.text(s.name) ||
      !r.text(s.trace_state) || !r.text(s.status_message) || !read_attributes(r, s.attributes) ||
      !r.get(events)) {
    return false;
  }
  s.events.resize(events);
  for (SpanEvent& e : s.events) {
    if (!r.text(e.name) || !r.get(e.time_ns) || !read_attributes(r, e.attributes)) return false;
  }
  in = r.rest();
  return true;
}

}  // namespace promptcache::telemetry
