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
      queue_(sansio::QueueLimits{cfg_.max_in_flight, cfg_.max_in_flight_bytes,
                                 cfg_.sentinel.has_value()},
             cfg_.limits),
      writer_done_(ex_, Clock::time_point::max()),
      backoff_(ex_),
      health_timer_(ex_),
      connect_event_(ex_, Clock::time_point::max()),
      deadlines_(ex_, Clock::time_point::max()),
      rng_(std::random_device{}()) {}

Connection::~Connection() = default;

void Connection::start() {
  if (state_ != LinkState::idle) return;
  state_ = LinkState::connecting;
  auto self = shared_from_this();
  asio::co_spawn(
      ex_, [self]() { return self->run(); }, log_exception);
  asio::co_spawn(
      ex_, [self]() { return self->sweeper(); }, log_exception);
}

ConnectionStats Connection::stats() const noexcept {
  ConnectionStats s = stats_;
  const sansio::QueueStats& q = queue_.stats();
  s.commands_sent = q.commands_sent;
  s.writes = q.writes;
  s.timeouts = q.timeouts;
  s.overloaded = q.overloaded;
  s.pushes = q.pushes;
  s.in_flight = queue_.size();
  return s;
}

void Connection::close() {
  if (state_ == LinkState::closed) return;
  state_ = LinkState::closed;
  ++generation_;
  queue_.fail_all(error::closed);
  stream_->close();
  backoff_.cancel();
  health_timer_.cancel();
  wake_writer();
  connect_event_.cancel();
  deadlines_.cancel();
}

// ---- the runner: attempts, links, pauses -------------------------------------------------

asio::awaitable<error_code> Connection::connect() {
  start();
  const std::uint64_t seen = attempts_;
  while (state_ != LinkState::ready && state_ != LinkState::closed && attempts_ == seen) {
    error_code ec;
    co_await connect_event_.async_wait(ignore_error(ec));
  }
  if (state_ == LinkState::closed) co_return error::closed;
  if (state_ == LinkState::ready) co_return error_code{};
  co_return last_error_;
}

void Connection::notify_connect_waiters() {
  connect_event_.cancel();
}

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  unsigned failures = 0;
  while (state_ != LinkState::closed) {
    const error_code ec = co_await connect_once();
    ++attempts_;
    if (state_ == LinkState::closed) break;
    if (!ec) {
      failures = 0;
      co_await serve_link();
    } else {
      ++failures;
      state_ = LinkState::down;
      last_error_ = ec;
      logger()->warn("redis connect failed address={} error=\"{}\"", cfg_.address(),
                     last_error_msg_);
      queue_.fail_all(ec);  // what waited for this attempt learns at once that it failed
      notify_connect_waiters();
    }
    if (state_ == LinkState::closed) break;
    co_await pause_before_retry(failures);
    if (state_ == LinkState::backoff) state_ = LinkState::connecting;
  }
  queue_.fail_all(error::closed);
}

asio::awaitable<void> Connection::serve_link() {
  auto self = shared_from_this();
  state_ = LinkState::ready;
  last_error_ = {};
  last_error_msg_.clear();
  notify_connect_waiters();
  logger()->info("redis connected address={} protocol={}", cfg_.address(), resp3_ ? 3 : 2);
  const std::uint64_t gen = ++generation_;
  writer_running_ = true;
  // No reference for the writer: this waits for it to end, and an idle writer's handler sits
  // in writer_wake_, where a reference would make a cycle.
  asio::co_spawn(
      ex_, [this, gen]() { return writer(gen); }, log_exception);
  if (cfg_.health_check_interval.count() > 0) {
    asio::co_spawn(
        ex_, [self, gen]() { return self->health_check(gen); }, log_exception);
  }
  const error_code ec = co_await reader();

  if (state_ == LinkState::ready) state_ = LinkState::draining;
  ++generation_;
  stream_->close();
  // Invalidations for what this link read are lost from here on.
  if (cfg_.tracking.listener) cfg_.tracking.listener->link_down();
  wake_writer();
  health_timer_.cancel();
  while (writer_running_) {
    error_code ignored;
    co_await writer_done_.async_wait(ignore_error(ignored));
  }
  if (state_ == LinkState::closed) co_return;
  const bool protocol = ec == error::protocol_error || ec == error::limit_exceeded;
  logger()->warn("redis connection lost address={} error=\"{}\" in_flight={}", cfg_.address(),
                 ec.message(), queue_.on_wire());
  queue_.link_lost(protocol ? ec : make_error_code(error::connection_lost));
  last_error_ = error::not_connected;
  ++stats_.reconnects;
  state_ = LinkState::backoff;
}

