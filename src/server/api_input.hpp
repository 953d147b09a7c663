// What the API checks of a request before it acts: its route and method, its key, its JSON body
// and fields, its ids. Each check throws a Refusal (the status and the message the client sees)
// or returns the checked value. Plain functions, for api.cpp and its tests.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/verb.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "server/http_server.hpp"
#include "server/metrics.hpp"

namespace promptcache::server::input {

// A request the API refuses, with the status and the message the client sees.
struct Refusal {
  unsigned status;
  std::string message;
  std::string allow = {};  // 405: the methods the path takes
};

// A response with a JSON body (`body`: serialized JSON, or a value to serialize).
[[nodiscard]] Response json_text_response(unsigned status, std::string body);
[[nodiscard]] Response json_response(unsigned status, const boost::json::value& body);

// The body as a JSON object, every number in it exactly representable (400, 422 otherwise).
[[nodiscard]] boost::json::object parse_body(const Request& req);
// A string field: required unless `fallback` is given; `max` in characters (`too_long`: the
// status past it). No NUL characters.
[[nodiscard]] std::string string_field(const boost::json::object& o, std::string_view name,
                                       std::size_t max, const char* fallback = nullptr,
                                       unsigned too_long = 422);
[[nodiscard]] bool has_nul(std::string_view s);
[[nodiscard]] bool has_nul(const boost::json::value& v);
// 422 naming `name` when `found`.
void refuse_nul(std::string_view name, bool found);
[[nodiscard]] std::string checked_user(std::string_view user, std::size_t max_bytes);
[[nodiscard]] std::string checked_type(std::string_view type, std::size_t max);
// 64 hexadecimal characters, lower-cased.
[[nodiscard]] std::string checked_hash(std::string_view hash);
[[nodiscard]] std::size_t utf8_chars(std::string_view s);

// The route a path names (for the metrics too), before anything else is checked.
[[nodiscard]] Route route_of(const std::vector<std::string>& path, boost::beast::http::verb method);
// The methods a route answers: the request's must be one (405 with them in Allow otherwise).
[[nodiscard]] std::string_view allowed_methods(Route r);
[[nodiscard]] bool allows(Route r, boost::beast::http::verb method);
// Whether the request carries the key ("Authorization: Bearer KEY"; any request when there is
// no key). The scheme is case-insensitive (RFC 9110 §11.1).
[[nodiscard]] bool carries_key(const Request::header_type& h, std::string_view key);
// Compares without leaking, through timing, how much of a guess was right.
[[nodiscard]] bool same_secret(std::string_view a, std::string_view b);

}  // namespace promptcache::server::input
