// JSON text with doubles in shortest round-trip form, the unrepresentable-number check, and a
// parse whose doubles are correctly rounded.
#include "promptcache/json_text.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/value_stack.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

namespace promptcache {
namespace json = boost::json;
using boost::system::error_code;

namespace {

// What follows the backslash for each byte Boost.JSON escapes: 'u' means \u00XX, 0 no escape.
// Everything from 0x20 up, 0x7f and UTF-8 included, passes through as Boost's serializer does.
constexpr std::array<char, 256> escapes = [] {
  std::array<char, 256> t{};
  for (std::size_t c = 0; c < 0x20; ++c) t[c] = 'u';
  t['\b'] = 'b';
  t['\t'] = 't';
  t['\n'] = 'n';
  t['\f'] = 'f';
  t['\r'] = 'r';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}();

// Whether any of the 8 bytes in `w` needs an escape: below 0x20, '"' or '\\'. Exact as a yes or
// no (the bit positions past the first hit are not), which is all the fast path needs.
constexpr bool needs_escape(std::uint64_t w) {
  constexpr std::uint64_t ones = 0x0101010101010101;
  constexpr std::uint64_t highs = 0x8080808080808080;
  const auto has_zero = [](std::uint64_t x) { return ((x - ones) & ~x & highs) != 0; };
  const bool control = ((w - ones * 0x20) & ~w & highs) != 0;
  return control || has_zero(w ^ (ones * '"')) || has_zero(w ^ (ones * '\\'));
}

void append_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  const char* run = s.data();
  const char* const end = s.data() + s.size();
  const char* p = run;
  while (p != end) {
    // Most text has nothing to escape: skip it 8 bytes at a time.
    if (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, sizeof w);
      if (!needs_escape(w)) {
        p += 8;
        continue;
      }
    }
    const auto byte = static_cast<unsigned char>(*p);
    const char e = escapes[byte];
    ++p;
    if (e == 0) continue;
    out.append(run, p - 1);
    if (e == 'u') {
      const char u[] = {'\\', 'u', '0', '0', hex[byte >> 4], hex[byte & 15]};
      out.append(u, sizeof u);
    } else {
      const char two[] = {'\\', e};
      out.append(two, sizeof two);
    }
    run = p;
  }
  out.append(run, end);
  out.push_back('"');
}

void append_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out.append("null");
    return;
  }
  // The longest shortest form is 24 characters (-2.2250738585072014e-308).
  char buf[32];
  char* end = std::to_chars(buf, buf + sizeof buf, d).ptr;
  char* e = std::find(buf, end, 'e');
  // Past uint64 and int64 (from 2^64 up, below -2^63), a plain integer such as
  // 123456789012345683968 (1.2345678901234568e20) is one Boost reads with its inexact
  // conversion and find_unrepresentable_number refuses. The shortest scientific form is neither.
  if (e == end && (d >= 0x1p64 || d < -0x1p63)) {
    end = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific).ptr;
    e = std::find(buf, end, 'e');
  }
  // to_chars writes the exponent as printf does, with at least two digits (1e-07).
  if (e != end) {
    char* const digits = e + 2;  // past the sign, which to_chars always writes
    char* first = digits;
    while (first + 1 < end && *first == '0') ++first;
    end = std::copy(first, end, digits);
  }
  out.append(buf, end);
}

template <class Int>
void append_integer(std::string& out, Int i) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, i).ptr);
}

void append_value(std::string& out, const json::value& v);

void append_object(std::string& out, const json::object& o) {
  out.push_back('{');
  bool first = true;
  for (const auto& member : o) {
    if (!first) out.push_back(',');
    first = false;
    append_string(out, {member.key().data(), member.key().size()});
    out.push_back(':');
    append_value(out, member.value());
  }
  out.push_back('}');
}

void append_array(std::string& out, const json::array& a) {
  out.push_back('[');
  bool first = true;
  for (const auto& element : a) {
    if (!first) out.push_back(',');
    first = false;
    append_value(out, element);
  }
  out.push_back(']');
}

