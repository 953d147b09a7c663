// What RFC 9112 asks of a request's framing, checked once its header is read and before any of
// its body is: a status and a message when the request must be refused (and the connection
// closed, since where its body ends is then unknown). Sans-IO: a header in, a decision out
// (tests/fuzz/http_request_fuzz.cpp drives it with Beast's parser over arbitrary bytes).
#pragma once

#include <optional>
#include <string>

#include <boost/beast/http/message.hpp>

namespace promptcache::server {

struct FramingRefusal {
  unsigned status;  // 400 or 501
  std::string message;
};

// nullopt: the framing is sound (one Host on HTTP/1.1; no transfer coding but chunked, and
// never beside a Content-Length).
[[nodiscard]] std::optional<FramingRefusal> framing_problem(
    const boost::beast::http::request_header<>& h);

}  // namespace promptcache::server
