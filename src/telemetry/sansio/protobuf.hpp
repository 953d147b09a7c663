// The protobuf wire format, as much of it as OTLP needs (protobuf.dev/programming-guides/
// encoding): varints, fixed 64- and 32-bit numbers, and length-delimited fields — bytes,
// strings and embedded messages. Writing appends to a std::string; reading checks every length
// against the bytes left, so a short or hostile input fails and never overruns.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace promptcache::telemetry::protobuf {

static_assert(std::endian::native == std::endian::little,
              "fixed64 fields are written as the host stores them");

enum class Wire : std::uint8_t { varint = 0, i64 = 1, len = 2, i32 = 5 };

// Writes `v` as a varint at `out` (room for ten bytes); returns how many it took.
inline std::size_t write_varint(char* out, std::uint64_t v) noexcept {
  std::size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<char>(v);
  return n;
}

inline void put_varint(std::string& out, std::uint64_t v) {
  char bytes[10];
  out.append(bytes, write_varint(bytes, v));
}

[[nodiscard]] constexpr std::size_t varint_size(std::uint64_t v) noexcept {
  std::size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

inline void put_tag(std::string& out, unsigned field, Wire wire) {
  put_varint(out, (std::uint64_t{field} << 3) | static_cast<std::uint8_t>(wire));
}

inline void put_bytes(std::string& out, unsigned field, std::string_view bytes) {
  put_tag(out, field, Wire::len);
  put_varint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

// An embedded message written in place: open() writes its tag and leaves room for the longest
// length a 32-bit size takes (5 bytes); close() writes the length and moves the body back over
// the room it did not need. A message's length is then known without a sizing pass.
[[nodiscard]] inline std::size_t open(std::string& out, unsigned field) {
  put_tag(out, field, Wire::len);
  out.append(5, '\0');
  return out.size();
}

inline void close(std::string& out, std::size_t body) {
  const std::size_t length = out.size() - body;
  char bytes[10];
  const std::size_t n = write_varint(bytes, length);
  if (n > 5) throw std::length_error("a protobuf message of 32 GiB or more");
  char* room = out.data() + body - 5;
  std::memcpy(room, bytes, n);
  if (n < 5) {
    std::memmove(room + n, out.data() + body, length);
    out.resize(out.size() - (5 - n));
  }
}

// A length-delimited field's size with a one-byte tag (field numbers below 16).
[[nodiscard]] constexpr std::size_t len_field_size(std::size_t length) noexcept {
  return 1 + varint_size(length) + length;
}

// Writes fields at a place sized beforehand: the caller's sizes are the bound, nothing is
// checked here. Field numbers below 16 (one-byte tags).
struct Cursor {
  char* at;

  void varint(std::uint64_t v) noexcept { at += write_varint(at, v); }
  void tag(unsigned field, Wire wire) noexcept {
    *at++ = static_cast<char>((field << 3) | static_cast<unsigned>(wire));
  }
  void len(unsigned field, std::size_t length) noexcept {
    tag(field, Wire::len);
    varint(length);
  }
  void raw(std::string_view v) noexcept {
    std::memcpy(at, v.data(), v.size());
    at += v.size();
  }
  void bytes(unsigned field, std::string_view v) noexcept {
    len(field, v.size());
    raw(v);
  }
  void uint(unsigned field, std::uint64_t v) noexcept {
    tag(field, Wire::varint);
    varint(v);
  }
  void fixed64(unsigned field, std::uint64_t v) noexcept {
    tag(field, Wire::i64);
    std::memcpy(at, &v, sizeof v);
    at += sizeof v;
  }
};

// Reads fields one after another. Every method returns false, reading nothing more, when the
// input does not hold what it should.
class Reader {
 public:
  explicit Reader(std::string_view in) noexcept : in_(in) {}

  [[nodiscard]] bool done() const noexcept { return in_.empty(); }
  [[nodiscard]] std::string_view rest() const noexcept { return in_; }

  bool varint(std::uint64_t& v) noexcept {
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) return false;
      const auto byte = static_cast<std::uint8_t>(in_.front());
      in_.remove_prefix(1);
      v |= std::uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;  // longer than ten bytes
  }
  bool tag(unsigned& field, Wire& wire) noexcept {
    std::uint64_t t = 0;
    if (!varint(t) || (t >> 3) == 0 || (t >> 3) > 0x1fffffff) return false;
    field = static_cast<unsigned>(t >> 3);
    wire = static_cast<Wire>(t & 7);
    return true;
  }
  bool fixed64(std::uint64_t& v) noexcept {
    if (in_.size() < sizeof v) return false;
    std::memcpy(&v, in_.data(), sizeof v);
    in_.remove_prefix(sizeof v);
    return true;
  }
  bool bytes(std::string_view& v) noexcept {
    std::uint64_t n = 0;
    if (!varint(n) || n > in_.size()) return false;
    v = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  // Steps over a field of a kind this reader does not use.
  bool skip(Wire wire) noexcept {
    std::uint64_t ignored = 0;
    std::string_view ignored_bytes;
    switch (wire) {
      case Wire::varint:
        return varint(ignored);
      case Wire::i64:
        return fixed64(ignored);
      case Wire::len:
        return bytes(ignored_bytes);
      case Wire::i32:
        if (in_.size() < 4) return false;
        in_.remove_prefix(4);
        return true;
    }
    return false;
  }

 private:
  std::string_view in_;
};

}  // namespace promptcache::telemetry::protobuf
