#include "server/http_server.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
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
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "server/framing.hpp"

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

}  // namespace

// Where a session is; see the header. Only the session's own coroutine changes it, on its
// worker's thread; the stop and the connection limit read it there too.
enum class Phase {
  idle,     // waiting for a request's first byte: may be closed (limit, stop)
  reading,  // a request arriving, not yet whole: closed by a stop
  busy,     // a request whole, or its body invited (100 Continue): answered, even at a stop
  closing,  // a refusal sent; draining what the client still sends, bounded
};

struct HttpServer::Session {
  beast::tcp_stream* stream;
  Phase phase = Phase::idle;
  bool continued = false;  // 100 Continue sent: a stop gives the body 1 s more, not the grace
};

struct HttpServer::Worker {
  asio::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  std::list<Session> sessions;
  std::size_t refusing = 0;  // connections being answered 503 (each holds a descriptor)
  int reserve_fd = -1;       // opened at listen(): given up to accept one connection at EMFILE
};

namespace {

constexpr std::size_t kReadChunk = 65536;  // beast's own read size limit
// A refused connection's remaining request is read (and dropped) so its answer is not lost to
// a reset, but no more than this, and not for longer than kLingerTime.
constexpr std::size_t kLingerBytes = 64 * 1024;
constexpr auto kLingerTime = std::chrono::milliseconds(500);
// The longest a refusal's write may take (a client that does not read its answer).
constexpr auto kRefusalWriteTime = std::chrono::seconds(5);
// At a stop, the longest a body invited by 100 Continue may still take.
constexpr auto kContinuedBodyAtStop = std::chrono::seconds(1);

int open_reserve() {
  return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

bool out_of_descriptors(const error_code& ec) {
  return ec == asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open ||
         ec == boost::system::errc::too_many_files_open_in_system;
}

// Writes `res` (closing the connection), then drains what the client still sends, bounded,
// so the answer reaches it before the close (a close with unread bytes resets the connection,
// and the peer may drop the answer).
asio::awaitable<void> answer_and_close(beast::tcp_stream& stream, Response& res,
                                       std::chrono::steady_clock::duration write_time) {
  res.keep_alive(false);
  res.prepare_payload();
  error_code ec;
  stream.expires_after(write_time);
  co_await http::async_write(stream, res, with(ec));
  if (ec) co_return;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 4096> sink{};
  std::size_t drained = 0;
  stream.expires_after(kLingerTime);
  while (!ec && drained < kLingerBytes) {
    drained += co_await stream.async_read_some(asio::buffer(sink), with(ec));
  }
}

}  // namespace

std::size_t default_max_connections() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 10000;
  const auto soft = static_cast<std::size_t>(limit.rlim_cur);
  const std::size_t kept = std::min<std::size_t>(soft / 4, 256);
  return std::clamp<std::size_t>(soft - kept, 8, 100000);
}

HttpServer::HttpServer(HttpOptions options, Handler handler, ErrorResponder on_error,
                       Admission admit)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      on_error_(std::move(on_error)),
      admit_(std::move(admit)) {
  const std::size_t n = options_.threads == 0 ? 1 : options_.threads;
  for (std::size_t i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>());
  max_connections_ =
      options_.max_connections != 0 ? options_.max_connections : default_max_connections();
  per_worker_limit_ = std::max<std::size_t>(1, (max_connections_ + n - 1) / n);
}

HttpServer::~HttpServer() {
  for (auto& w : workers_) {
    if (w->reserve_fd >= 0) ::close(w->reserve_fd);
  }
}

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
    w->reserve_fd = open_reserve();
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
    if (s.phase != Phase::busy) {
      s.stream->socket().close(ignored);
    } else if (s.continued) {
      s.stream->expires_after(kContinuedBodyAtStop);  // its body, if still on its way
    }
  }
}

