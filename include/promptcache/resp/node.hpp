// One element of a RESP2/RESP3 reply as the parser yields it: a view into the read buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace promptcache::resp {

enum class Type : std::uint8_t {
  simple_string,    // +
  simple_error,     // -
  number,           // :
  double_type,      // ,
  boolean,          // #
  big_number,       // (
  blob_string,      // $
  blob_error,       // !
  verbatim_string,  // =  (value excludes the "txt:" format prefix; see Node::format)
  null,             // _  and RESP2 $-1 / *-1
  array,            // *
  map,              // %  (aggregate_size counts pairs)
  set,              // ~
  attribute,        // |  (aggregate_size counts pairs; precedes the reply it annotates)
  push,             // >
};

[[nodiscard]] constexpr bool is_aggregate(Type t) noexcept {
  return t == Type::array || t == Type::map || t == Type::set || t == Type::attribute ||
         t == Type::push;
}

[[nodiscard]] constexpr bool is_error(Type t) noexcept {
  return t == Type::simple_error || t == Type::blob_error;
}

// What the reply of a GET-like command is: a value (a blob, simple or verbatim string), none
// (null), a server's error, or anything else.
enum class ValueReply : std::uint8_t { value, none, error, unexpected };
[[nodiscard]] constexpr ValueReply value_reply(Type t) noexcept {
  if (t == Type::blob_string || t == Type::simple_string || t == Type::verbatim_string) {
    return ValueReply::value;
  }
  if (t == Type::null) return ValueReply::none;
  return is_error(t) ? ValueReply::error : ValueReply::unexpected;
}

[[nodiscard]] std::string_view to_string(Type t) noexcept;

struct Node {
  Type type = Type::null;
  // Number of child elements announced by an aggregate (pairs for map and attribute);
  // 0 for scalars.
  std::uint64_t aggregate_size = 0;
  // 0 for the root of a message, 1 for its children, and so on.
  std::uint32_t depth = 0;
  // The payload of a scalar, without type byte or CRLF. Valid until the buffer it was
  // parsed from changes.
  std::string_view value;
  // Three-letter format of a verbatim string ("txt", "mkd"); empty otherwise.
  std::string_view format;
};

}  // namespace promptcache::resp
