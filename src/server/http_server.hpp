// The HTTP/1.1 front of `promptcache serve`: one io_context per thread, each with its own
// acceptor on the same port (SO_REUSEPORT lets the kernel spread connections), keep-alive
// sessions as coroutines, a body limit, idle and read deadlines, and a graceful stop: no new
// connections, idle ones closed, requests in flight answered (up to a grace period).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace promptcache::server {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

struct HttpOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  std::size_t threads = 2;
  std::size_t body_limit = 1024 * 1024;
  std::size_t header_limit = 16 * 1024;
  std::chrono::seconds idle_timeout{60};     // a keep-alive connection with no request
  std::chrono::seconds request_timeout{30};  // to receive one whole request
  std::chrono::seconds shutdown_grace{10};   // for requests in flight at a stop
};

// Answers one request. Runs on the session's thread; may suspend.
using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;
// Answers a request the server could not read whole: status 400 or 413 and a message.
using ErrorResponder = std::function<Response(unsigned status, std::string_view message)>;

class HttpServer {
 public:
  HttpServer(HttpOptions options, Handler handler, ErrorResponder on_error);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds every thread's acceptor. Throws std::system_error naming the address.
  void listen();
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // One executor per thread, for whatever else must live on them (the Redis client).
  [[nodiscard]] std::vector<boost::asio::any_io_executor> executors() const;
  // Serves until stop(); returns once every thread is done.
  void run();
  // Thread-safe and signal-safe to request (see request_stop); idempotent.
  void stop();

 private:
  struct Worker;
  boost::asio::awaitable<void> accept_loop(Worker& w);
  boost::asio::awaitable<void> session(Worker& w, boost::asio::ip::tcp::socket socket);
  void stop_on(Worker& w);

  HttpOptions options_;
  Handler handler_;
  ErrorResponder on_error_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> active_{0};  // open sessions, all threads
};

}  // namespace promptcache::server
