#include "promptcache/net/connection.hpp"

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/stream.hpp"
#include "promptcache/error.hpp"
#include "promptcache/log.hpp"

namespace promptcache::net {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t min_read_space = 16 * 1024;
constexpr std::size_t initial_read_buffer = 64 * 1024;
constexpr std::size_t max_idle_read_buffer = 1024 * 1024;

auto ignore_error(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    logger()->error("redis connection task failed: {}", ex.what());
  }
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// AUTH [username] password, when there is a password.
void push_auth(resp::Request& req, const std::string& username, const std::string& password) {
  if (password.empty()) return;
  if (username.empty()) {
    req.push("AUTH", password);
  } else {
    req.push("AUTH", username, password);
  }
}

}  // namespace

std::shared_ptr<Connection> Connection::create(asio::any_io_executor ex, ClientConfig cfg,
                                               std::shared_ptr<asio::ssl::context> tls) {
  if (cfg.transport == Transport::tls && !tls) tls = make_tls_context(cfg);
  return std::shared_ptr<Connection>(new Connection(std::move(ex), std::move(cfg), std::move(tls)));
}

Connection::Connection(asio::any_io_executor ex, ClientConfig cfg,
                       std::shared_ptr<asio::ssl::context> tls)
    : ex_(std::move(ex)),
      cfg_(std::move(cfg)),
      tls_(std::move(tls)),
      stream_(std::make_unique<Stream>(ex_)),
      parser_(cfg_.limits),
      writer_done_(ex_, Clock::time_point::max()),
      backoff_(ex_),
      health_timer_(ex_),
      connect_event_(ex_, Clock::time_point::max()),
      deadlines_(ex_, Clock::time_point::max()),
      rng_(std::random_device{}()) {}

Connection::~Connection() = default;

void Connection::start() {
  if (started_ || closed_) return;
  started_ = true;
  auto self = shared_from_this();
  asio::co_spawn(
      ex_, [self]() { return self->run(); }, log_exception);
  asio::co_spawn(
      ex_, [self]() { return self->sweeper(); }, log_exception);
}

ConnectionStats Connection::stats() const noexcept {
  ConnectionStats s = stats_;
  s.in_flight = queue_.size();
  return s;
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  connected_ = false;
  ++generation_;
  fail_all(error::closed);
  stream_->close();
  backoff_.cancel();
  health_timer_.cancel();
  wake_writer();
  connect_event_.cancel();
  deadlines_.cancel();
}

// ---- connecting ------------------------------------------------------------------------

asio::awaitable<error_code> Connection::connect() {
  start();
  const std::uint64_t seen = attempts_;
  while (!connected_ && !closed_ && attempts_ == seen) {
    error_code ec;
    co_await connect_event_.async_wait(ignore_error(ec));
  }
  if (closed_) co_return error::closed;
  if (connected_) co_return error_code{};
  co_return last_error_;
}

void Connection::notify_connect_waiters() {
  connect_event_.cancel();
}

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  unsigned failures = 0;
  while (!closed_) {
    error_code ec = co_await connect_once();
    ++attempts_;
    if (!ec && !closed_) {
      failures = 0;
      connected_ = true;
      down_ = false;
      last_error_ = {};
      last_error_msg_.clear();
      notify_connect_waiters();
      logger()->info("redis connected address={} protocol={}", cfg_.address(), resp3_ ? 3 : 2);
      const std::uint64_t gen = ++generation_;
      writer_active_ = true;
      // No reference for the writer: run() waits for it to end, and an idle writer's handler
      // sits in writer_wake_, where a reference would make a cycle.
      asio::co_spawn(
          ex_, [this, gen]() { return writer(gen); }, log_exception);
      if (cfg_.health_check_interval.count() > 0) {
        asio::co_spawn(
            ex_, [self, gen]() { return self->health_check(gen); }, log_exception);
      }
      ec = co_await reader();

      connected_ = false;
      ++generation_;
      stream_->close();
      // Invalidations for what this connection read are lost from here on.
      if (cfg_.tracking.listener) cfg_.tracking.listener->link_down();
      wake_writer();
      health_timer_.cancel();
      while (writer_active_) {
        error_code ignored;
        co_await writer_done_.async_wait(ignore_error(ignored));
      }
      if (closed_) break;
      const bool protocol = ec == error::protocol_error || ec == error::limit_exceeded;
      logger()->warn("redis connection lost address={} error=\"{}\" in_flight={}", cfg_.address(),
                     ec.message(), written_);
      fail_written(protocol ? ec : make_error_code(error::connection_lost));
      last_error_ = error::not_connected;
      ++stats_.reconnects;
    } else {
      ++failures;
      if (!closed_) {
        last_error_ = ec;
        logger()->warn("redis connect failed address={} error=\"{}\"", cfg_.address(),
                       last_error_msg_);
        down_ = true;
        fail_all(ec);  // what waited for this attempt learns at once that it failed
      }
      notify_connect_waiters();
    }
    if (closed_) break;
    // Full jitter between half and all of an exponentially growing delay.
    const auto base =
        std::min<std::int64_t>(cfg_.reconnect_max_delay.count(), cfg_.reconnect_min_delay.count()
                                                                     << std::min(failures, 20u));
    std::uniform_int_distribution<std::int64_t> jitter(base / 2, std::max<std::int64_t>(base, 1));
    backoff_.expires_after(std::chrono::milliseconds(jitter(rng_)));
    error_code ignored;
    co_await backoff_.async_wait(ignore_error(ignored));
  }
  fail_all(error::closed);
}

