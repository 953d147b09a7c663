// The commands of one Redis connection, from the caller's add() to its reply: a sans-IO queue
// in the manner of Boost.Redis's multiplexer. No socket, no timer, no clock: the connection's
// runner (net::Connection) feeds it bytes and times, and it tells whom a reply belongs to.
//
// A slot's life (state(i) reports it):
//
//   add() ──> waiting ──prepare_write()──> staged ──commit_write()──> written ──last reply──> gone
//                │                            │                          │
//                │ expire(): removed at once  └──── expire(): abandoned ─┘  (its reply still
//                │ (it never reached the wire)                               comes; dropped)
//                └─ link_lost(): kept, sent again on the next link; staged and written ones fail
//
// The order of calls the runner keeps:
//   - writing: prepare_write() (everything waiting goes out in one buffer), write those bytes,
//     then commit_write(). prepare_write() again before commit_write() returns nothing.
//   - reading: begin_read() once per chunk of bytes read, then consume() until it says
//     needs_more (or failed); a reply may complete a slot that is only staged (the server can
//     answer before the write call returns).
//   - the link lost (read or write error, protocol error, a demoted master): link_lost(why)
//     once; the queue is ready for the next link at once (the parser is reset, the waiting
//     slots are kept).
//   - close: fail_all(why).
//
// Each slot's Completion is told exactly once (complete(ec)), from inside the call that
// finished it; it must not call back into the queue (net::Connection posts the caller's
// resumption instead).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

#include "promptcache/resp/parser.hpp"
#include "promptcache/resp/reply.hpp"
#include "promptcache/resp/request.hpp"

namespace promptcache::net::sansio {

using Clock = std::chrono::steady_clock;

// Told once that its request is done: replies all delivered (no error), or why not.
class Completion {
 public:
  virtual void complete(boost::system::error_code ec) noexcept = 0;

 protected:
  ~Completion() = default;
};

struct QueueLimits {
  std::size_t max_in_flight = 65536;  // slots, waiting or on the wire
  std::size_t max_in_flight_bytes = 256u * 1024 * 1024;
  // Sentinel: a top-level -READONLY reply means the master was demoted (see demoted()).
  bool detect_readonly = false;
};

struct QueueStats {
  std::uint64_t commands_sent = 0;
  std::uint64_t writes = 0;  // prepare_write() calls that returned bytes
  std::uint64_t timeouts = 0;
  std::uint64_t overloaded = 0;
  std::uint64_t pushes = 0;
};

enum class SlotState : std::uint8_t { waiting, staged, written, abandoned };

// What one consume() call found.
enum class Consumed : std::uint8_t {
  needs_more,  // every whole message in the bytes is handled; read more
  reply,       // one reply handled (its slot may or may not be complete)
  push,        // one push message: last_push() holds it until the next consume()
  failed,      // malformed bytes or a reply nobody asked for: `ec` says which; see link_lost()
};

class RequestQueue {
 public:
  explicit RequestQueue(QueueLimits limits = {}, resp::ParserLimits parser = {});

  // Queues `req`; its replies' nodes go to `sink`, the end to `done`. All three must live until
  // `done` is told. error::overloaded (nothing queued) past either bound.
  [[nodiscard]] boost::system::error_code add(const resp::Request& req, resp::ReplySink& sink,
                                              Clock::time_point deadline, Completion& done);

  // The payloads of every waiting slot, which become staged; empty if none waits or the last
  // write is not committed yet. The view is valid until the next prepare_write().
  [[nodiscard]] std::string_view prepare_write();
  void commit_write() noexcept { staged_ = 0; }

  // Before the consume() calls over newly read bytes: arms the flush hint.
  void begin_read() noexcept;
  // Parses `data` up to the end of one message (or of the bytes); `used` is what it took.
  [[nodiscard]] Consumed consume(std::string_view data, std::size_t& used,
                                 boost::system::error_code& ec);
  [[nodiscard]] const resp::Reply& last_push() const noexcept { return push_.replies().front(); }
  // True once per read when half the slots that were on the wire at begin_read() are complete:
  // the runner then starts the next write while the rest of the replies are handled, so that
  // the server and this process work at the same time.
  [[nodiscard]] bool take_flush_hint() noexcept {
    const bool due = flush_due_;
    flush_due_ = false;
    return due;
  }
  // Sentinel (QueueLimits::detect_readonly): a reply said READONLY.
  [[nodiscard]] bool demoted() const noexcept { return demoted_; }

  // Fails, with `why`, every slot whose deadline is not after `now`; returns the earliest
  // deadline left (time_point::max() when none).
  Clock::time_point expire(Clock::time_point now, boost::system::error_code why);

  // The link is gone: staged and written slots fail with `why`, abandoned ones are dropped, the
  // parser starts afresh; waiting slots stay for the next link.
  void link_lost(boost::system::error_code why);
  // Every slot fails with `why`.
  void fail_all(boost::system::error_code why);

  [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::size_t on_wire() const noexcept { return sent_; }  // staged and written
  [[nodiscard]] bool has_waiting() const noexcept { return sent_ < slots_.size(); }
  [[nodiscard]] SlotState state(std::size_t i) const noexcept;
  [[nodiscard]] const QueueStats& stats() const noexcept { return stats_; }

 private:
  struct Slot {
    Completion* done;              // null: abandoned (its caller was told already)
    resp::ReplySink* sink;         // null with done
    const resp::Request* request;  // null once staged
    Clock::time_point deadline;
    std::size_t replies;  // still expected
    std::size_t bytes;
  };

  // The front slot is complete (or failed): it leaves, its owner is told.
  void finish_front(boost::system::error_code ec);
  [[nodiscard]] Consumed on_reply_node(const resp::Node& node, boost::system::error_code& ec);

  QueueLimits limits_;
  resp::Parser parser_;
  std::deque<Slot> slots_;
  std::size_t sent_ = 0;    // slots_[0, sent_) are staged or written
  std::size_t staged_ = 0;  // the last `staged_` of those are staged
  std::size_t bytes_ = 0;
  std::string write_buffer_;
  resp::Type root_ = resp::Type::null;  // the type of the message being parsed
  resp::ReplyCollector push_;
  std::size_t flush_in_ = 0;  // completions left before the flush hint (0: none this read)
  bool flush_due_ = false;
  bool demoted_ = false;
  QueueStats stats_;
};

}  // namespace promptcache::net::sansio
