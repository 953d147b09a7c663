// The exporter's runner for one HTTP exchange: a connection to the collector (plain or TLS,
// kept open between exports), the request written, the response read through
// ResponseParser, all within a timeout. Used from the exporter's thread only.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "telemetry/sansio/export_retry.hpp"

namespace promptcache::telemetry {

// An http:// or https:// URL taken apart; nullopt-like `valid` false when it is neither.
struct HttpTarget {
  bool valid = false;
  bool tls = false;
  std::string host;  // without brackets for IPv6
  std::string port;
  std::string path;         // with the query, "/" at least
  std::string host_header;  // host[:port] as the Host field writes it
};
[[nodiscard]] HttpTarget parse_http_target(std::string_view url);

class HttpPoster {
 public:
  explicit HttpPoster(HttpTarget target);
  ~HttpPoster();
  HttpPoster(const HttpPoster&) = delete;
  HttpPoster& operator=(const HttpPoster&) = delete;

  struct Outcome {
    int status = 0;  // 0: no answer (the reason in `error`)
    std::string retry_after;
    std::string body;  // its first 4 KiB
    std::string error;
  };
  // A request's body in two pieces sent one after the other (an export's envelope and the
  // span records it holds, say: nothing is copied to join them).
  struct Body {
    std::string_view first;
    std::string_view second;
    [[nodiscard]] std::size_t size() const noexcept { return first.size() + second.size(); }
  };
  // Sends `head` then `body` (one HTTP message) and reads the response, within `timeout`.
  [[nodiscard]] Outcome post(std::string_view head, Body body, std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace promptcache::telemetry
