// Test support: a small synchronous HTTP/1.1 client on Boost.Beast for end-to-end tests of
// `promptcache serve`.
//
// One HttpClient keeps one keep-alive connection to 127.0.0.1:port and opens a new one when the
// server closed it (Connection: close, or found closed when the next request is sent). Every
// step (connect, write, read) has a deadline, so a server that hangs fails the test instead of
// hanging it; failures throw HttpError saying at which step and whether any byte of a response
// had arrived (a partial response is never returned as if it were whole).
//
// Beast and Asio are compiled separately in this project (BOOST_BEAST_SEPARATE_COMPILATION,
// BOOST_ASIO_SEPARATE_COMPILATION): the test executable links promptcache_server, which
// carries both the definitions and the compiled code.
//
// Not thread-safe: one HttpClient per thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace promptcache::testing {

struct HttpResponse {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  bool keep_alive = false;

  // The header's value, or "" when absent; `name` in any case.
  [[nodiscard]] std::string header(std::string_view name) const;
  [[nodiscard]] bool has_header(std::string_view name) const;
};

class HttpError : public std::runtime_error {
 public:
  enum class Stage { connect, write, read };
  HttpError(Stage stage, bool response_started, bool timed_out, const std::string& what)
      : std::runtime_error(what),
        stage(stage),
        response_started(response_started),
        timed_out(timed_out) {}
  Stage stage;
  bool response_started;  // some bytes of a response had arrived (a truncated response)
  bool timed_out;
};

// Percent-encodes every byte but the RFC 3986 unreserved characters (for path segments and
// query values).
std::string url_encode(std::string_view s);

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads its response. A request that fails on a reused keep-alive
  // connection before any byte of the response arrived is sent once more on a new connection
  // (the server may have closed the idle connection meanwhile), unless set_retry(false).
  // `method` may be any token ("GET", "PATCH", "BREW"); Content-Length is set from the body.
  HttpResponse request(std::string_view method, std::string_view target, std::string body = {},
                       const HttpHeaders& headers = {});

  // A request in two steps: begin() sends the header with `Expect: 100-continue` and returns
  // once the server answered `100 Continue` (the server is then busy with the request: it has
  // read the header and waits for the body); finish() sends the body and reads the response.
  // If the server answers begin() with a final response instead, begin() returns it (and
  // finish() must not be called).
  std::unique_ptr<HttpResponse> begin(std::string_view method, std::string_view target,
                                      std::string body, const HttpHeaders& headers = {});
  HttpResponse finish();

  // Writes `bytes` as they are on a new connection, then reads one response (for malformed
  // requests).
  HttpResponse send_raw(const std::string& bytes);

  void set_retry(bool retry) noexcept { retry_ = retry; }
  void close();
  // TCP connections opened so far.
  [[nodiscard]] std::size_t connections_opened() const noexcept { return connections_; }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

 private:
  struct Impl;
  HttpResponse attempt(std::string_view method, std::string_view target, const std::string& body,
                       const HttpHeaders& headers);
  void ensure_connected();

  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  bool retry_ = true;
  std::size_t connections_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace promptcache::testing