void append_value(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out.append("null");
      return;
    case json::kind::bool_:
      out.append(v.get_bool() ? "true" : "false");
      return;
    case json::kind::int64:
      append_integer(out, v.get_int64());
      return;
    case json::kind::uint64:
      append_integer(out, v.get_uint64());
      return;
    case json::kind::double_:
      append_double(out, v.get_double());
      return;
    case json::kind::string:
      append_string(out, {v.get_string().data(), v.get_string().size()});
      return;
    case json::kind::array:
      append_array(out, v.get_array());
      return;
    case json::kind::object:
      append_object(out, v.get_object());
      return;
  }
}

// A guess at the text's size from the first level only: cheap, and enough to skip the first few
// doublings of the buffer for the usual flat objects.
std::size_t size_hint(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return v.get_string().size() + 2;
    case json::kind::array:
      return 2 + 24 * v.get_array().size();
    case json::kind::object: {
      std::size_t n = 2;
      for (const auto& member : v.get_object()) {
        n += member.key().size() + 4;
        n += member.value().is_string() ? member.value().get_string().size() + 2 : 24;
      }
      return n;
    }
    default:
      return 24;
  }
}

// ---- reading numbers ----

// The double nearest `literal`. When from_chars finds it out of range, Boost's own reading
// (`approx`, infinite or 0 or next to them) tells which way it went.
double exact_double(std::string_view literal, double approx) {
  double d = 0;
  const auto [ptr, ec] = std::from_chars(literal.data(), literal.data() + literal.size(), d);
  if (ec == std::errc() && ptr == literal.data() + literal.size()) return d;
  const bool negative = !literal.empty() && literal.front() == '-';
  const double magnitude = std::abs(approx) >= 1 ? std::numeric_limits<double>::infinity() : 0.0;
  return negative ? -magnitude : magnitude;
}

bool is_integer_literal(std::string_view literal) {
  return literal.find_first_of(".eE") == std::string_view::npos;
}

bool mantissa_is_nonzero(std::string_view literal) {
  const std::string_view mantissa = literal.substr(0, literal.find_first_of("eE"));
  return mantissa.find_first_of("123456789") != std::string_view::npos;
}

// Boost hands over a number split across buffers in pieces (on_number_part) and the rest with
// its value; this puts the pieces back together without copying the usual, unsplit, literal.
class LiteralParts {
 public:
  void add(json::string_view part) { parts_.append(part.data(), part.size()); }
  // The whole literal, valid until the next call to add or complete.
  std::string_view complete(json::string_view last) {
    if (parts_.empty()) return {last.data(), last.size()};
    parts_.append(last.data(), last.size());
    whole_.swap(parts_);
    parts_.clear();
    return whole_;
  }
  void clear() { parts_.clear(); }

 private:
  std::string parts_;
  std::string whole_;
};

class NumberChecker {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    --depth_;
    return true;
  }
  bool on_array_begin(error_code&) {
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, error_code&) {
    --depth_;
    return true;
  }
  // Only the top-level object's keys can be a field: keys deeper down (or in a top-level array)
  // arrive at depth 2 and more.
  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    if (depth_ == 1 && !problem_) key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code&) {
    if (depth_ == 1 && !problem_) {
      key_.append(s.data(), s.size());
      field_.swap(key_);
      key_.clear();
    }
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, error_code&) { return true; }
  bool on_number_part(json::string_view s, error_code&) {
    literal_.add(s);
    return true;
  }
  bool on_int64(std::int64_t, json::string_view, error_code&) {
    literal_.clear();
    return true;
  }
  bool on_uint64(std::uint64_t, json::string_view, error_code&) {
    literal_.clear();
    return true;
  }
  bool on_double(double d, json::string_view last, error_code&) {
    const std::string_view literal = literal_.complete(last);
    if (!problem_) check(d, literal);
    return true;
  }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

  [[nodiscard]] std::optional<NumberProblem> problem() && { return std::move(problem_); }

 private:
  // Boost's reading and the correctly rounded one can fall on either side of a limit near
  // DBL_MAX or the smallest subnormal: whichever a caller parses with, refused if either is bad.
  void check(double approx, std::string_view literal) {
    const char* reason = nullptr;
    if (is_integer_literal(literal)) {
      // Boost makes a double of an integer only when int64 and uint64 cannot hold it.
      reason = "integer too large to keep exactly";
    } else {
      const double exact = exact_double(literal, approx);
      if (std::isnan(approx)) {
        // Boost 1.81 computes 0 * 10^e, and 10^e is infinite past 308: 0e309 reads as NaN,
        // which boost::json::serialize then writes as the invalid text NaN.
        reason = "zero with an exponent too large to read (write 0)";
      } else if (!std::isfinite(approx) || !std::isfinite(exact)) {
        reason = "outside the range of a double";
      } else if ((approx == 0 || exact == 0) && mantissa_is_nonzero(literal)) {
        reason = "too small for a double (would read as 0)";
      }
    }
    if (reason == nullptr) return;
    constexpr std::size_t max_literal = 40;
    std::string shown(literal.substr(0, max_literal));
    if (literal.size() > max_literal) shown += "\u2026";
    problem_ = NumberProblem{field_, std::move(shown), reason};
  }

  int depth_ = 0;
  std::string key_;
  std::string field_;
  LiteralParts literal_;
  std::optional<NumberProblem> problem_;
};

