#include "server/api_input.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "promptcache/json_text.hpp"

namespace promptcache::server::input {

namespace http = boost::beast::http;
namespace json = boost::json;

// `body` is serialized JSON.
Response json_text_response(unsigned status, std::string body) {
  Response res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

Response json_response(unsigned status, const json::value& body) {
  return json_text_response(status, json_text(body));
}

std::size_t utf8_chars(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// What is stored is what is served: a number no double can keep exactly as written (out of
// range, underflowing to 0, an integer beyond 64 bits) is refused, naming its field.
json::object parse_body(const Request& req) {
  boost::system::error_code ec;
  json::value v = parse_exact(req.body(), ec);
  if (ec) throw Refusal{400, fmt::format("malformed JSON: {}", ec.message())};
  if (!v.is_object()) throw Refusal{422, "the body must be a JSON object"};
  if (auto bad = find_unrepresentable_number(req.body())) {
    throw Refusal{422, fmt::format("{}: the number {} is {}",
                                   bad->field.empty() ? std::string("body") : bad->field,
                                   bad->literal, bad->reason)};
  }
  return std::move(v.as_object());
}

// PostgreSQL text cannot hold U+0000 (libpq would cut the string there, turning one user id
// into another), so no backend gets one: refused with the field's name.
bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

bool has_nul(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return has_nul(std::string_view(v.get_string()));
    case json::kind::array:
      return std::any_of(v.get_array().begin(), v.get_array().end(),
                         [](const json::value& e) { return has_nul(e); });
    case json::kind::object:
      return std::any_of(v.get_object().begin(), v.get_object().end(), [](const auto& kv) {
        return has_nul(std::string_view(kv.key())) || has_nul(kv.value());
      });
    default:
      return false;
  }
}

void refuse_nul(std::string_view name, bool found) {
  if (found) throw Refusal{422, fmt::format("{}: must not contain NUL characters", name)};
}

// A string field: required unless `fallback` is given; `max` in characters.
std::string string_field(const json::object& o, std::string_view name, std::size_t max,
                         const char* fallback, unsigned too_long) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) {
    if (fallback != nullptr) return fallback;
    throw Refusal{422, fmt::format("{}: required", name)};
  }
  if (!v->is_string()) throw Refusal{422, fmt::format("{}: must be a string", name)};
  const json::string& s = v->as_string();
  if (s.empty()) throw Refusal{422, fmt::format("{}: must not be empty", name)};
  refuse_nul(name, has_nul(std::string_view(s)));
  if (utf8_chars(s) > max) {
    throw Refusal{too_long, fmt::format("{}: longer than {} characters", name, max)};
  }
  return std::string(s);
}

std::string checked_user(std::string_view user, std::size_t max_bytes) {
  if (user.empty()) throw Refusal{422, "user_id: required"};
  refuse_nul("user_id", has_nul(user));
  if (user.size() > max_bytes) {
    throw Refusal{422, fmt::format("user_id: longer than {} bytes", max_bytes)};
  }
  return std::string(user);
}

std::string checked_type(std::string_view type, std::size_t max) {
  if (type.empty()) throw Refusal{422, "analysis_type: must not be empty"};
  refuse_nul("analysis_type", has_nul(type));
  if (utf8_chars(type) > max) {
    throw Refusal{422, fmt::format("analysis_type: longer than {} characters", max)};
  }
  return std::string(type);
}

std::string checked_hash(std::string_view hash) {
  std::string h(hash);
  const bool hex =
      h.size() == 64 && std::all_of(h.begin(), h.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      });
  if (!hex) throw Refusal{422, "prompt_hash: must be 64 hexadecimal characters (SHA-256)"};
  std::transform(h.begin(), h.end(), h.begin(),
                 [](char c) { return static_cast<char>(c >= 'A' && c <= 'F' ? c + 32 : c); });
  return h;
}

// Compares without leaking, through timing, how much of a guess was right.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// The route a path names (for metrics), before anything else is checked.
Route route_of(const std::vector<std::string>& path, http::verb method) {
  auto is = [&](std::initializer_list<std::string_view> expected) {
    return path.size() == expected.size() && std::equal(path.begin(), path.end(), expected.begin());
  };
  if (is({"v1", "analyses"})) return Route::analyses_create;
  if (is({"v1", "analyses", "lookup"})) return Route::analyses_lookup;
  if (path.size() == 3 && path[0] == "v1" && path[1] == "analyses") {
    return method == http::verb::delete_ ? Route::analyses_delete : Route::analyses_get;
  }
  if (path.size() == 5 && path[0] == "v1" && path[1] == "users" && path[3] == "analyses" &&
      path[4] == "cache") {
    return Route::user_cache_delete;
  }
  if (is({"v1", "stats"})) return Route::stats;
  if (is({"metrics"})) return Route::metrics;
  if (is({"healthz"})) return Route::healthz;
  if (is({"readyz"})) return Route::readyz;
  return Route::unknown;
}

// The methods a route answers: the request's must be one (405 with them in Allow otherwise).
std::string_view allowed_methods(Route r) {
  switch (r) {
    case Route::analyses_create:
    case Route::analyses_lookup:
      return "POST";
    case Route::analyses_get:
    case Route::analyses_delete:
      return "GET, DELETE";
    case Route::user_cache_delete:
      return "DELETE";
    default:
      return "GET";
  }
}

bool allows(Route r, http::verb method) {
  const std::string_view allowed = allowed_methods(r);
  return allowed.find(http::to_string(method)) != std::string_view::npos;
}

// Whether the request carries the key ("Authorization: Bearer KEY"; any request when there is
// no key). The scheme is case-insensitive (RFC 9110 §11.1): "bearer" and "BEARER" are Bearer.
bool carries_key(const Request::header_type& h, std::string_view key) {
  if (key.empty()) return true;
  const std::string_view auth = h[http::field::authorization];
  constexpr std::string_view bearer = "bearer ";
  const bool is_bearer = auth.size() >= bearer.size() &&
                         std::equal(bearer.begin(), bearer.end(), auth.begin(), [](char a, char b) {
                           return a == std::tolower(static_cast<unsigned char>(b));
                         });
  return is_bearer && same_secret(auth.substr(bearer.size()), key);
}

}  // namespace promptcache::server::input