asio::awaitable<void> Connection::pause_before_retry(unsigned failures) {
  // Full jitter between half and all of an exponentially growing delay.
  const auto base =
      std::min<std::int64_t>(cfg_.reconnect_max_delay.count(), cfg_.reconnect_min_delay.count()
                                                                   << std::min(failures, 20u));
  std::uniform_int_distribution<std::int64_t> jitter(base / 2, std::max<std::int64_t>(base, 1));
  backoff_.expires_after(std::chrono::milliseconds(jitter(rng_)));
  error_code ignored;
  co_await backoff_.async_wait(ignore_error(ignored));
}

asio::awaitable<error_code> Connection::connect_once() {
  auto self = shared_from_this();
  rbuf_.clear();
  resp3_ = false;

  // The watchdog closes the stream when the connect timeout passes; whatever step the attempt
  // is in then fails. A late handler (timer fired just before the cancel) sees attempts_ moved
  // on and does nothing.
  const std::uint64_t attempt = attempts_;
  watch_ = Watch::running;
  asio::steady_timer watchdog(ex_);
  watchdog.expires_after(cfg_.connect_timeout);
  watchdog.async_wait([this, self, attempt](error_code ec) {
    if (ec || attempts_ != attempt || watch_ != Watch::running) return;
    watch_ = Watch::timed_out;
    stream_->close();
  });

  sansio::ConnectAlgo algo(cfg_, sentinel_first_);
  error_code ec = co_await drive(algo);
  const bool timed_out = watch_ == Watch::timed_out;
  watch_ = Watch::idle;
  watchdog.cancel();
  if (const auto& master = algo.master()) {
    cfg_.host = master->host;
    cfg_.port = master->port;
    sentinel_first_ = algo.sentinel_answered();
  }
  std::string detail = algo.detail();
  if (timed_out) {
    ec = error::connect_timeout;
    detail = fmt::format("connecting to {} timed out after {} ms", cfg_.address(),
                         cfg_.connect_timeout.count());
  }
  if (ec) {
    stream_->close();
    last_error_msg_ = detail.empty() ? ec.message() : detail;
    co_return ec;
  }
  resp3_ = algo.resp3();
  if (const auto why = algo.tracking_refused(); why && cfg_.tracking.listener) {
    cfg_.tracking.listener->tracking_refused(*why);
  }
  co_return ec;
}

// Performs the algorithm's steps on the stream until it is done.
asio::awaitable<error_code> Connection::drive(sansio::ConnectAlgo& algo) {
  sansio::Exchange replies(cfg_.limits);
  sansio::Step step = algo.resume(sansio::Outcome{});
  while (step.kind != sansio::Step::Kind::done) {
    sansio::Outcome outcome;
    std::string why;
    if (step.kind == sansio::Step::Kind::connect) {
      outcome.ec = co_await open_stream(step.endpoint, why);
      outcome.detail = why;
    } else if (step.kind == sansio::Step::Kind::exchange) {
      outcome.ec = co_await exchange(*step.request, replies);
      outcome.replies = replies.replies();
    } else {
      stream_->close();
      rbuf_.clear();
    }
    step = algo.resume(outcome);
  }
  co_return step.ec;
}