asio::awaitable<error_code> Connection::connect_once() {
  auto self = shared_from_this();
  parser_.reset();
  rpos_ = rend_ = 0;
  resp3_ = false;
  push_.clear();

  // The watchdog closes the stream when the connect timeout passes; 0 running, 1 done,
  // 2 timed out. Shared because its handler may run after this coroutine has returned.
  auto state = std::make_shared<int>(0);
  asio::steady_timer watchdog(ex_);
  watchdog.expires_after(cfg_.connect_timeout);
  watchdog.async_wait([this, self, state](error_code ec) {
    if (!ec && *state == 0) {
      *state = 2;
      stream_->close();
    }
  });

  std::string detail;
  error_code ec;
  demoted_ = false;
  if (cfg_.sentinel) ec = co_await discover_master(detail, state);
  if (!ec && *state == 0) ec = co_await stream_->connect(cfg_, tls_.get(), detail);
  if (!ec && *state == 0) ec = co_await handshake_with(detail);
  if (!ec && *state == 0 && cfg_.sentinel) ec = co_await check_role(detail);
  if (*state == 2) {
    ec = error::connect_timeout;
    detail = fmt::format("connecting to {} timed out after {} ms", cfg_.address(),
                         cfg_.connect_timeout.count());
  }
  *state = 1;
  watchdog.cancel();
  if (ec) {
    stream_->close();
    last_error_msg_ = detail.empty() ? ec.message() : detail;
  }
  co_return ec;
}

asio::awaitable<error_code> Connection::exchange(const resp::Request& req,
                                                 resp::ReplyCollector& out) {
  error_code ec;
  co_await stream_->write(asio::buffer(req.payload()), ec);
  if (ec) co_return ec;
  std::size_t replies = 0;
  while (replies < req.commands()) {
    std::size_t used = 0;
    while (auto node = parser_.next({rbuf_.data() + rpos_, rend_ - rpos_}, used, ec)) {
      rpos_ += used;
      if (node->depth == 0) message_root_ = node->type;
      if (message_root_ == resp::Type::push) continue;  // nothing to track before HELLO
      out.on_node(*node);
      if (parser_.done() && message_root_ != resp::Type::attribute) ++replies;
      if (replies == req.commands()) break;
    }
    if (ec) co_return ec;
    if (replies == req.commands()) break;
    if (!co_await fill(ec)) co_return ec;
  }
  co_return ec;
}

