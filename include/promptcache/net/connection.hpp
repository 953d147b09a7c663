// One Redis connection shared by many coroutines, with automatic pipelining: every command
// waiting when the writer is free goes out in one write; replies complete callers in order.
//
// Threading: a Connection belongs to the executor it was made with (an io_context run by one
// thread, or a strand). Call every member from that executor; Client does the hop for
// callers elsewhere. Lifetime: make it with Connection::create, call close() when done; the
// object lives until its internal coroutines have finished.
//
// Failures, per caller:
// - deadline passed: error::timeout. Only that caller gives up; the command may still run
//   on the server and its reply is discarded when it comes. The connection stays open: a
//   server that stops answering is caught by the health check (a PING with the same
//   deadline), which then closes the connection and fails every written command.
// - connection dropped after the command was written: error::connection_lost (it may or may
//   not have run). Commands not yet written wait for the reconnect, up to their deadline.
// - malformed reply: error::protocol_error (or limit_exceeded) for every written command;
//   the connection is closed and made anew.
// - more than max_in_flight commands or max_in_flight_bytes queued: error::overloaded, at
//   once.
// - no connection before the deadline: the last connect error (auth_failed, a TLS or socket
//   error) or error::not_connected.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "promptcache/net/config.hpp"
#include "promptcache/net/sansio/connect_algo.hpp"
#include "promptcache/net/sansio/read_buffer.hpp"
#include "promptcache/net/sansio/request_queue.hpp"
#include "promptcache/resp/parser.hpp"
#include "promptcache/resp/reply.hpp"
#include "promptcache/resp/request.hpp"

namespace boost::asio::ssl {
class context;
}

namespace promptcache::net {

class Stream;

struct ConnectionStats {
  std::uint64_t commands_sent = 0;
  std::uint64_t writes = 0;  // commands_sent / writes = the pipelining factor
  std::uint64_t reconnects = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t overloaded = 0;
  std::uint64_t rejected_down = 0;  // failed at once: the last connect attempt had failed
  std::uint64_t pushes = 0;
  std::size_t in_flight = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Clock = std::chrono::steady_clock;
  using PushHandler = std::function<void(const resp::Reply&)>;

  // Where the link is. Only run() and close() change it.
  enum class LinkState : std::uint8_t {
    idle,        // not started: the first command (or connect()) starts it
    connecting,  // an attempt under way, the first or after a lost link: commands queue
    ready,       // connected: the writer sends, the reader completes
    draining,    // the link dropped: the writer is stopping; then what was written fails
    backoff,     // the pause before reconnecting after a lost link: commands queue
    down,        // the last attempt failed: commands fail at once with its error while the
                 // pauses and attempts go on (a server that is down costs callers nothing)
    closed,      // close(): commands fail with error::closed
  };

