#include "promptcache/net/client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/stream.hpp"
#include "promptcache/error.hpp"

namespace promptcache::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Keeps the value of a GET-like reply.
class BulkSink final : public resp::ReplySink {
 public:
  void on_node(const resp::Node& node) override {
    if (node.depth != 0) return;
    switch (resp::value_reply(node.type)) {
      case resp::ValueReply::value:
        value.emplace(node.value);
        break;
      case resp::ValueReply::none:
        value.reset();
        break;
      case resp::ValueReply::error:
        error = error::server_error;
        break;
      case resp::ValueReply::unexpected:
        error = error::unexpected_reply;
        break;
    }
  }
  void reset() noexcept override {
    value.reset();
    error = {};
  }
  std::optional<std::string> value;
  error_code error;
};

}  // namespace

Client::Client(const std::vector<asio::any_io_executor>& executors, ClientConfig cfg)
    : cfg_(std::move(cfg)) {
  if (executors.empty()) throw ConfigError("Client: no executor given");
  std::shared_ptr<asio::ssl::context> tls;
  if (cfg_.transport == Transport::tls) tls = make_tls_context(cfg_);
  const std::size_t n = std::min(executors.size(), std::max<std::size_t>(cfg_.max_connections, 1));
  for (std::size_t i = 0; i < n; ++i) {
    connections_.push_back(Connection::create(executors[i], cfg_, tls));
  }
}

Client::Client(asio::any_io_executor ex, ClientConfig cfg)
    : Client(std::vector<asio::any_io_executor>{std::move(ex)}, std::move(cfg)) {}

Client::~Client() {
  close();
}

void Client::close() {
  for (auto& c : connections_) {
    asio::dispatch(c->get_executor(), [c] { c->close(); });
  }
}

Connection& Client::pick(const asio::any_io_executor& ex) {
  for (auto& c : connections_) {
    if (c->get_executor() == ex) return *c;
  }
  return *connections_[next_.fetch_add(1, std::memory_order_relaxed) % connections_.size()];
}

asio::awaitable<error_code> Client::connect() {
  error_code first;
  for (auto& c : connections_) {
    // g++ 12 destroys a capturing lambda made inside a co_await expression twice: name it.
    auto op = [c]() { return c->connect(); };
    error_code ec = co_await asio::co_spawn(c->get_executor(), std::move(op), asio::use_awaitable);
    if (ec && !first) first = ec;
  }
  co_return first;
}

// Not a coroutine with one connection (the usual client): a command costs the connection's
// frame alone, which moves a caller from another executor itself.
asio::awaitable<error_code> Client::execute(const resp::Request& req, resp::ReplySink& sink) {
  if (connections_.size() == 1) return connections_.front()->execute(req, sink);
  return execute_pooled(req, sink);
}

asio::awaitable<error_code> Client::execute_pooled(const resp::Request& req,
                                                   resp::ReplySink& sink) {
  const auto ex = co_await asio::this_coro::executor;
  co_return co_await pick(ex).execute(req, sink);
}

asio::awaitable<Result<resp::Reply>> Client::command(resp::Request req) {
  resp::ReplyCollector out;
  if (error_code ec = co_await execute(req, out)) co_return ec;
  if (out.replies().empty()) co_return make_error_code(error::unexpected_reply);
  co_return std::move(out.replies().front());
}

resp::Request Client::get_request(std::string_view key,
                                  std::chrono::steady_clock::time_point deadline) {
  resp::Request req;
  req.push("GET", key).set_idempotent(true).set_deadline(deadline);
  return req;
}

asio::awaitable<Result<std::optional<std::string>>> Client::get(
    std::string_view key, std::chrono::steady_clock::time_point deadline) {
  const resp::Request req = get_request(key, deadline);
  BulkSink sink;
  if (error_code ec = co_await execute(req, sink)) co_return ec;
  if (sink.error) co_return sink.error;
  co_return std::move(sink.value);
}

asio::awaitable<error_code> Client::set(std::string_view key, std::string_view value,
                                        std::optional<std::uint64_t> ttl_seconds) {
  resp::Request req;
  if (ttl_seconds && *ttl_seconds > 0) {
    req.push("SET", key, value, "EX", *ttl_seconds);
  } else {
    req.push("SET", key, value);
  }
  req.set_idempotent(true);
  resp::StatusTally sink;
  if (error_code ec = co_await execute(req, sink)) co_return ec;
  co_return sink.errors > 0 ? make_error_code(error::server_error) : error_code{};
}

std::string Client::last_error_message() const {
  for (const auto& c : connections_) {
    if (!c->last_error_message().empty()) return c->last_error_message();
  }
  return {};
}

ConnectionStats Client::stats() const {
  ConnectionStats sum;
  for (const auto& c : connections_) {
    const ConnectionStats s = c->stats();
    sum.commands_sent += s.commands_sent;
    sum.writes += s.writes;
    sum.reconnects += s.reconnects;
    sum.timeouts += s.timeouts;
    sum.overloaded += s.overloaded;
    sum.rejected_down += s.rejected_down;
    sum.pushes += s.pushes;
    sum.in_flight += s.in_flight;
  }
  return sum;
}

}  // namespace promptcache::net