asio::awaitable<error_code> Connection::handshake_with(std::string& detail) {
  const std::string user = cfg_.username.empty() ? "default" : cfg_.username;
  resp::Request hello;
  if (cfg_.password.empty()) {
    hello.push("HELLO", "3", "SETNAME", cfg_.client_name);
  } else {
    hello.push("HELLO", "3", "AUTH", user, cfg_.password, "SETNAME", cfg_.client_name);
  }
  if (cfg_.db != 0) hello.push("SELECT", cfg_.db);
  if (cfg_.readonly) hello.push("READONLY");
  resp::ReplyCollector out;
  error_code ec = co_await exchange(hello, out);
  if (ec) {
    detail = fmt::format("handshake with {} failed: {}", cfg_.address(), ec.message());
    co_return ec;
  }
  auto& replies = out.replies();
  auto auth_error = [&](std::string_view message) {
    if (starts_with(message, "NOAUTH") && cfg_.password.empty()) {
      detail = fmt::format(
          "authentication failed for {}: the server requires a password (REDIS_PASSWORD or the "
          "URL's user info)",
          cfg_.address());
    } else {
      detail = fmt::format("authentication failed for {}: {}", cfg_.address(), message);
    }
    return make_error_code(error::auth_failed);
  };
  auto is_auth_message = [](std::string_view m) {
    return starts_with(m, "WRONGPASS") || starts_with(m, "NOAUTH") ||
           m.find("invalid password") != std::string_view::npos ||
           m.find("invalid username-password") != std::string_view::npos;
  };

  if (replies[0].is_error()) {
    const std::string& message = replies[0].value;
    if (is_auth_message(message)) co_return auth_error(message);
    if (!starts_with(message, "NOPROTO") && !starts_with(message, "ERR unknown command")) {
      detail = fmt::format("handshake with {} failed: {}", cfg_.address(), message);
      co_return error::server_error;
    }
    // A server without RESP3: authenticate and name the connection the RESP2 way.
    resp::Request legacy;
    push_auth(legacy, cfg_.username, cfg_.password);
    legacy.push("CLIENT", "SETNAME", cfg_.client_name);
    if (cfg_.db != 0) legacy.push("SELECT", cfg_.db);
    if (cfg_.readonly) legacy.push("READONLY");
    out.clear();
    ec = co_await exchange(legacy, out);
    if (ec) {
      detail = fmt::format("handshake with {} failed: {}", cfg_.address(), ec.message());
      co_return ec;
    }
    for (const auto& r : out.replies()) {
      if (!r.is_error()) continue;
      if (is_auth_message(r.value)) co_return auth_error(r.value);
      detail = fmt::format("handshake with {} failed: {}", cfg_.address(), r.value);
      co_return error::server_error;
    }
    resp3_ = false;
    if (cfg_.tracking.listener) {
      cfg_.tracking.listener->tracking_refused("the server speaks RESP2 only: no push messages");
    }
    co_return error_code{};
  }
  resp3_ = true;
  if (cfg_.tracking.listener) {
    // Tracking belongs to the connection: every new one asks again, before any read.
    resp::Request track;
    std::vector<std::string_view> args;  // not a braced list: g++ 12 coroutines
    args.push_back("TRACKING");
    args.push_back("ON");
    if (cfg_.tracking.bcast) {
      args.push_back("BCAST");
      for (const auto& p : cfg_.tracking.prefixes) {
        args.push_back("PREFIX");
        args.push_back(p);
      }
    }
    track.push_range("CLIENT", args);
    resp::ReplyCollector tracked;
    if (error_code tec = co_await exchange(track, tracked)) {
      detail = fmt::format("CLIENT TRACKING on {} failed: {}", cfg_.address(), tec.message());
      co_return tec;
    }
    if (tracked.replies().empty() || tracked.replies().front().is_error()) {
      cfg_.tracking.listener->tracking_refused(
          tracked.replies().empty() ? "no reply" : tracked.replies().front().value);
    }
  }
  if (cfg_.db != 0 && replies.size() > 1 && replies[1].is_error()) {
    detail = fmt::format("SELECT {} on {} failed: {}", cfg_.db, cfg_.address(), replies[1].value);
    co_return error::server_error;
  }
  if (cfg_.readonly && replies.back().is_error()) {
    detail = fmt::format("READONLY on {} failed: {}", cfg_.address(), replies.back().value);
    co_return error::server_error;
  }
  co_return error_code{};
}

