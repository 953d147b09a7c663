#include "server/http_server.hpp"

#include <cctype>
#include <list>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace promptcache::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

auto with(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// What RFC 9112 asks of a request's framing, checked once its header is read and before any of
// its body is: a status and a message when the request must be refused (and the connection
// closed, since where its body ends is then unknown).
struct Refusal {
  unsigned status;
  std::string message;
};

std::string lower_trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<Refusal> framing_problem(const http::request_header<>& h) {
  // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host.
  const auto hosts = h.count(http::field::host);
  if (h.version() >= 11 && hosts == 0) return Refusal{400, "the Host header is required"};
  if (hosts > 1) return Refusal{400, "more than one Host header"};
  // §6.1: chunked is the only transfer coding this server decodes; anything else (identity,
  // gzip, a chain ending elsewhere) would leave the body's end to guesswork: 501. With a
  // Content-Length too, the message is ambiguous (request smuggling): 400.
  if (h.count(http::field::transfer_encoding) == 0) return std::nullopt;
  if (h.count(http::field::content_length) > 0) {
    return Refusal{400, "Transfer-Encoding and Content-Length together"};
  }
  for (const auto& field : h) {
    if (field.name() != http::field::transfer_encoding) continue;
    std::string_view codings = field.value();
    while (!codings.empty()) {
      const auto comma = codings.find(',');
      if (lower_trimmed(codings.substr(0, comma)) != "chunked") {
        return Refusal{501, "only the chunked transfer coding is accepted"};
      }
      codings = comma == std::string_view::npos ? std::string_view() : codings.substr(comma + 1);
    }
  }
  return std::nullopt;
}

}  // namespace

struct HttpServer::Worker {
  // A session the stop may close: idle ones are, busy ones (between a request read whole and
  // its response written) are left to finish.
  struct Session {
    beast::tcp_stream* stream;
    bool busy = false;
  };
  asio::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  std::list<Session> sessions;
};

HttpServer::HttpServer(HttpOptions options, Handler handler, ErrorResponder on_error)
    : options_(std::move(options)), handler_(std::move(handler)), on_error_(std::move(on_error)) {
  const std::size_t n = options_.threads == 0 ? 1 : options_.threads;
  for (std::size_t i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>());
}

HttpServer::~HttpServer() = default;

std::vector<asio::any_io_executor> HttpServer::executors() const {
  std::vector<asio::any_io_executor> out;
  for (const auto& w : workers_) out.push_back(w->io.get_executor());
  return out;
}

void HttpServer::listen() {
  tcp::resolver resolver(workers_.front()->io);
  error_code ec;
  auto found = resolver.resolve(options_.host, std::to_string(options_.port),
                                tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || found.empty()) {
    throw std::system_error(ec,
                            fmt::format("cannot resolve the listen address {:?}", options_.host));
  }
  tcp::endpoint endpoint = found.begin()->endpoint();
  for (auto& w : workers_) {
    auto& a = w->acceptor.emplace(w->io);
    a.open(endpoint.protocol());
    a.set_option(tcp::acceptor::reuse_address(true));
    a.set_option(reuse_port(true));
    a.bind(endpoint, ec);
    if (ec) {
      throw std::system_error(
          ec, fmt::format("cannot listen on {}:{}", options_.host, endpoint.port()));
    }
    a.listen(asio::socket_base::max_listen_connections);
    // Port 0 picked a free port for the first acceptor: the others join it.
    endpoint.port(a.local_endpoint().port());
  }
  port_ = endpoint.port();
}

void HttpServer::run() {
  for (auto& w : workers_) asio::co_spawn(w->io, accept_loop(*w), asio::detached);
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([w = workers_[i].get()] { w->io.run(); });
  }
  workers_.front()->io.run();
  for (auto& t : threads) t.join();
}

void HttpServer::stop() {
  if (stopping_.exchange(true)) return;
  for (auto& w : workers_) {
    asio::post(w->io, [this, w = w.get()] { stop_on(*w); });
  }
  // Waits for the busy sessions (up to the grace period), then ends every thread's loop.
  asio::co_spawn(
      workers_.front()->io,
      [this]() -> asio::awaitable<void> {
        const auto deadline = Clock::now() + options_.shutdown_grace;
        asio::steady_timer tick(workers_.front()->io);
        while (active_.load() > 0 && Clock::now() < deadline) {
          tick.expires_after(std::chrono::milliseconds(10));
          error_code ignored;
          co_await tick.async_wait(with(ignored));
        }
        if (active_.load() > 0) {
          spdlog::warn("http stop: {} connections still busy after the grace period",
                       active_.load());
        }
        for (auto& w : workers_) w->io.stop();
      },
      asio::detached);
}

void HttpServer::stop_on(Worker& w) {
  error_code ignored;
  if (w.acceptor) w.acceptor->close(ignored);
  for (auto& s : w.sessions) {
    if (!s.busy) s.stream->socket().close(ignored);
  }
}

asio::awaitable<void> HttpServer::accept_loop(Worker& w) {
  for (;;) {
    error_code ec;
    tcp::socket socket = co_await w.acceptor->async_accept(with(ec));
    if (stopping_ || !w.acceptor->is_open()) co_return;
    if (ec) {
      // Out of descriptors, say: wait instead of spinning.
      spdlog::warn("http accept failed error=\"{}\"", ec.message());
      asio::steady_timer pause(w.io, std::chrono::milliseconds(50));
      co_await pause.async_wait(with(ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(w.io, session(w, std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> HttpServer::session(Worker& w, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  auto self = w.sessions.insert(w.sessions.end(), Worker::Session{&stream});
  ++active_;
  beast::flat_buffer buffer;
  std::optional<Response> failure;  // a request that could not be read whole
  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options_.body_limit);
    parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
    error_code ec;
    stream.expires_after(options_.idle_timeout);
    co_await http::async_read_header(stream, buffer, parser, with(ec));
    if (!ec) {
      if (auto problem = framing_problem(parser.get().base())) {
        failure = on_error_(problem->status, problem->message);
      }
    }
    if (!ec && !failure) {
      self->busy = true;
      stream.expires_after(options_.request_timeout);
      if (parser.get()[http::field::expect] == "100-continue") {
        http::response<http::empty_body> go_on{http::status::continue_, 11};
        co_await http::async_write(stream, go_on, with(ec));
      }
      if (!ec) co_await http::async_read(stream, buffer, parser, with(ec));
    }
    if (ec == http::error::body_limit) {
      failure = on_error_(413, "the request body is too large");
    } else if (ec == http::error::header_limit) {
      failure = on_error_(431, "the request headers are too large");  // RFC 6585 §5
    } else if (ec && ec.category() == make_error_code(http::error::end_of_stream).category() &&
               ec != http::error::end_of_stream) {
      failure = on_error_(400, fmt::format("malformed HTTP request: {}", ec.message()));
    }
    if (failure) {
      self->busy = true;
      failure->keep_alive(false);
      failure->prepare_payload();
      stream.expires_after(options_.request_timeout);
      co_await http::async_write(stream, *failure, with(ec));
      break;
    }
    if (ec) break;  // closed, timed out, or cancelled by a stop
    Request& req = parser.get();
    Response res = co_await handler_(req);
    res.keep_alive(req.keep_alive() && !stopping_);
    res.prepare_payload();
    co_await http::async_write(stream, res, with(ec));
    self->busy = false;
    if (ec || !res.keep_alive()) break;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  w.sessions.erase(self);
  --active_;
}

}  // namespace promptcache::server
