#include "telemetry/otlp_http.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/parse.hpp>

#include <pthread.h>

#include <array>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <variant>

#include "telemetry/sansio/http_exchange.hpp"

namespace promptcache::telemetry {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Tcp = asio::ip::tcp::socket;
using Tls = asio::ssl::stream<Tcp>;
using Endpoint = asio::ip::tcp::endpoint;

// A name lookup running on a thread of its own. The thread fills it in and, if a connection is
// waiting (`waiter` set), has the poster's io_context wake it; a post that times out takes its
// waiter away (the thread then tells no one) and a later connection waits on the same lookup.
// Shared by the thread and the poster: whichever ends last frees it.
struct PendingLookup : std::enable_shared_from_this<PendingLookup> {
  std::mutex mutex;
  bool done = false;
  std::vector<std::string> addresses;
  std::string error;
  asio::steady_timer* waiter = nullptr;  // cancelled (on its io_context) to wake the connection

  // From the lookup's thread.
  void finish(std::vector<std::string> found, std::string why) {
    std::lock_guard lock(mutex);
    done = true;
    addresses = std::move(found);
    error = std::move(why);
    if (waiter == nullptr) return;
    asio::post(waiter->get_executor(), [self = shared_from_this()]() {
      std::lock_guard lock(self->mutex);
      if (self->waiter != nullptr) self->waiter->cancel();
    });
  }
  // From the poster's thread, its io_context stopped: the waiting connection gives up.
  void abandon() {
    std::lock_guard lock(mutex);
    if (waiter != nullptr) waiter->cancel();
    waiter = nullptr;
  }
};

std::shared_ptr<PendingLookup> start_lookup(const NameLookup& lookup, const std::string& host) {
  auto pending = std::make_shared<PendingLookup>();
  try {
    std::thread([pending, lookup, host] {
      ::pthread_setname_np(::pthread_self(), "otlp-lookup");
      std::string error;
      std::vector<std::string> addresses;
      try {
        addresses = lookup(host, error);
      } catch (const std::exception& e) {
        error = e.what();
      }
      pending->finish(std::move(addresses), std::move(error));
    }).detach();
  } catch (const std::system_error& e) {  // no thread to be had: the export fails, not the process
    pending->finish({}, std::string("no thread for the lookup: ") + e.what());
  }
  return pending;
}

}  // namespace

std::vector<std::string> system_name_lookup(const std::string& host, std::string& error) {
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  error_code ec;
  const auto results = resolver.resolve(host, "0", ec);
  std::vector<std::string> addresses;
  if (ec) {
    error = ec.message();
    return addresses;
  }
  for (const auto& entry : results) addresses.push_back(entry.endpoint().address().to_string());
  return addresses;
}

HttpTarget parse_http_target(std::string_view url) {
  HttpTarget t;
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return t;
  const auto& u = *parsed;
  const std::string scheme = u.scheme();
  if ((scheme != "http" && scheme != "https") || u.host().empty()) return t;
  t.tls = scheme == "https";
  t.host = u.host_address();  // IPv6 without brackets
  t.port = t.tls ? 443 : 80;
  if (u.has_port() && !u.port().empty()) {  // "host:" is the default port (RFC 3986)
    t.port = u.port_number();               // 0 when past 16 bits
    if (t.port == 0) return t;
  }
  // Boost.URL takes "host:4318x" as port 4318 and path "x": not a request target.
  if (!u.encoded_path().empty() && !u.encoded_path().starts_with('/')) return t;
  t.path = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) t.path += "?" + std::string(u.encoded_query());
  t.host_header = std::string(u.encoded_host_and_port());
  t.valid = true;
  return t;
}

struct HttpPoster::Impl {
  Impl(HttpTarget t, NameLookup l) : target(std::move(t)), lookup(std::move(l)) {
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

  // The target's addresses: a numeric host as it is, a name through the lookup's thread.
  asio::awaitable<error_code> resolve(std::vector<Endpoint>& endpoints, std::string& error) {
    error_code ec;
    const auto numeric = asio::ip::make_address(target.host, ec);
    if (!ec) {
      endpoints.emplace_back(numeric, target.port);
      co_return ec;
    }
    if (!pending) pending = start_lookup(lookup, target.host);
    asio::steady_timer wake(io, asio::steady_timer::time_point::max());
    bool wait = false;
    {
      std::lock_guard lock(pending->mutex);
      if (!pending->done) {
        pending->waiter = &wake;
        wait = true;
      }
    }
    if (wait) co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    std::vector<std::string> addresses;
    std::string why;
    {
      std::lock_guard lock(pending->mutex);
      pending->waiter = nullptr;
      if (!pending->done) co_return asio::error::operation_aborted;  // the post gave up
      addresses = std::move(pending->addresses);
      why = std::move(pending->error);
    }
    pending.reset();
    for (const std::string& text : addresses) {
      const auto address = asio::ip::make_address(text, ec);
      if (!ec) endpoints.emplace_back(address, target.port);
    }
    if (!endpoints.empty()) co_return error_code{};
    error = "cannot resolve " + target.host + ": " + (why.empty() ? "no address" : why);
    co_return asio::error::host_not_found;
  }

  asio::awaitable<error_code> connect(std::string& error) {
    close();
    std::vector<Endpoint> endpoints;
    if (const error_code ec = co_await resolve(endpoints, error)) co_return ec;
    if (timed_out) co_return asio::error::operation_aborted;
    error_code ec;
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
  NameLookup lookup;
  std::shared_ptr<PendingLookup> pending;  // a lookup under way, perhaps given up on by a post
  asio::io_context io{1};
  std::optional<asio::ssl::context> tls_context;
  std::variant<std::monostate, Tcp, std::unique_ptr<Tls>> socket;
  bool timed_out = false;  // the post gave up: the exchange stops at its next step
};

HttpPoster::HttpPoster(HttpTarget target, NameLookup lookup)
    : impl_(std::make_unique<Impl>(std::move(target), std::move(lookup))) {}

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
    // exchange ends there; a name lookup under way is left to its thread.
    impl_->timed_out = true;
    impl_->close();
    if (impl_->pending) impl_->pending->abandon();
    impl_->io.restart();
    impl_->io.run();
    out = Outcome{};
    out.error = "no response from " + impl_->target.host_header + " within " +
                std::to_string(timeout.count()) + " ms";
  }
  return out;
}

}  // namespace promptcache::telemetry
