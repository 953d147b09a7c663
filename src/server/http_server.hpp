// The HTTP/1.1 front of `promptcache serve`: one io_context per thread, each with its own
// acceptor on the same port (SO_REUSEPORT lets the kernel spread connections), keep-alive
// sessions as coroutines, and bounds on everything a client can make it hold.
//
// A session is always in one phase (Phase below): idle (waiting for a request's first byte),
// reading (a request arriving), busy (a request whole, or its body invited with 100 Continue,
// and not yet answered), closing (a refusal sent, the rest of the request drained, bounded).
//   - Deadlines: idle_timeout for the first byte, header_timeout for the rest of the header,
//     request_timeout for the body.
//   - Before any body byte is read (and before 100 Continue), the framing is checked (RFC 9112)
//     and the admission hook (the API key) asked: a refused request is answered and closed
//     with its body unread. An unadmitted connection holds at most the header limit plus one
//     read (64 KiB).
//   - Connections: at most max_connections (split evenly over the threads). At the limit a new
//     connection replaces the longest-idle one, or is answered 503 and closed when none is
//     idle. Out of descriptors (EMFILE/ENFILE), a reserve descriptor lets the loop accept and
//     shed one connection at a time, backing off; the failure is logged once per 10 s.
//   - A stop (SIGTERM): no new connections, idle and half-read ones closed at once, busy ones
//     answered within the grace period (a body invited by 100 Continue gets 1 s to arrive).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "promptcache/telemetry/attributes.hpp"
#include "server/log_throttle.hpp"

namespace promptcache::server {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

struct HttpOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  std::size_t threads = 2;
  std::size_t body_limit = 1024 * 1024;
  std::size_t header_limit = 16 * 1024;
  std::size_t max_connections = 0;               // 0: default_max_connections()
  std::chrono::milliseconds idle_timeout{5000};  // for a request's first byte (keep-alive)
  std::chrono::seconds header_timeout{10};       // for the rest of its header
  std::chrono::seconds request_timeout{30};      // for its body
  std::chrono::seconds shutdown_grace{10};       // for requests in flight at a stop
};

// The connection limit the descriptor limit (RLIMIT_NOFILE) leaves room for: the soft limit
// less a quarter of it (at most 256) for Redis, the database, logs and the reserve.
[[nodiscard]] std::size_t default_max_connections();

// The two ends of a request's connection as its requests' spans name them (OpenTelemetry's
// client.address — the remote IP —, server.address — the local IP the client reached —,
// server.port, and url.scheme): encoded once, when the connection is accepted, and given to
// each request's span in one copy.
struct Peer {
  Peer() : Peer({}, {}, 0) {}
  Peer(std::string_view client_address, std::string_view server_address, std::uint16_t server_port);
  telemetry::Attributes span_attributes;
};

// Answers one request. Runs on the session's thread; may suspend.
using Handler = std::function<boost::asio::awaitable<Response>(Request&, const Peer&)>;
// Answers a request the server refuses before its handler: status 400, 413, 431, 501 or 503
// and a message.
using ErrorResponder = std::function<Response(unsigned status, std::string_view message)>;
// Asked once a request's header is read, before any of its body: a response refuses it (the
// connection is closed with its body unread), nullopt admits it.
using Admission = std::function<std::optional<Response>(const Request::header_type&)>;

class HttpServer {
 public:
  HttpServer(HttpOptions options, Handler handler, ErrorResponder on_error, Admission admit = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds every thread's acceptor. Throws std::system_error naming the address.
  void listen();
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // The connection limit in force (options' or the default), all threads together.
  [[nodiscard]] std::size_t max_connections() const noexcept { return max_connections_; }
  // One executor per thread, for whatever else must live on them (the Redis client).
  [[nodiscard]] std::vector<boost::asio::any_io_executor> executors() const;
  // Serves until stop(); returns once every thread is done.
  void run();
  // Thread-safe and signal-safe to request (see request_stop); idempotent.
  void stop();

 private:
  struct Worker;
  struct Session;
  boost::asio::awaitable<void> accept_loop(Worker& w);
  // A connection accepted: served, or (at the limit, nothing idle to replace) refused.
  // `limit`: the sessions this worker may hold (fewer than its share when out of descriptors).
  void take(Worker& w, boost::asio::ip::tcp::socket socket, std::size_t limit);
  // Out of descriptors: takes one waiting connection through the reserve descriptor (it replaces
  // an idle one, or is refused). False when none could be taken.
  bool shed_one(Worker& w);
  void note_accept_failure(const boost::system::error_code& ec);
  boost::asio::awaitable<void> session(Worker& w, boost::asio::ip::tcp::socket socket);
  using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
  // One request of `session` into `parser`: its header (framing checked, then admitted) and its
  // body (invited, if it expects 100 Continue). A refusal to answer with lands in `refusal`;
  // otherwise the error that ended the read (none: a whole request).
  boost::asio::awaitable<boost::system::error_code> read_request(Session& session,
                                                                 boost::beast::flat_buffer& buffer,
                                                                 RequestParser& parser,
                                                                 std::optional<Response>& refusal);
  boost::asio::awaitable<void> refuse_connection(Worker& w, boost::asio::ip::tcp::socket socket);
  void stop_on(Worker& w);

  HttpOptions options_;
  Handler handler_;
  ErrorResponder on_error_;
  Admission admit_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::size_t max_connections_ = 0;
  std::size_t per_worker_limit_ = 0;  // set once, in the constructor: read by every thread
  LogThrottle accept_failures_{std::chrono::seconds(10)};
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> active_{0};  // open sessions, all threads
};

}  // namespace promptcache::server