void HttpServer::note_accept_failure(const error_code& ec) {
  if (const std::size_t n = accept_failures_.note(Clock::now()); n > 0) {
    spdlog::warn("http accept failed error=\"{}\" failures={} (reported at most every 10 s){}",
                 ec.message(), n,
                 out_of_descriptors(ec)
                     ? fmt::format("; the descriptor limit is reached: lower --max-connections "
                                   "(now {}) or raise the limit (ulimit -n)",
                                   max_connections_)
                     : std::string());
  }
}

asio::awaitable<void> HttpServer::accept_loop(Worker& w) {
  auto backoff = std::chrono::milliseconds(0);
  for (;;) {
    error_code ec;
    tcp::socket socket = co_await w.acceptor->async_accept(with(ec));
    if (stopping_ || !w.acceptor->is_open()) co_return;
    if (!ec) {
      backoff = std::chrono::milliseconds(0);
      take(w, std::move(socket), per_worker_limit_);
      continue;
    }
    note_accept_failure(ec);
    // A connection shed is progress: the next waiting one is taken at once (the queue may hold a
    // health check behind a flood). Otherwise, wait instead of spinning on a failure that
    // repeats: 10 ms, doubling up to 500 ms.
    if (out_of_descriptors(ec) && shed_one(w)) {
      co_await asio::post(w.io, asio::use_awaitable);  // let the other sessions run
      continue;
    }
    backoff =
        std::clamp(backoff * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(500));
    asio::steady_timer pause(w.io, backoff);
    co_await pause.async_wait(with(ec));
  }
}

void HttpServer::take(Worker& w, tcp::socket socket, std::size_t limit) {
  error_code ec;
  if (w.sessions.size() >= limit) {
    // At the limit: the longest-idle connection gives way to the new one; with none idle, the
    // new one is refused. A session moves to the back as it turns idle, so the first idle one
    // from the front has been idle longest.
    const auto oldest = std::find_if(w.sessions.begin(), w.sessions.end(),
                                     [](const Session& s) { return s.phase == Phase::idle; });
    if (oldest == w.sessions.end()) {
      asio::co_spawn(w.io, refuse_connection(w, std::move(socket)), asio::detached);
      return;
    }
    oldest->phase = Phase::closing;
    oldest->stream->socket().close(ec);
  }
  socket.set_option(tcp::no_delay(true), ec);
  asio::co_spawn(w.io, session(w, std::move(socket)), asio::detached);
}

bool HttpServer::shed_one(Worker& w) {
  // The reserve descriptor makes room for one accept; the connection it takes is handled as any
  // other (replacing an idle one, or refused), then the reserve is taken back.
  if (w.reserve_fd >= 0) {
    ::close(w.reserve_fd);
    w.reserve_fd = -1;
  }
  error_code ec;
  w.acceptor->non_blocking(true, ec);
  tcp::socket socket(w.io);
  w.acceptor->accept(socket, ec);
  w.acceptor->non_blocking(false, ec);
  const bool taken = socket.is_open();
  if (taken) {
    // Without descriptors, an idle connection is closed for it even below the limit.
    take(w, std::move(socket), std::min(per_worker_limit_, w.sessions.size()));
  }
  w.reserve_fd = open_reserve();
  return taken;
}

asio::awaitable<void> HttpServer::refuse_connection(Worker& w, tcp::socket socket) {
  // Each refusal in progress holds a descriptor: a few at a time, the rest closed at once.
  if (w.refusing >= 8) co_return;
  ++w.refusing;
  ++active_;
  beast::tcp_stream stream(std::move(socket));
  Response res = on_error_(503, "the server is at its connection limit; try again shortly");
  res.set(http::field::retry_after, "1");
  co_await answer_and_close(stream, res, std::chrono::seconds(1));
  --w.refusing;
  --active_;
}