asio::awaitable<error_code> Connection::open_stream(const std::optional<Endpoint>& to,
                                                    std::string& why) {
  if (!to) co_return co_await stream_->connect(cfg_, tls_.get(), why);
  ClientConfig at = cfg_;  // the transport, TLS files and limits; this address
  at.host = to->host;
  at.port = to->port;
  co_return co_await stream_->connect(at, tls_.get(), why);
}

asio::awaitable<error_code> Connection::exchange(const resp::Request& req,
                                                 sansio::Exchange& replies) {
  error_code ec;
  co_await stream_->write(asio::buffer(req.payload()), ec);
  if (ec) co_return ec;
  replies.start(req);
  for (;;) {
    std::size_t used = 0;
    const bool complete = replies.feed(rbuf_.data(), used, ec);
    rbuf_.consume(used);
    if (complete || ec) co_return ec;
    if (!co_await fill(ec)) co_return ec;
  }
}

// ---- reading ---------------------------------------------------------------------------

asio::awaitable<bool> Connection::fill(error_code& ec) {
  const std::span<char> room = rbuf_.prepare();
  const std::size_t n = co_await stream_->read_some(asio::buffer(room.data(), room.size()), ec);
  if (ec) co_return false;
  rbuf_.commit(n);
  last_read_ = Clock::now();
  co_return true;
}

asio::awaitable<error_code> Connection::reader() {
  error_code ec;
  for (;;) {
    queue_.begin_read();
    for (bool more = true; more;) {
      std::size_t used = 0;
      const sansio::Consumed what = queue_.consume(rbuf_.data(), used, ec);
      rbuf_.consume(used);
      switch (what) {
        case sansio::Consumed::reply:
          // Half-way through the callers this read completes, the writer is woken: it sends
          // what the first half asked for next while the second half runs, so Redis works on
          // one half while we work on the other.
          if (queue_.take_flush_hint()) wake_writer();
          break;
        case sansio::Consumed::push:
          on_push(queue_.last_push());
          break;
        case sansio::Consumed::failed:
          logger()->error("redis protocol error address={} error=\"{}\"", cfg_.address(),
                          ec.message());
          co_return ec;
        case sansio::Consumed::needs_more:
          more = false;
          break;
      }
    }
    if (queue_.demoted()) {
      logger()->warn("redis master {} was demoted (READONLY); asking the sentinels again",
                     cfg_.address());
      co_return error::not_master;
    }
    if (!co_await fill(ec)) co_return ec;
  }
}

void Connection::on_push(const resp::Reply& message) {
  // Invalidations: ["invalidate", [key, …]] or ["invalidate", null] (everything).
  TrackingListener* listener = cfg_.tracking.listener.get();
  if (listener != nullptr && message.elements.size() == 2 &&
      message.elements[0].value == "invalidate") {
    const resp::Reply& keys = message.elements[1];
    if (keys.type == resp::Type::null) {
      listener->invalidated_all();
    } else {
      for (const auto& k : keys.elements) listener->invalidated(k.value);
    }
  }
  if (push_handler_) push_handler_(message);
}

void Connection::ready(Handler& handler) {
  if (!handler) return;
  ready_.push_back(std::move(*handler));
  handler.reset();
  if (ready_.size() > 1) return;  // a run is posted already
  asio::post(ex_, [self = shared_from_this()]() { self->resume_ready(); });
}

void Connection::resume_ready() {
  // A resumed caller may finish another command at once (a queue failure): that one joins
  // ready_, emptied here, and posts the next run.
  resuming_.swap(ready_);
  std::size_t i = 0;
  try {
    for (; i < resuming_.size(); ++i) std::move(resuming_[i])();
  } catch (...) {
    // A completion threw out of the caller's coroutine (its co_spawn handler rethrew): that
    // goes on to whoever runs the executor, as a posted resumption's would, and the callers
    // after it are still resumed, by the next run.
    for (std::size_t j = i + 1; j < resuming_.size(); ++j) {
      Handler rest(std::move(resuming_[j]));
      ready(rest);
    }
    resuming_.clear();
    throw;
  }
  resuming_.clear();
}

