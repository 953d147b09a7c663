#include "support/http_client.hpp"

#include <algorithm>
#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "support/process.hpp"  // detail::percent_encode

namespace promptcache::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

constexpr std::uint64_t kMaxResponseBody = 64ull * 1024 * 1024;

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? std::string() : it->second;
}

bool HttpResponse::has_header(std::string_view name) const {
  return headers.count(lower(name)) > 0;
}

std::string url_encode(std::string_view s) {
  return detail::percent_encode(s);
}

struct HttpClient::Impl {
  asio::io_context io{1};
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  bool connected = false;
  bool used = false;  // the connection carried a request already
  // The request begin() started.
  std::unique_ptr<http::request<http::string_body>> pending;
  std::unique_ptr<http::request_serializer<http::string_body>> serializer;

  // Runs one asynchronous operation to its end under the stream's deadline.
  template <class Start>
  error_code run(std::chrono::milliseconds timeout, Start&& start) {
    error_code result = asio::error::would_block;
    bool done = false;
    stream.expires_after(timeout);
    start([&](error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    io.restart();
    io.run();
    if (!done) return asio::error::operation_aborted;
    return result;
  }

  void close() {
    error_code ignored;
    if (stream.socket().is_open()) {
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream.socket().close(ignored);
    }
    buffer.consume(buffer.size());
    connected = false;
    used = false;
  }

  // Reads one whole response; throws HttpError if it cannot.
  HttpResponse read_response(std::chrono::milliseconds timeout) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    const error_code ec =
        run(timeout, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
    if (ec) {
      const bool started = parser.got_some() || buffer.size() > 0;
      const bool timed_out = ec == beast::error::timeout;
      close();
      throw HttpError(
          HttpError::Stage::read, started, timed_out,
          std::string(started ? "truncated response: " : "no response: ") + ec.message());
    }
    const auto& msg = parser.get();
    HttpResponse res;
    res.status = msg.result_int();
    for (const auto& field : msg) {
      res.headers[lower(field.name_string())] = std::string(field.value());
    }
    res.body = msg.body();
    res.keep_alive = msg.keep_alive();
    return res;
  }
};

HttpClient::HttpClient(std::uint16_t port, std::chrono::milliseconds timeout)
    : port_(port), timeout_(timeout), impl_(std::make_unique<Impl>()) {}

HttpClient::~HttpClient() {
  impl_->close();
}

void HttpClient::close() {
  impl_->close();
  impl_->pending.reset();
  impl_->serializer.reset();
}

void HttpClient::ensure_connected() {
  if (impl_->connected) return;
  impl_->close();
  const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port_);
  const error_code ec =
      impl_->run(timeout_, [&](auto handler) { impl_->stream.async_connect(endpoint, handler); });
  if (ec) {
    impl_->close();
    throw HttpError(HttpError::Stage::connect, false, ec == beast::error::timeout,
                    "connect to 127.0.0.1:" + std::to_string(port_) + ": " + ec.message());
  }
  error_code ignored;
  impl_->stream.socket().set_option(tcp::no_delay(true), ignored);
  impl_->connected = true;
  impl_->used = false;
  ++connections_;
}

namespace {

http::request<http::string_body> make_request(std::string_view method, std::string_view target,
                                              std::string body, const HttpHeaders& headers,
                                              std::uint16_t port) {
  http::request<http::string_body> req;
  req.version(11);
  req.method_string(method);
  req.target(target);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.body() = std::move(body);
  req.prepare_payload();
  if (req.body().empty() && (method == "POST" || method == "PUT" || method == "PATCH")) {
    req.set(http::field::content_length, "0");
  }
  for (const auto& [name, value] : headers) req.set(name, value);
  return req;
}

}  // namespace

HttpResponse HttpClient::attempt(std::string_view method, std::string_view target,
                                 const std::string& body, const HttpHeaders& headers) {
  auto req = make_request(method, target, body, headers, port_);
  impl_->used = true;
  const error_code ec =
      impl_->run(timeout_, [&](auto handler) { http::async_write(impl_->stream, req, handler); });
  if (ec) {
    // The server may have answered before reading the whole request (a 413, say): read it.
    if (ec != beast::error::timeout) {
      try {
        return impl_->read_response(timeout_);
      } catch (const HttpError&) {
      }
    }
    impl_->close();
    throw HttpError(HttpError::Stage::write, false, ec == beast::error::timeout,
                    "write: " + ec.message());
  }
  HttpResponse res = impl_->read_response(timeout_);
  if (!res.keep_alive) impl_->close();
  return res;
}

HttpResponse HttpClient::request(std::string_view method, std::string_view target, std::string body,
                                 const HttpHeaders& headers) {
  if (impl_->pending) throw std::logic_error("HttpClient::request: begin() without finish()");
  for (int round = 0;; ++round) {
    ensure_connected();
    const bool reused = impl_->used;
    try {
      return attempt(method, target, body, headers);
    } catch (const HttpError& e) {
      impl_->close();
      if (retry_ && reused && round == 0 && !e.response_started && !e.timed_out) continue;
      throw;
    }
  }
}

std::unique_ptr<HttpResponse> HttpClient::begin(std::string_view method, std::string_view target,
                                                std::string body, const HttpHeaders& headers) {
  if (impl_->pending) throw std::logic_error("HttpClient::begin: begin() without finish()");
  ensure_connected();
  impl_->used = true;
  impl_->pending = std::make_unique<http::request<http::string_body>>(
      make_request(method, target, std::move(body), headers, port_));
  impl_->pending->set(http::field::expect, "100-continue");
  impl_->serializer =
      std::make_unique<http::request_serializer<http::string_body>>(*impl_->pending);
  const error_code ec = impl_->run(timeout_, [&](auto handler) {
    http::async_write_header(impl_->stream, *impl_->serializer, handler);
  });
  if (ec) {
    close();
    throw HttpError(HttpError::Stage::write, false, ec == beast::error::timeout,
                    "write the header: " + ec.message());
  }
  HttpResponse first;
  try {
    first = impl_->read_response(timeout_);
  } catch (...) {
    close();
    throw;
  }
  if (first.status == 100) return nullptr;
  impl_->pending.reset();
  impl_->serializer.reset();
  if (!first.keep_alive) impl_->close();
  return std::make_unique<HttpResponse>(std::move(first));
}

HttpResponse HttpClient::finish() {
  if (!impl_->pending) throw std::logic_error("HttpClient::finish: no request begun");
  const error_code ec = impl_->run(timeout_, [&](auto handler) {
    http::async_write(impl_->stream, *impl_->serializer, handler);
  });
  if (ec) {
    close();
    throw HttpError(HttpError::Stage::write, false, ec == beast::error::timeout,
                    "write the body: " + ec.message());
  }
  HttpResponse res;
  try {
    res = impl_->read_response(timeout_);
  } catch (...) {
    close();
    throw;
  }
  impl_->pending.reset();
  impl_->serializer.reset();
  if (!res.keep_alive) impl_->close();
  return res;
}

HttpResponse HttpClient::send_raw(const std::string& bytes) {
  close();
  ensure_connected();
  impl_->used = true;
  const error_code ec = impl_->run(timeout_, [&](auto handler) {
    asio::async_write(impl_->stream, asio::buffer(bytes), handler);
  });
  if (ec && ec == beast::error::timeout) {
    close();
    throw HttpError(HttpError::Stage::write, false, true, "write: " + ec.message());
  }
  HttpResponse res = impl_->read_response(timeout_);
  if (!res.keep_alive) impl_->close();
  return res;
}

}  // namespace promptcache::testing
