#include "server/framing.hpp"

#include <cctype>
#include <string_view>

#include <boost/beast/http/field.hpp>

namespace promptcache::server {

namespace http = boost::beast::http;

namespace {

std::string lower_trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<FramingRefusal> framing_problem(const http::request_header<>& h) {
  // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host.
  const auto hosts = h.count(http::field::host);
  if (h.version() >= 11 && hosts == 0) return FramingRefusal{400, "the Host header is required"};
  if (hosts > 1) return FramingRefusal{400, "more than one Host header"};
  // §6.1: chunked is the only transfer coding this server decodes; anything else (identity,
  // gzip, a chain ending elsewhere) would leave the body's end to guesswork: 501. With a
  // Content-Length too, the message is ambiguous (request smuggling): 400.
  if (h.count(http::field::transfer_encoding) == 0) return std::nullopt;
  if (h.count(http::field::content_length) > 0) {
    return FramingRefusal{400, "Transfer-Encoding and Content-Length together"};
  }
  // Chunked exactly once (§7.1: never applied twice), across every Transfer-Encoding field.
  int chunked = 0;
  for (const auto& field : h) {
    if (field.name() != http::field::transfer_encoding) continue;
    std::string_view codings = field.value();
    while (!codings.empty()) {
      const auto comma = codings.find(',');
      if (lower_trimmed(codings.substr(0, comma)) != "chunked") {
        return FramingRefusal{501, "only the chunked transfer coding is accepted"};
      }
      ++chunked;
      codings = comma == std::string_view::npos ? std::string_view() : codings.substr(comma + 1);
    }
  }
  if (chunked != 1) return FramingRefusal{400, "chunked applied more than once"};
  return std::nullopt;
}

}  // namespace promptcache::server