asio::awaitable<error_code> Connection::discover_master(std::string& detail,
                                                        std::shared_ptr<int> state) {
  const SentinelConfig& sentinel = *cfg_.sentinel;
  std::string failures;
  for (std::size_t n = 0; n < sentinel.sentinels.size() && *state == 0; ++n) {
    const std::size_t i = (sentinel_first_ + n) % sentinel.sentinels.size();
    ClientConfig at = cfg_;  // the transport, TLS files and limits; the sentinel's address
    at.host = sentinel.sentinels[i].host;
    at.port = sentinel.sentinels[i].port;
    std::string why;
    resp::ReplyCollector out;
    error_code ec = co_await stream_->connect(at, tls_.get(), why);
    if (!ec) {
      resp::Request ask;
      push_auth(ask, sentinel.username, sentinel.password);
      ask.push("SENTINEL", "get-master-addr-by-name", sentinel.master_name);
      ec = co_await exchange(ask, out);
    }
    stream_->close();
    parser_.reset();
    rpos_ = rend_ = 0;
    if (!failures.empty()) failures += "; ";
    failures += sentinel.sentinels[i].to_string() + ": ";
    if (ec) {
      failures += why.empty() ? ec.message() : why;
      continue;
    }
    if (const auto& first = out.replies().front(); first.is_error()) {
      failures += first.value;  // AUTH refused, or SENTINEL unknown: not a sentinel
      continue;
    }
    const resp::Reply& reply = out.replies().back();
    std::optional<Endpoint> master;
    if (reply.elements.size() == 2) {
      master = parse_endpoint(reply.elements[0].value + ":" + reply.elements[1].value);
    }
    if (!master) {
      failures += reply.type == resp::Type::null ? "does not know this master" : "unexpected reply";
      continue;
    }
    cfg_.host = std::move(master->host);
    cfg_.port = master->port;
    sentinel_first_ = i;
    co_return error_code{};
  }
  detail = fmt::format("no sentinel named a master for {:?} ({})", sentinel.master_name, failures);
  co_return error::not_master;
}

asio::awaitable<error_code> Connection::check_role(std::string& detail) {
  resp::Request role;
  role.push("ROLE");
  resp::ReplyCollector out;
  if (error_code ec = co_await exchange(role, out)) {
    detail = fmt::format("ROLE on {} failed: {}", cfg_.address(), ec.message());
    co_return ec;
  }
  const resp::Reply& reply = out.replies().front();
  if (reply.elements.empty() || reply.elements[0].value != "master") {
    detail = fmt::format("{} is not the master of {:?} (a failover in progress?)", cfg_.address(),
                         cfg_.sentinel->master_name);
    co_return error::not_master;
  }
  co_return error_code{};
}

// ---- reading ---------------------------------------------------------------------------

asio::awaitable<bool> Connection::fill(error_code& ec) {
  if (rpos_ == rend_) {
    rpos_ = rend_ = 0;
    if (rbuf_.size() > max_idle_read_buffer) {
      rbuf_.resize(initial_read_buffer);
      rbuf_.shrink_to_fit();
    }
  }
  if (rbuf_.size() - rend_ < min_read_space) {
    if (rpos_ > 0) {
      std::memmove(rbuf_.data(), rbuf_.data() + rpos_, rend_ - rpos_);
      rend_ -= rpos_;
      rpos_ = 0;
    }
    if (rbuf_.size() - rend_ < min_read_space) {
      rbuf_.resize(std::max(rbuf_.size() * 2, initial_read_buffer));
    }
  }
  const std::size_t n =
      co_await stream_->read_some(asio::buffer(rbuf_.data() + rend_, rbuf_.size() - rend_), ec);
  if (ec) co_return false;
  rend_ += n;
  last_read_ = Clock::now();
  co_return true;
}

asio::awaitable<error_code> Connection::reader() {
  error_code ec;
  for (;;) {
    // Half-way through the callers this read completes, the writer is woken: it sends what the
    // first half asked for next while the second half runs, so Redis works on one half while
    // we work on the other. Waking it only when all callers have run would leave one of the
    // two (Redis or us) idle at any time.
    early_flush_in_ = written_ >= 4 ? written_ / 2 : 0;
    std::size_t used = 0;
    while (auto node = parser_.next({rbuf_.data() + rpos_, rend_ - rpos_}, used, ec)) {
      rpos_ += used;
      if (!dispatch(*node)) {
        logger()->error("redis sent a reply nobody asked for address={}", cfg_.address());
        co_return error::protocol_error;
      }
    }
    if (demoted_) {
      logger()->warn("redis master {} was demoted (READONLY); asking the sentinels again",
                     cfg_.address());
      co_return error::not_master;
    }
    if (ec) {
      logger()->error("redis protocol error address={} error=\"{}\"", cfg_.address(), ec.message());
      co_return ec;
    }
    if (!co_await fill(ec)) co_return ec;
  }
}

void Connection::track(const resp::Reply& message) {
  // ["invalidate", [key, …]] or ["invalidate", null] (everything).
  if (message.elements.size() != 2 || message.elements[0].value != "invalidate") return;
  const resp::Reply& keys = message.elements[1];
  if (keys.type == resp::Type::null) {
    cfg_.tracking.listener->invalidated_all();
    return;
  }
  for (const auto& k : keys.elements) cfg_.tracking.listener->invalidated(k.value);
}

