// One HTTP/1.1 POST and its response, as bytes, without a socket: the exporter's runner writes
// what post_head() builds, then the body, and feeds what it reads to ResponseParser until done() or
// failed(). The parser reads what a collector may send (RFC 9112): a status line, header
// fields, and a body framed by Content-Length, by chunked transfer coding, or by the end of
// the connection; 1xx interim responses are skipped. It keeps the status, Retry-After,
// Connection: close and the first 4 KiB of the body; it refuses more than 16 KiB of header
// and more than 1 MiB of body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace promptcache::telemetry {

// The head of "POST <path> HTTP/1.1" with Host, Content-Type (`content_type`),
// Content-Length (of a body of `body_size` bytes, sent after it), User-Agent and `headers`
// (names and values as given; CR and LF are dropped from them).
[[nodiscard]] std::string post_head(std::string_view host, std::string_view path,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    std::string_view content_type, std::size_t body_size,
                                    std::string_view user_agent);

struct HttpResponse {
  int status = 0;
  std::string retry_after;
  bool close = false;  // the server will close the connection (or HTTP/1.0)
  std::string body;    // at most the first kept_body bytes
};

class ResponseParser {
 public:
  static constexpr std::size_t max_head = 16 * 1024;
  static constexpr std::size_t max_body = 1024 * 1024;
  static constexpr std::size_t kept_body = 4096;

  // Bytes of `data` it used (all of them unless done()).
  std::size_t feed(std::string_view data);
  // The connection ended: completes a body read to the end; otherwise a failure.
  void end_of_stream();

  [[nodiscard]] bool done() const noexcept { return state_ == State::done; }
  [[nodiscard]] bool failed() const noexcept { return state_ == State::failed; }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  [[nodiscard]] const HttpResponse& response() const noexcept { return response_; }

 private:
  enum class State {
    head,        // status line and header fields, up to the empty line
    sized_body,  // Content-Length bytes
    chunk_size,  // a chunk-size line
    chunk_data,  // the chunk's bytes and its CRLF
    trailer,     // trailer fields after the last chunk, up to the empty line
    to_close,    // everything until the connection ends
    done,
    failed,
  };

  std::size_t feed_head(std::string_view data);
  std::size_t feed_line(std::string_view data, bool& complete);
  bool take_head();
  std::size_t take_body(std::string_view data, std::size_t n);
  void fail(std::string why);

  State state_ = State::head;
  std::string line_;  // the head (or the current chunk-size / trailer line) so far
  std::uint64_t remaining_ = 0;
  std::uint64_t body_seen_ = 0;
  HttpResponse response_;
  std::string error_;
};

}  // namespace promptcache::telemetry