asio::awaitable<error_code> HttpServer::read_request(Session& session, beast::flat_buffer& buffer,
                                                     RequestParser& parser,
                                                     std::optional<Response>& refusal) {
  beast::tcp_stream& stream = *session.stream;
  error_code ec;
  stream.expires_after(options_.header_timeout);
  co_await http::async_read_header(stream, buffer, parser, with(ec));
  if (!ec) {
    if (auto problem = framing_problem(parser.get().base())) {
      refusal = on_error_(problem->status, problem->message);
    } else if (admit_) {
      refusal = admit_(parser.get().base());
    }
  }
  if (!ec && !refusal) {
    stream.expires_after(options_.request_timeout);
    if (parser.get()[http::field::expect] == "100-continue" && !parser.is_done()) {
      // Invited, the body makes the request one in flight: a stop answers it.
      session.phase = Phase::busy;
      session.continued = true;
      http::response<http::empty_body> go_on{http::status::continue_, 11};
      co_await http::async_write(stream, go_on, with(ec));
    }
    if (!ec) co_await http::async_read(stream, buffer, parser, with(ec));
  }
  if (ec == http::error::body_limit) {
    refusal = on_error_(413, "the request body is too large");
  } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    refusal = on_error_(431, "the request headers are too large");  // RFC 6585 §5
  } else if (ec && ec.category() == make_error_code(http::error::end_of_stream).category() &&
             ec != http::error::end_of_stream) {
    refusal = on_error_(400, fmt::format("malformed HTTP request: {}", ec.message()));
  }
  co_return ec;
}

Peer::Peer(std::string_view client_address, std::string_view server_address,
           std::uint16_t server_port) {
  span_attributes.set_text("server.address", server_address);
  span_attributes.set("server.port", static_cast<std::int64_t>(server_port));
  span_attributes.set_text("client.address", client_address);
  span_attributes.set_text("url.scheme", "http");
}

namespace {

Peer peer_of(const tcp::socket& socket) {
  error_code ignored;
  const auto local = socket.local_endpoint(ignored);
  return Peer(socket.remote_endpoint(ignored).address().to_string(), local.address().to_string(),
              local.port());
}

}  // namespace

asio::awaitable<void> HttpServer::session(Worker& w, tcp::socket socket) {
  const Peer peer = peer_of(socket);
  beast::tcp_stream stream(std::move(socket));
  auto self = w.sessions.insert(w.sessions.end(), Session{&stream});
  ++active_;
  // What a connection may hold before it is admitted: its header and one read beyond it.
  beast::flat_buffer buffer(options_.header_limit + kReadChunk);
  std::optional<Response> refusal;  // a request refused before (or while) its body was read
  while (!stopping_ && self->phase != Phase::closing) {
    error_code ec;
    if (buffer.size() == 0) {
      // Idle until the first byte of the next request: at the back, the most recently idle.
      self->phase = Phase::idle;
      w.sessions.splice(w.sessions.end(), w.sessions, self);
      stream.expires_after(options_.idle_timeout);
      const std::size_t n = co_await stream.async_read_some(
          buffer.prepare(beast::read_size(buffer, kReadChunk)), with(ec));
      buffer.commit(n);
      if (ec || self->phase == Phase::closing) break;  // closed, timed out, or replaced
    }
    self->phase = Phase::reading;
    self->continued = false;
    RequestParser parser;
    parser.body_limit(options_.body_limit);
    parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
    ec = co_await read_request(*self, buffer, parser, refusal);
    if (refusal) {
      self->phase = Phase::closing;
      co_await answer_and_close(stream, *refusal, kRefusalWriteTime);
      break;
    }
    if (ec) break;  // closed, timed out, or cancelled by a stop
    self->phase = Phase::busy;
    Request& req = parser.get();
    Response res = co_await handler_(req, peer);
    res.keep_alive(req.keep_alive() && !stopping_);
    res.prepare_payload();
    stream.expires_after(options_.request_timeout);
    co_await http::async_write(stream, res, with(ec));
    if (ec || !res.keep_alive()) break;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  w.sessions.erase(self);
  --active_;
}

}  // namespace promptcache::server