// ---- writing ---------------------------------------------------------------------------

void Connection::wake_writer() {
  ready(writer_wake_);  // in turn with the callers: after those finished before the wake-up
}

asio::awaitable<void> Connection::writer(std::uint64_t gen) {
  while (gen == generation_) {
    // Everything that queued up while the last write was in flight goes out together.
    const std::string_view bytes = queue_.prepare_write();
    if (bytes.empty()) {
      co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
          [this](auto handler) { writer_wake_.emplace(std::move(handler)); }, asio::use_awaitable);
      continue;
    }
    error_code ec;
    co_await stream_->write(asio::buffer(bytes), ec);
    if (ec) {
      if (gen == generation_) stream_->close();
      break;
    }
    queue_.commit_write();
  }
  writer_running_ = false;
  writer_done_.cancel();
}

// ---- callers ---------------------------------------------------------------------------

Connection::Waiter* Connection::acquire_waiter() {
  if (free_waiters_.empty()) {
    waiters_.push_back(std::make_unique<Waiter>());
    waiters_.back()->owner = this;
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
  if (state_ == LinkState::ready) return error::timeout;
  return last_error_ ? last_error_ : make_error_code(error::not_connected);
}

void Connection::arm_sweeper(Clock::time_point deadline) {
  if (deadline >= deadlines_armed_) return;
  deadlines_armed_ = deadline;
  deadlines_.expires_at(deadline);  // wakes the sweeper, which waits again on the new time
}

asio::awaitable<void> Connection::sweeper() {
  auto self = shared_from_this();
  while (state_ != LinkState::closed) {
    error_code ec;
    co_await deadlines_.async_wait(ignore_error(ec));
    if (state_ == LinkState::closed) break;
    if (ec == asio::error::operation_aborted) continue;  // re-armed for an earlier deadline
    const auto now = Clock::now();
    const auto next = queue_.expire(now, disconnected_error());
    // Deadlines closer together than a millisecond expire in one sweep.
    deadlines_armed_ = next == Clock::time_point::max() ? next : std::max(next, now + 1ms);
    deadlines_.expires_at(deadlines_armed_);
  }
}

error_code Connection::enqueue(const resp::Request& req, resp::ReplySink& sink,
                               Clock::time_point deadline, Waiter*& waiter) {
  if (state_ == LinkState::closed) return error::closed;
  start();
  if (state_ == LinkState::down) {
    ++stats_.rejected_down;
    return last_error_ ? last_error_ : make_error_code(error::not_connected);
  }
  Waiter* w = acquire_waiter();
  w->ec = {};
  if (error_code ec = queue_.add(req, sink, deadline, *w)) {
    release_waiter(w);
    return ec;
  }
  wake_writer();
  arm_sweeper(deadline);
  waiter = w;
  return {};
}

// Stores the caller's completion handler in its waiter; the waiter's complete() posts it.
asio::awaitable<void> Connection::until_finished(Waiter* w) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [w](auto handler) { w->handler.emplace(std::move(handler)); }, asio::use_awaitable);
}

// One coroutine frame per command, retry included: this is the hot path. A caller on another
// executor is moved onto the connection's (its queue and waiters belong to that executor).
asio::awaitable<error_code> Connection::execute(const resp::Request& req, resp::ReplySink& sink) {
  if (req.empty()) co_return error_code{};
  if (const auto caller = co_await asio::this_coro::executor; caller != ex_) {
    // A named lambda: g++ 12 and temporaries in co_await expressions (docs/client.md).
    auto op = [keep = shared_from_this(), &req, &sink]() { return keep->execute(req, sink); };
    co_return co_await asio::co_spawn(ex_, std::move(op), asio::use_awaitable);
  }
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
        !budgeted && state_ != LinkState::closed) {
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
