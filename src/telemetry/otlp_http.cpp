#include "telemetry/otlp_http.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/parse.hpp>

#include <array>
#include <optional>
#include <variant>

#include "telemetry/sansio/http_exchange.hpp"

namespace promptcache::telemetry {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Tcp = asio::ip::tcp::socket;
using Tls = asio::ssl::stream<Tcp>;

}  // namespace

HttpTarget parse_http_target(std::string_view url) {
  HttpTarget t;
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return t;
  const auto& u = *parsed;
  const std::string scheme = u.scheme();
  if ((scheme != "http" && scheme != "https") || u.host().empty()) return t;
  t.tls = scheme == "https";
  t.host = u.host_address();  // IPv6 without brackets
  t.port = u.has_port() ? std::string(u.port()) : (t.tls ? "443" : "80");
  t.path = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) t.path += "?" + std::string(u.encoded_query());
  t.host_header = std::string(u.encoded_host_and_port());
  t.valid = true;
  return t;
}

struct HttpPoster::Impl {
  explicit Impl(HttpTarget t) : target(std::move(t)) {
    if (target.tls) {
      tls_context.emplace(asio::ssl::context::tls_client);
      tls_context->set_options(asio::ssl::context::default_workarounds |
                               asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
      error_code ignored;
      tls_context->set_default_verify_paths(ignored);
      tls_context->set_verify_mode(asio::ssl::verify_peer);
    }
  }

  void close() {
    error_code ignored;
    if (auto* tcp = std::get_if<Tcp>(&socket)) tcp->close(ignored);
    if (auto* tls = std::get_if<std::unique_ptr<Tls>>(&socket)) (*tls)->next_layer().close(ignored);
    socket.emplace<std::monostate>();
  }

  asio::awaitable<error_code> connect(std::string& error) {
    close();
    error_code ec;
    asio::ip::tcp::resolver resolver(io);
    auto endpoints = co_await resolver.async_resolve(target.host, target.port,
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      error = "cannot resolve " + target.host + ": " + ec.message();
      co_return ec;
    }
    if (timed_out) co_return asio::error::operation_aborted;
    Tcp* tcp = nullptr;
    if (target.tls) {
      tcp = &socket.emplace<std::unique_ptr<Tls>>(std::make_unique<Tls>(io, *tls_context))
                 ->next_layer();
    } else {
      tcp = &socket.emplace<Tcp>(io);
    }
    co_await asio::async_connect(*tcp, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      error = "cannot connect to " + target.host_header + ": " + ec.message();
      co_return ec;
    }
    if (target.tls) {
      auto& tls = *std::get<std::unique_ptr<Tls>>(socket);
      error_code addr_ec;
      (void)asio::ip::make_address(target.host, addr_ec);
      if (addr_ec) SSL_set_tlsext_host_name(tls.native_handle(), target.host.c_str());
      tls.set_verify_callback(asio::ssl::host_name_verification(target.host));
      co_await tls.async_handshake(asio::ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
      if (ec) error = "TLS handshake with " + target.host_header + " failed: " + ec.message();
    }
    co_return ec;
  }

  template <class Op>
  asio::awaitable<std::size_t> on_socket(Op op, error_code& ec) {
    if (auto* tcp = std::get_if<Tcp>(&socket)) co_return co_await op(*tcp, ec);
    co_return co_await op(*std::get<std::unique_ptr<Tls>>(socket), ec);
  }

  // One exchange on the open connection; false if the connection failed before any byte of
  // the response came (then a fresh connection may try again).
  asio::awaitable<bool> exchange(std::string_view head, Body body, Outcome& out) {
    error_code ec;
    const std::array<asio::const_buffer, 3> message{asio::buffer(head), asio::buffer(body.first),
                                                    asio::buffer(body.second)};
    auto write = [&message](auto& s, error_code& e) -> asio::awaitable<std::size_t> {
      co_return co_await asio::async_write(s, message,
                                           asio::redirect_error(asio::use_awaitable, e));
    };
    co_await on_socket(write, ec);
    if (ec) {
      out.error = "cannot send to " + target.host_header + ": " + ec.message();
      co_return false;
    }
    ResponseParser parser;
    char buf[8192];
    bool any = false;
    while (!parser.done() && !parser.failed()) {
      auto read = [&buf](auto& s, error_code& e) -> asio::awaitable<std::size_t> {
        co_return co_await s.async_read_some(asio::buffer(buf),
                                             asio::redirect_error(asio::use_awaitable, e));
      };
      const std::size_t n = co_await on_socket(read, ec);
      if (ec) {
        if (!any && ec != asio::error::operation_aborted) {
          out.error = "no response from " + target.host_header + ": " + ec.message();
          co_return false;
        }
        parser.end_of_stream();
        break;
      }
      any = true;
      (void)parser.feed(std::string_view(buf, n));
    }
    if (!parser.done()) {
      out.error = parser.failed()
                      ? "bad response from " + target.host_header + ": " + parser.error()
                      : "no complete response from " + target.host_header;
      close();
      co_return true;
    }
    out.status = parser.response().status;
    out.retry_after = parser.response().retry_after;
    out.body = parser.response().body;
    if (parser.response().close) close();
    co_return true;
  }

  asio::awaitable<void> run(std::string_view head, Body body, Outcome& out) {
    const bool reused = !std::holds_alternative<std::monostate>(socket);
    if (!reused) {
      if (co_await connect(out.error)) co_return;
    }
    if (co_await exchange(head, body, out)) co_return;
    close();
    if (!reused || timed_out) co_return;
    // The collector closed the connection while it was idle: once more on a new one.
    out = Outcome{};
    if (co_await connect(out.error)) co_return;
    if (!co_await exchange(head, body, out)) close();
  }

  HttpTarget target;
  asio::io_context io{1};
  std::optional<asio::ssl::context> tls_context;
  std::variant<std::monostate, Tcp, std::unique_ptr<Tls>> socket;
  bool timed_out = false;  // the post gave up: the exchange stops at its next step
};

HttpPoster::HttpPoster(HttpTarget target) : impl_(std::make_unique<Impl>(std::move(target))) {}

HttpPoster::~HttpPoster() {
  impl_->close();
}

HttpPoster::Outcome HttpPoster::post(std::string_view head, Body body,
                                     std::chrono::milliseconds timeout) {
  Outcome out;
  bool finished = false;
  impl_->timed_out = false;
  impl_->io.restart();
  asio::co_spawn(
      impl_->io,
      [this, head, body, &out, &finished]() -> asio::awaitable<void> {
        co_await impl_->run(head, body, out);
        finished = true;
      },
      asio::detached);
  impl_->io.run_for(timeout);
  if (!finished) {
    // Timed out: the connection goes (its operations end with operation_aborted) and the
    // exchange ends there. A name lookup under way is waited for (Asio cannot abandon one).
    impl_->timed_out = true;
    impl_->close();
    impl_->io.restart();
    impl_->io.run();
    out = Outcome{};
    out.error = "no response from " + impl_->target.host_header + " within " +
                std::to_string(timeout.count()) + " ms";
  }
  return out;
}

}  // namespace promptcache::telemetry
