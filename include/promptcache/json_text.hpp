// JSON text for people and for other parsers: Boost.JSON's serialization with doubles in their
// shortest round-trip form (0.8, not 8E-1), and the checks that keep unrepresentable numbers out.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace promptcache {

// Byte for byte what boost::json::serialize writes (same string escapes, no spaces, members in
// order), except doubles: the shortest text that reads back as the same double (std::to_chars)
// with the exponent's leading zeros dropped (1e-7, 1e+22, -1.5e-10; an integral double as 3).
// A NaN or infinity, which JSON cannot hold, is written as null.
[[nodiscard]] std::string json_text(const boost::json::value& v);
[[nodiscard]] std::string json_text(const boost::json::object& o);
[[nodiscard]] std::string json_text(const boost::json::array& a);
void json_text_append(std::string& out, const boost::json::value& v);
// `s` as a JSON string, quoted and escaped as above (bytes are passed through as they are: a
// caller with text that may not be UTF-8 makes it so first, see valid_utf8).
void json_string_append(std::string& out, std::string_view s);
// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF); `s` with each ill-formed sequence replaced by U+FFFD.
[[nodiscard]] bool valid_utf8(std::string_view s) noexcept;
[[nodiscard]] std::string repaired_utf8(std::string_view s);

// A number in untrusted JSON that would not survive parsing as the sender wrote it.
struct NumberProblem {
  std::string field;    // the top-level object member holding it; empty if none
  std::string literal;  // as written; cut to 40 characters and "…" when longer
  std::string reason;   // a short English phrase, e.g. "outside the range of a double"
};

// The first number in `text` that is out of a double's range (1e400), nonzero but too small to
// be anything but 0 (1e-400), or an integer beyond int64 and uint64 (which would lose digits as
// a double). nullopt when there is none, and for malformed JSON (reported by whoever parses it).
[[nodiscard]] std::optional<NumberProblem> find_unrepresentable_number(std::string_view text);

// boost::json::parse (default options, same errors) whose doubles are correctly rounded: the
// double nearest each literal, as std::from_chars reads it. Boost 1.81's own conversion is off by
// an ulp or more for a good share of literals with many digits or large exponents.
[[nodiscard]] boost::json::value parse_exact(std::string_view text, boost::system::error_code& ec,
                                             boost::json::storage_ptr sp = {});

}  // namespace promptcache