bool Connection::dispatch(const resp::Node& node) {
  if (node.depth == 0) message_root_ = node.type;
  switch (message_root_) {
    case resp::Type::attribute:
      return true;  // annotates the reply that follows
    case resp::Type::push:
      push_.on_node(node);
      if (parser_.done()) {
        ++stats_.pushes;
        if (!push_.replies().empty()) {
          const resp::Reply& message = push_.replies().front();
          if (cfg_.tracking.listener) track(message);
          if (push_handler_) push_handler_(message);
        }
        push_.clear();
      }
      return true;
    default:
      break;
  }
  while (written_ > 0 && queue_.front().replies == 0) pop_front_slot();  // abandoned unsent
  if (written_ == 0) return false;
  if (node.depth == 0 && resp::is_error(node.type) && cfg_.sentinel &&
      starts_with(node.value, "READONLY")) {
    demoted_ = true;
  }
  Slot& slot = queue_.front();
  if (slot.waiter != nullptr) slot.waiter->sink->on_node(node);
  if (parser_.done() && --slot.replies == 0) complete_front({});
  return true;
}

void Connection::pop_front_slot() {
  queued_bytes_ -= queue_.front().bytes;
  queue_.pop_front();
  if (written_ > 0) --written_;
}

void Connection::complete_front(error_code ec) {
  Waiter* w = queue_.front().waiter;
  pop_front_slot();
  if (w != nullptr) finish(w, ec);
  if (early_flush_in_ > 0 && --early_flush_in_ == 0) wake_writer();
}

void Connection::resume(Handler& handler) {
  if (!handler) return;
  // Through a lambda: Boost 1.81's any_completion_handler, handed to post() as it is, wraps
  // itself until the stack overflows.
  asio::post(ex_, [h = std::move(*handler)]() mutable { std::move(h)(); });
  handler.reset();
}

void Connection::finish(Waiter* w, error_code ec) {
  w->ec = ec;
  w->sink = nullptr;
  // Posted, not called: the caller resumes after the reader (or sweeper) is done with the
  // queue, so it may issue its next command at once.
  resume(w->handler);
}

void Connection::fail_written(error_code ec) {
  while (written_ > 0) complete_front(ec);
  parser_.reset();
  rpos_ = rend_ = 0;
}

void Connection::fail_all(error_code ec) {
  fail_written(ec);
  while (!queue_.empty()) complete_front(ec);
}

// ---- writing ---------------------------------------------------------------------------

void Connection::wake_writer() {
  resume(writer_wake_);
}

asio::awaitable<void> Connection::writer(std::uint64_t gen) {
  while (gen == generation_) {
    if (written_ == queue_.size()) {
      co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
          [this](auto handler) { writer_wake_.emplace(std::move(handler)); }, asio::use_awaitable);
      continue;
    }
    // Everything that queued up while the last write was in flight goes out together.
    wbuf_.clear();
    for (std::size_t i = written_; i < queue_.size(); ++i) {
      const resp::Request* req = queue_[i].request;
      if (req == nullptr) continue;  // its caller gave up before it was sent
      wbuf_.append(req->payload());
      stats_.commands_sent += req->commands();
      queue_[i].request = nullptr;
    }
    written_ = queue_.size();
    if (wbuf_.empty()) continue;
    ++stats_.writes;
    error_code ec;
    co_await stream_->write(asio::buffer(wbuf_), ec);
    if (ec) {
      if (gen == generation_) stream_->close();
      break;
    }
  }
  writer_active_ = false;
  writer_done_.cancel();
}

// ---- callers ---------------------------------------------------------------------------

Connection::Waiter* Connection::acquire_waiter() {
  if (free_waiters_.empty()) {
    waiters_.push_back(std::make_unique<Waiter>());
    return waiters_.back().get();
  }
  Waiter* w = free_waiters_.back();
  free_waiters_.pop_back();
  return w;
}

void Connection::release_waiter(Waiter* w) {
  free_waiters_.push_back(w);
}

error_code Connection::disconnected_error() const {
  if (connected_) return error::timeout;
  return last_error_ ? last_error_ : make_error_code(error::not_connected);
}

void Connection::arm_sweeper(Clock::time_point deadline) {
  if (deadline >= deadlines_armed_) return;
  deadlines_armed_ = deadline;
  deadlines_.expires_at(deadline);  // wakes the sweeper, which waits again on the new time
}

