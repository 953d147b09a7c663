// The exporter's runner for one HTTP exchange: a connection to the collector (plain or TLS,
// kept open between exports), the request written, the response read through
// ResponseParser, all within a timeout — the collector's name lookup included. Used from the
// exporter's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "telemetry/sansio/export_retry.hpp"

namespace promptcache::telemetry {

// An http:// or https:// URL taken apart; nullopt-like `valid` false when it is neither.
struct HttpTarget {
  bool valid = false;
  bool tls = false;
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 0;
  std::string path;         // with the query, "/" at least
  std::string host_header;  // host[:port] as the Host field writes it
};
[[nodiscard]] HttpTarget parse_http_target(std::string_view url);

// A host name's addresses as text (IPv4 or IPv6); none, with `error` saying why, when it has
// none. It may block as long as the system's resolver takes.
using NameLookup =
    std::function<std::vector<std::string>(const std::string& host, std::string& error)>;
// The system's (getaddrinfo: /etc/hosts, DNS, ... as nsswitch.conf says).
[[nodiscard]] std::vector<std::string> system_name_lookup(const std::string& host,
                                                          std::string& error);

class HttpPoster {
 public:
  // A host that is a name is looked up by `lookup` on a thread of its own, so that a post's
  // timeout bounds the lookup too: Asio's resolver cannot be abandoned, and a resolver that
  // hangs (an unreachable DNS server: 5 s a try, several tries) would hold the exporter —
  // and a shutdown's flush — past its deadline. A lookup a post gave up on is waited for by
  // the next connection, not started again: one lookup at a time, whatever the retries.
  explicit HttpPoster(HttpTarget target, NameLookup lookup = system_name_lookup);
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