// Boost.JSON's own value-building handler (boost/json/detail/handler.hpp), but for doubles.
class ExactHandler {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  ExactHandler(unsigned char* temp, std::size_t temp_size) : st_({}, temp, temp_size) {}

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) { return true; }
  bool on_object_end(std::size_t n, error_code&) {
    st_.push_object(n);
    return true;
  }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t n, error_code&) {
    st_.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    st_.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code&) {
    st_.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, error_code&) {
    st_.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, error_code&) {
    st_.push_string(s);
    return true;
  }
  bool on_number_part(json::string_view s, error_code&) {
    literal_.add(s);
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, error_code&) {
    literal_.clear();
    st_.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, error_code&) {
    literal_.clear();
    st_.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view last, error_code&) {
    st_.push_double(exact_double(literal_.complete(last), d));
    return true;
  }
  bool on_bool(bool b, error_code&) {
    st_.push_bool(b);
    return true;
  }
  bool on_null(error_code&) {
    st_.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

  json::value_stack& stack() { return st_; }

 private:
  json::value_stack st_;
  LiteralParts literal_;
};

}  // namespace

void json_text_append(std::string& out, const json::value& v) {
  append_value(out, v);
}

void json_string_append(std::string& out, std::string_view s) {
  append_string(out, s);
}

namespace {

// The length of the well-formed UTF-8 sequence at s[i], or 0 (RFC 3629's table).
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

bool valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    // Most text is ASCII: eight bytes at a time while no byte is at or past 0x80.
    std::uint64_t word;
    if (i + sizeof word <= s.size()) {
      std::memcpy(&word, s.data() + i, sizeof word);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += sizeof word;
        continue;
      }
    }
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string repaired_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for the one byte that cannot start a sequence here
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string json_text(const json::value& v) {
  std::string out;
  out.reserve(size_hint(v));
  append_value(out, v);
  return out;
}

std::string json_text(const json::object& o) {
  std::string out;
  append_object(out, o);
  return out;
}

std::string json_text(const json::array& a) {
  std::string out;
  append_array(out, a);
  return out;
}

std::optional<NumberProblem> find_unrepresentable_number(std::string_view text) {
  json::basic_parser<NumberChecker> parser{json::parse_options{}};
  error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (ec || used != text.size() || !parser.done()) return std::nullopt;
  return std::move(parser.handler()).problem();
}

json::value parse_exact(std::string_view text, error_code& ec, json::storage_ptr sp) {
  // As boost::json::parse does: the parse's scratch stack starts in this buffer.
  unsigned char temp[BOOST_JSON_STACK_BUFFER_SIZE];
  json::basic_parser<ExactHandler> parser{json::parse_options{}, temp, sizeof temp};
  parser.handler().stack().reset(std::move(sp));
  ec = {};
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = json::error::extra_data;
  if (!ec && !parser.done()) ec = json::error::incomplete;
  if (ec) return nullptr;
  return parser.handler().stack().release();
}

}  // namespace promptcache