  [[nodiscard]] static std::shared_ptr<Connection> create(
      boost::asio::any_io_executor ex, ClientConfig cfg,
      std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting in the background (and reconnecting for as long as it is open).
  void start();

  // Waits for the first connect attempt (starting it if needed) up to the connect timeout;
  // its error otherwise: auth_failed, connect_timeout, a socket or TLS error.
  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> connect();

  // Sends `req` and feeds every node of its replies to `sink`. `req` and `sink` must live
  // until this returns. A server error reply is a node like any other: the sink sees it.
  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> execute(const resp::Request& req,
                                                                          resp::ReplySink& sink);
  [[nodiscard]] boost::asio::awaitable<boost::system::error_code> execute(
      const resp::Request& req, resp::ReplySink& sink, Clock::time_point deadline);

  // RESP3 push messages (invalidations, pub/sub) go here, never to a caller.
  void set_push_handler(PushHandler handler) { push_handler_ = std::move(handler); }

  // Fails every command with error::closed and stops reconnecting. Idempotent.
  void close();

  [[nodiscard]] LinkState state() const noexcept { return state_; }
  [[nodiscard]] bool connected() const noexcept { return state_ == LinkState::ready; }
  [[nodiscard]] bool resp3() const noexcept { return resp3_; }
  [[nodiscard]] const boost::asio::any_io_executor& get_executor() const noexcept { return ex_; }
  [[nodiscard]] const ClientConfig& config() const noexcept { return cfg_; }
  // What the last failed connect attempt said (no credentials); empty once connected.
  [[nodiscard]] const std::string& last_error_message() const noexcept { return last_error_msg_; }
  [[nodiscard]] ConnectionStats stats() const noexcept;

 private:
  // In an optional: Boost 1.81's any_completion_handler move-assignment recurses forever, so
  // handlers are only ever move-constructed (emplace) and taken out (take_handler).
  using Handler = std::optional<boost::asio::any_completion_handler<void()>>;

  // A caller waiting for its replies; pooled. The queue tells it when they are in (or why
  // not); it then posts its caller's resumption: no timer per command, no re-entry.
  struct Waiter final : sansio::Completion {
    Connection* owner = nullptr;
    Handler handler;
    boost::system::error_code ec;
    void complete(boost::system::error_code result) noexcept override {
      ec = result;
      owner->ready(handler);
    }
  };
  // The connect timeout's watchdog, for the attempt under way.
  enum class Watch : std::uint8_t { idle, running, timed_out };

  Connection(boost::asio::any_io_executor ex, ClientConfig cfg,
             std::shared_ptr<boost::asio::ssl::context> tls);

  // The runner: attempts, links and the pauses between them, until close().
  boost::asio::awaitable<void> run();
  // One connected link, from ready to lost (the writer stopped, the written commands failed).
  boost::asio::awaitable<void> serve_link();
  boost::asio::awaitable<void> pause_before_retry(unsigned failures);
  // One attempt: the ConnectAlgo driven over the stream, bounded by the connect timeout.
  boost::asio::awaitable<boost::system::error_code> connect_once();
  boost::asio::awaitable<boost::system::error_code> drive(sansio::ConnectAlgo& algo);
  boost::asio::awaitable<boost::system::error_code> open_stream(const std::optional<Endpoint>& to,
                                                                std::string& why);
  boost::asio::awaitable<boost::system::error_code> exchange(const resp::Request& req,
                                                             sansio::Exchange& replies);
  boost::asio::awaitable<boost::system::error_code> reader();
  boost::asio::awaitable<void> writer(std::uint64_t generation);
  boost::asio::awaitable<void> health_check(std::uint64_t generation);
  boost::asio::awaitable<void> sweeper();

  // Reads more bytes into the read buffer; false on error (ec set).
  boost::asio::awaitable<bool> fill(boost::system::error_code& ec);
  // A push message: invalidations to cfg_.tracking.listener, everything to the push handler.
  void on_push(const resp::Reply& message);
  // A caller's command is finished, or the writer is woken: the handler (if any) joins those
  // to resume, all of them in one posted run (a read that finishes dozens of commands posts
  // once, not once each), in the order they came. Leaves `handler` empty.
  void ready(Handler& handler);
  void resume_ready();
  void arm_sweeper(Clock::time_point deadline);
  void wake_writer();
  void notify_connect_waiters();
  [[nodiscard]] boost::system::error_code disconnected_error() const;
  // Queues `req` for the writer; on success `waiter` is the caller's, to wait on.
  [[nodiscard]] boost::system::error_code enqueue(const resp::Request& req, resp::ReplySink& sink,
                                                  Clock::time_point deadline, Waiter*& waiter);
  static boost::asio::awaitable<void> until_finished(Waiter* w);
  Waiter* acquire_waiter();
  void release_waiter(Waiter* w);

  boost::asio::any_io_executor ex_;
  ClientConfig cfg_;  // Sentinel: host and port are the master's last found
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::unique_ptr<Stream> stream_;
  sansio::RequestQueue queue_;
  sansio::ReadBuffer rbuf_;
  std::vector<std::unique_ptr<Waiter>> waiters_;  // every waiter ever made
  std::vector<Waiter*> free_waiters_;
  PushHandler push_handler_;

  LinkState state_ = LinkState::idle;
  Watch watch_ = Watch::idle;
  bool writer_running_ = false;  // the writer coroutine of the current link has not ended
  bool resp3_ = false;           // the current link's protocol

  Handler writer_wake_;  // set while the writer idles
  // Finished callers not resumed yet (a run is posted while this is not empty), and the list
  // a run works through (kept to reuse its room).
  std::vector<boost::asio::any_completion_handler<void()>> ready_;
  std::vector<boost::asio::any_completion_handler<void()>> resuming_;
  boost::asio::steady_timer writer_done_;
  boost::asio::steady_timer backoff_;
  boost::asio::steady_timer health_timer_;
  boost::asio::steady_timer connect_event_;
  boost::asio::steady_timer deadlines_;  // fires at the earliest waiter deadline
  Clock::time_point deadlines_armed_ = Clock::time_point::max();

  std::size_t sentinel_first_ = 0;  // the sentinel that answered last is asked first
  std::uint64_t generation_ = 0;    // changes when a link starts or ends
  std::uint64_t attempts_ = 0;      // connect attempts finished
  Clock::time_point last_read_{};
  boost::system::error_code last_error_;
  std::string last_error_msg_;
  std::minstd_rand rng_;
  ConnectionStats stats_;  // reconnects and rejected_down; the rest is the queue's
};

}  // namespace promptcache::net