// Fails every waiter whose deadline has passed. A written command keeps its slot (its reply
// still comes and is dropped); an unsent one stays as a tombstone the writer skips.
void Connection::expire_waiters() {
  const auto now = Clock::now();
  auto next = Clock::time_point::max();
  for (std::size_t i = 0; i < queue_.size(); ++i) {
    Slot& slot = queue_[i];
    Waiter* w = slot.waiter;
    if (w == nullptr) continue;
    if (w->deadline > now) {
      next = std::min(next, w->deadline);
      continue;
    }
    slot.waiter = nullptr;
    if (i >= written_) {
      slot.request = nullptr;
      slot.replies = 0;
      queued_bytes_ -= slot.bytes;
      slot.bytes = 0;
    }
    ++stats_.timeouts;
    finish(w, disconnected_error());
  }
  // Deadlines closer together than a millisecond expire in one sweep.
  deadlines_armed_ = next == Clock::time_point::max() ? next : std::max(next, now + 1ms);
  deadlines_.expires_at(deadlines_armed_);
}

asio::awaitable<void> Connection::sweeper() {
  auto self = shared_from_this();
  while (!closed_) {
    error_code ec;
    co_await deadlines_.async_wait(ignore_error(ec));
    if (closed_) break;
    if (ec == asio::error::operation_aborted) continue;  // re-armed for an earlier deadline
    expire_waiters();
  }
}

error_code Connection::enqueue(const resp::Request& req, resp::ReplySink& sink,
                               Clock::time_point deadline, Waiter*& waiter) {
  if (closed_) return error::closed;
  start();
  if (down_) {
    ++stats_.rejected_down;
    return last_error_ ? last_error_ : make_error_code(error::not_connected);
  }
  if (queue_.size() >= cfg_.max_in_flight ||
      queued_bytes_ + req.payload().size() > cfg_.max_in_flight_bytes) {
    ++stats_.overloaded;
    return error::overloaded;
  }
  Waiter* w = acquire_waiter();
  w->sink = &sink;
  w->deadline = deadline;
  w->ec = {};
  queue_.push_back(Slot{w, &req, req.commands(), req.payload().size()});
  queued_bytes_ += req.payload().size();
  wake_writer();
  arm_sweeper(deadline);
  waiter = w;
  return {};
}

// Stores the caller's completion handler in its waiter; finish() posts it.
asio::awaitable<void> Connection::until_finished(Waiter* w) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [w](auto handler) { w->handler.emplace(std::move(handler)); }, asio::use_awaitable);
}

// One coroutine frame per command, retry included: this is the hot path.
asio::awaitable<error_code> Connection::execute(const resp::Request& req, resp::ReplySink& sink) {
  if (req.empty()) co_return error_code{};
  const bool budgeted = req.deadline() != Clock::time_point{};
  for (int attempt = 0;; ++attempt) {
    Waiter* w = nullptr;
    const auto deadline = Clock::now() + cfg_.command_timeout;
    error_code ec = enqueue(req, sink, budgeted ? std::min(deadline, req.deadline()) : deadline, w);
    if (ec) co_return ec;
    co_await until_finished(w);
    ec = w->ec;
    release_waiter(w);
    if (ec == error::timeout && attempt == 0 && cfg_.retry_on_timeout && req.idempotent() &&
        !budgeted && !closed_) {
      sink.reset();
      continue;
    }
    co_return ec;
  }
}

asio::awaitable<error_code> Connection::execute(const resp::Request& req, resp::ReplySink& sink,
                                                Clock::time_point deadline) {
  if (req.empty()) co_return error_code{};
  Waiter* w = nullptr;
  error_code ec = enqueue(req, sink, deadline, w);
  if (ec) co_return ec;
  co_await until_finished(w);
  ec = w->ec;
  release_waiter(w);
  co_return ec;
}

asio::awaitable<void> Connection::health_check(std::uint64_t gen) {
  while (gen == generation_) {
    health_timer_.expires_after(cfg_.health_check_interval);
    error_code ec;
    co_await health_timer_.async_wait(ignore_error(ec));
    if (gen != generation_) break;
    if (Clock::now() - last_read_ < cfg_.health_check_interval) continue;
    resp::Request ping;
    ping.push("PING");
    resp::ReplyCollector out;
    ec = co_await execute(ping, out, Clock::now() + cfg_.command_timeout);
    if (gen != generation_) break;
    if (ec == error::timeout) {
      logger()->warn("redis health check got no reply within {} ms address={}; reconnecting",
                     cfg_.command_timeout.count(), cfg_.address());
      stream_->close();
      break;
    }
  }
}

}  // namespace promptcache::net
