// Unit tests of the connection's request queue (net/sansio/request_queue.hpp) and read buffer,
// byte by byte and with no socket: pipelining order, replies split at every byte, pushes among
// replies, deadlines expiring some of the commands in flight, the overload bounds, a protocol
// error mid-pipeline, a lost link. What net::Connection does on the wire is what these decide.
#include "promptcache/net/sansio/request_queue.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "promptcache/error.hpp"
#include "promptcache/net/sansio/read_buffer.hpp"

namespace promptcache::net::sansio {
namespace {

using boost::system::error_code;
using namespace std::chrono_literals;

const Clock::time_point t0{};  // a fixed "now": the queue reads no clock
const Clock::time_point later = t0 + 10s;

// One caller: its request, where its reply nodes go, and what it was told (and when).
struct Caller final : Completion {
  resp::Request request;
  resp::ReplyCollector sink;
  std::optional<error_code> result;
  int calls = 0;
  int order = -1;
  int* clock = nullptr;

  void complete(error_code ec) noexcept override {
    ++calls;
    result = ec;
    order = (*clock)++;
  }
  [[nodiscard]] bool ok() const { return calls == 1 && result && !*result; }
  [[nodiscard]] std::string first_value() const {
    const auto& replies = sink.replies();
    return replies.empty() ? std::string("<none>") : replies.front().value;
  }
};

// Callers, a queue, and the bytes the server sends: what the runner does, without a socket.
struct Harness {
  explicit Harness(QueueLimits limits = {}) : q(limits) {}

  Caller& caller(std::string_view key, std::size_t commands = 1) {
    auto& c = *callers.emplace_back(std::make_unique<Caller>());
    c.clock = &completions;
    for (std::size_t i = 0; i < commands; ++i) c.request.push("GET", key);
    return c;
  }
  error_code add(Caller& c, Clock::time_point deadline = later) {
    return q.add(c.request, c.sink, deadline, c);
  }
  // The server's bytes arrive (appended to what is still unparsed); every whole message is
  // handled. Returns what consume() said for each, in order.
  std::vector<Consumed> read(std::string_view bytes) {
    pending.append(bytes);
    q.begin_read();
    std::vector<Consumed> seen;
    for (;;) {
      std::size_t used = 0;
      const Consumed c = q.consume(pending, used, ec);
      pending.erase(0, used);
      if (c == Consumed::needs_more) break;
      seen.push_back(c);
      if (c == Consumed::push) pushes.push_back(q.last_push());
      if (c == Consumed::failed) break;
    }
    return seen;
  }
  // Writes what waits, as the runner's writer does.
  std::string write() {
    std::string bytes(q.prepare_write());
    q.commit_write();
    return bytes;
  }

  RequestQueue q;
  std::vector<std::unique_ptr<Caller>> callers;
  int completions = 0;
  std::string pending;
  error_code ec;
  std::vector<resp::Reply> pushes;
};

class QueueTest : public ::testing::Test, public Harness {};

constexpr std::string_view get_a = "*2\r\n$3\r\nGET\r\n$1\r\na\r\n";
constexpr std::string_view get_b = "*2\r\n$3\r\nGET\r\n$1\r\nb\r\n";
constexpr std::string_view get_c = "*2\r\n$3\r\nGET\r\n$1\r\nc\r\n";

TEST_F(QueueTest, WaitingCommandsGoOutInOneWriteAndCompleteInOrder) {
  Caller& a = caller("a");
  Caller& b = caller("b");
  Caller& c = caller("c");
  ASSERT_FALSE(add(a));
  ASSERT_FALSE(add(b));
  ASSERT_FALSE(add(c));
  EXPECT_EQ(q.state(0), SlotState::waiting);

  EXPECT_EQ(q.prepare_write(), std::string(get_a) + std::string(get_b) + std::string(get_c));
  EXPECT_EQ(q.state(0), SlotState::staged);
  EXPECT_EQ(q.state(2), SlotState::staged);
  EXPECT_TRUE(q.prepare_write().empty()) << "nothing new until the write is committed";
  q.commit_write();
  EXPECT_EQ(q.state(1), SlotState::written);
  EXPECT_TRUE(q.prepare_write().empty()) << "nothing waits";

  EXPECT_EQ(read("$2\r\nva\r\n+vb\r\n$2\r\nvc\r\n"),
            (std::vector{Consumed::reply, Consumed::reply, Consumed::reply}));
  EXPECT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a.order, 0);
  EXPECT_EQ(b.order, 1);
  EXPECT_EQ(c.order, 2);
  EXPECT_EQ(a.first_value(), "va");
  EXPECT_EQ(b.first_value(), "vb");
  EXPECT_EQ(c.first_value(), "vc");
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_EQ(q.stats().commands_sent, 3u);
  EXPECT_EQ(q.stats().writes, 1u);
}

TEST_F(QueueTest, ACommandAddedDuringAWriteGoesInTheNextOne) {
  Caller& a = caller("a");
  Caller& b = caller("b");
  ASSERT_FALSE(add(a));
  EXPECT_EQ(q.prepare_write(), get_a);
  ASSERT_FALSE(add(b));
  EXPECT_EQ(q.state(1), SlotState::waiting);
  EXPECT_TRUE(q.prepare_write().empty());
  q.commit_write();
  EXPECT_EQ(q.prepare_write(), get_b);
  q.commit_write();
  read("+1\r\n+2\r\n");
  EXPECT_TRUE(a.ok() && b.ok());
  EXPECT_LT(a.order, b.order);
  EXPECT_EQ(q.stats().writes, 2u);
}

TEST_F(QueueTest, AMultiCommandRequestCompletesAfterItsLastReply) {
  Caller& a = caller("a", 3);
  Caller& b = caller("b");
  ASSERT_FALSE(add(a));
  ASSERT_FALSE(add(b));
  write();
  EXPECT_EQ(read("+1\r\n+2\r\n"), (std::vector{Consumed::reply, Consumed::reply}));
  EXPECT_EQ(a.calls, 0);
  read("+3\r\n+4\r\n");
  EXPECT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a.sink.replies().size(), 3u);
  EXPECT_EQ(b.first_value(), "4");
}

TEST_F(QueueTest, AReplyMayCompleteACommandWhoseWriteIsNotCommittedYet) {
  Caller& a = caller("a");
  ASSERT_FALSE(add(a));
  EXPECT_EQ(q.prepare_write(), get_a);
  read("+fast\r\n");
  EXPECT_TRUE(a.ok());
  q.commit_write();  // harmless
  EXPECT_EQ(q.size(), 0u);
  EXPECT_TRUE(q.prepare_write().empty());
}

// The same replies split into two reads at every byte, and read one byte at a time: the same
// completions and the same nodes as one read.
TEST_F(QueueTest, RepliesSplitAtEveryByteCompleteTheSame) {
  const std::string stream =
      "+simple\r\n"
      "$5\r\nhello\r\n"
      ">3\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n_\r\n"  // a push between two replies
      "*2\r\n*1\r\n:7\r\n%1\r\n+f\r\n,1.5\r\n"
      "_\r\n"
      "-ERR nope\r\n";
  auto run = [&](const std::vector<std::size_t>& cuts) {
    Harness t;
    std::vector<Caller*> cs;
    for (int i = 0; i < 5; ++i) {
      cs.push_back(&t.caller("k"));
      EXPECT_FALSE(t.add(*cs.back()));
    }
    t.write();
    std::size_t at = 0;
    for (std::size_t cut : cuts) {
      t.read(std::string_view(stream).substr(at, cut - at));
      at = cut;
    }
    t.read(std::string_view(stream).substr(at));
    std::vector<std::string> got;
    for (Caller* c : cs) {
      EXPECT_TRUE(c->ok());
      const auto& r = c->sink.replies();
      EXPECT_EQ(r.size(), 1u);
      got.push_back(r.empty() ? "" : std::to_string(static_cast<int>(r[0].type)) + r[0].value);
    }
    EXPECT_EQ(t.pushes.size(), 1u);
    EXPECT_FALSE(t.ec);
    return got;
  };
  const auto whole = run({});
  EXPECT_EQ(whole[0].substr(whole[0].size() - 6), "simple");
  EXPECT_EQ(whole[4].substr(whole[4].size() - 8), "ERR nope");
  for (std::size_t k = 1; k < stream.size(); ++k) {
    EXPECT_EQ(run({k}), whole) << "split at byte " << k;
  }
  std::vector<std::size_t> every;
  for (std::size_t k = 1; k < stream.size(); ++k) every.push_back(k);
  EXPECT_EQ(run(every), whole) << "one byte at a time";
}

TEST_F(QueueTest, PushesBeforeBetweenAndInsideAMultiCommandRequestGoToNoCaller) {
  Caller& a = caller("a", 2);
  Caller& b = caller("b");
  ASSERT_FALSE(add(a));
  ASSERT_FALSE(add(b));
  write();
  const std::string push = ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nx\r\n";
  EXPECT_EQ(read(push + "+a1\r\n" + push + "+a2\r\n" + push + "+b\r\n" + push),
            (std::vector{Consumed::push, Consumed::reply, Consumed::push, Consumed::reply,
                         Consumed::push, Consumed::reply, Consumed::push}));
  EXPECT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a.sink.replies().size(), 2u);
  EXPECT_EQ(a.sink.replies()[1].value, "a2");
  EXPECT_EQ(b.first_value(), "b");
  ASSERT_EQ(pushes.size(), 4u);
  EXPECT_EQ(pushes[3].elements[1].elements[0].value, "x");
  EXPECT_EQ(q.stats().pushes, 4u);
}

TEST_F(QueueTest, APushWithNothingInFlightIsAPush) {
  EXPECT_EQ(read(">2\r\n$10\r\ninvalidate\r\n_\r\n"), std::vector{Consumed::push});
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_TRUE(pushes[0].elements[1].is_null());
}

TEST_F(QueueTest, AnAttributeBeforeAReplyIsSkipped) {
  Caller& a = caller("a");
  ASSERT_FALSE(add(a));
  write();
  EXPECT_EQ(read("|1\r\n+ttl\r\n:3\r\n+value\r\n"), std::vector{Consumed::reply});
  EXPECT_TRUE(a.ok());
  EXPECT_EQ(a.first_value(), "value");
}

TEST_F(QueueTest, AnExpiredWrittenCommandIsToldAtOnceAndItsReplyDropped) {
  Caller& a = caller("a");
  Caller& b = caller("b");
  Caller& c = caller("c");
  ASSERT_FALSE(add(a, later));
  ASSERT_FALSE(add(b, t0 + 1s));
  ASSERT_FALSE(add(c, later));
  write();
  EXPECT_EQ(q.expire(t0 + 1s, error::timeout), later);
  EXPECT_EQ(b.calls, 1);
  EXPECT_EQ(*b.result, make_error_code(error::timeout));
  EXPECT_EQ(q.state(1), SlotState::abandoned);
  EXPECT_EQ(q.size(), 3u) << "its reply is still to come";
  read("+a\r\n+b\r\n+c\r\n");
  EXPECT_TRUE(a.ok() && c.ok());
  EXPECT_EQ(b.calls, 1) << "told once";
  EXPECT_TRUE(b.sink.replies().empty()) << "the late reply went nowhere";
  EXPECT_EQ(c.first_value(), "c");
  EXPECT_EQ(q.stats().timeouts, 1u);
}

TEST_F(QueueTest, AnExpiredUnsentCommandLeavesAndFreesItsRoomAtOnce) {
  RequestQueue bounded(QueueLimits{2, 1 << 20, false});
  Caller& a = caller("a");
  Caller& b = caller("b");
  Caller& c = caller("c");
  ASSERT_FALSE(bounded.add(a.request, a.sink, later, a));
  ASSERT_FALSE(bounded.add(b.request, b.sink, t0, b));
  EXPECT_EQ(bounded.add(c.request, c.sink, later, c), make_error_code(error::overloaded));
  EXPECT_EQ(bounded.expire(t0, error::timeout), later);
  EXPECT_EQ(*b.result, make_error_code(error::timeout));
  EXPECT_EQ(bounded.size(), 1u);
  EXPECT_EQ(bounded.bytes(), get_a.size());
  ASSERT_FALSE(bounded.add(c.request, c.sink, later, c)) << "b's room is free";
  EXPECT_EQ(bounded.prepare_write(), std::string(get_a) + std::string(get_c))
      << "b never reaches the wire";
}

TEST_F(QueueTest, ACommandExpiredHalfwayThroughItsReplyDropsTheRest) {
  Caller& a = caller("a");
  Caller& b = caller("b");
  ASSERT_FALSE(add(a, t0));
  ASSERT_FALSE(add(b, later));
  write();
  read("*3\r\n+one\r\n");
  q.expire(t0, error::timeout);
  EXPECT_EQ(*a.result, make_error_code(error::timeout));
  read("+two\r\n+three\r\n+b\r\n");
  EXPECT_TRUE(b.ok());
  EXPECT_EQ(b.first_value(), "b");
  EXPECT_EQ(a.calls, 1);
}

TEST_F(QueueTest, PastTheCountBoundACommandIsRefusedAndNothingChanges) {
  RequestQueue bounded(QueueLimits{2, 1 << 20, false});
  Caller& a = caller("a");
  Caller& b = caller("b");
  Caller& c = caller("c");
  ASSERT_FALSE(bounded.add(a.request, a.sink, later, a));
  ASSERT_FALSE(bounded.add(b.request, b.sink, later, b));
  EXPECT_EQ(bounded.add(c.request, c.sink, later, c), make_error_code(error::overloaded));
  EXPECT_EQ(c.calls, 0) << "refused, not completed";
  EXPECT_EQ(bounded.size(), 2u);
  EXPECT_EQ(bounded.stats().overloaded, 1u);
  EXPECT_EQ(bounded.prepare_write(), std::string(get_a) + std::string(get_b));
}

TEST_F(QueueTest, PastTheByteBoundACommandIsRefused) {
  RequestQueue bounded(QueueLimits{100, get_a.size() * 2, false});
  Caller& a = caller("a");
  Caller& b = caller("b");
  Caller& c = caller("c");
  ASSERT_FALSE(bounded.add(a.request, a.sink, later, a));
  ASSERT_FALSE(bounded.add(b.request, b.sink, later, b));
  EXPECT_EQ(bounded.add(c.request, c.sink, later, c), make_error_code(error::overloaded));
  EXPECT_EQ(bounded.bytes(), get_a.size() * 2);
}

TEST_F(QueueTest, AnAbandonedWrittenCommandHoldsItsRoomUntilItsReplyComes) {
  QueueLimits limits{2, 1 << 20, false};
  RequestQueue bounded(limits);
  Caller& a = caller("a");
  Caller& b = caller("b");
  Caller& c = caller("c");
  ASSERT_FALSE(bounded.add(a.request, a.sink, t0, a));
  ASSERT_FALSE(bounded.add(b.request, b.sink, later, b));
  ASSERT_FALSE(bounded.prepare_write().empty());
  bounded.commit_write();
  bounded.expire(t0, error::timeout);
  EXPECT_EQ(bounded.add(c.request, c.sink, later, c), make_error_code(error::overloaded))
      << "a is still on the wire";
  std::size_t used = 0;
  bounded.begin_read();
  EXPECT_EQ(bounded.consume("+a\r\n", used, ec), Consumed::reply);
  EXPECT_FALSE(bounded.add(c.request, c.sink, later, c)) << "its reply came: room again";
}

TEST_F(QueueTest, AProtocolErrorMidPipelineFailsWhatWasWrittenAndKeepsWhatWaits) {
  Caller& a = caller("a");
  Caller& b = caller("b");
  Caller& c = caller("c");
  Caller& d = caller("d");
  ASSERT_FALSE(add(a));
  ASSERT_FALSE(add(b));
  ASSERT_FALSE(add(c));
  write();
  ASSERT_FALSE(add(d));
  EXPECT_EQ(read("+a\r\n?x\r\n"), (std::vector{Consumed::reply, Consumed::failed}));
  EXPECT_EQ(ec, make_error_code(error::protocol_error));
  EXPECT_TRUE(a.ok());
  q.link_lost(ec);
  EXPECT_EQ(*b.result, make_error_code(error::protocol_error));
  EXPECT_EQ(*c.result, make_error_code(error::protocol_error));
  EXPECT_EQ(d.calls, 0);
  EXPECT_EQ(q.state(0), SlotState::waiting);
  EXPECT_EQ(q.prepare_write(), "*2\r\n$3\r\nGET\r\n$1\r\nd\r\n") << "d goes out on the next link";
  q.commit_write();
  pending.clear();
  ec = {};
  read("+d\r\n");
  EXPECT_TRUE(d.ok()) << "the parser started afresh";
}

TEST_F(QueueTest, ABulkOverTheLimitMidPipelineIsLimitExceeded) {
  RequestQueue small({}, resp::ParserLimits{16, 8, 1024, 1024});
  Caller& a = caller("a");
  Caller& b = caller("b");
  ASSERT_FALSE(small.add(a.request, a.sink, later, a));
  ASSERT_FALSE(small.add(b.request, b.sink, later, b));
  ASSERT_FALSE(small.prepare_write().empty());
  small.commit_write();
  small.begin_read();
  std::size_t used = 0;
  EXPECT_EQ(small.consume("+a\r\n$100\r\n", used, ec), Consumed::reply);
  EXPECT_EQ(small.consume(std::string_view("+a\r\n$100\r\n").substr(used), used, ec),
            Consumed::failed);
  EXPECT_EQ(ec, make_error_code(error::limit_exceeded));
  small.link_lost(ec);
  EXPECT_EQ(*b.result, make_error_code(error::limit_exceeded));
}

TEST_F(QueueTest, ALostLinkFailsWrittenDropsAbandonedAndDiscardsAHalfParsedReply) {
  Caller& a = caller("a");
  Caller& b = caller("b");
  Caller& w = caller("w");
  ASSERT_FALSE(add(a, t0));
  ASSERT_FALSE(add(b));
  write();
  ASSERT_FALSE(add(w));
  q.expire(t0, error::timeout);  // a abandoned
  read("+a\r\n*2\r\n+half");     // a's reply dropped; b's half in
  q.link_lost(error::connection_lost);
  EXPECT_EQ(a.calls, 1) << "abandoned: told once, at its deadline";
  EXPECT_EQ(*b.result, make_error_code(error::connection_lost));
  EXPECT_EQ(w.calls, 0);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.on_wire(), 0u);
  write();
  pending.clear();
  read("$1\r\nw\r\n");
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(w.first_value(), "w");
}

TEST_F(QueueTest, FailAllTellsEveryCallerOnce) {
  Caller& a = caller("a");
  Caller& b = caller("b");
  ASSERT_FALSE(add(a));
  write();
  ASSERT_FALSE(add(b));
  q.fail_all(error::closed);
  EXPECT_EQ(*a.result, make_error_code(error::closed));
  EXPECT_EQ(*b.result, make_error_code(error::closed));
  EXPECT_EQ(a.calls + b.calls, 2);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.bytes(), 0u);
}

// Redis sends nothing unasked on a RESP3 connection but pushes: a reply with nothing written
// means the stream is out of step, and nothing after it can be matched to a caller.
TEST_F(QueueTest, AReplyNobodyAskedForIsAProtocolError) {
  EXPECT_EQ(read("-MISCONF oops\r\n"), std::vector{Consumed::failed});
  EXPECT_EQ(ec, make_error_code(error::protocol_error));
}

TEST_F(QueueTest, AReadonlyReplyMarksTheMasterDemotedWhenAsked) {
  RequestQueue sentinel(QueueLimits{100, 1 << 20, true});
  Caller& a = caller("a");
  ASSERT_FALSE(sentinel.add(a.request, a.sink, later, a));
  ASSERT_FALSE(sentinel.prepare_write().empty());
  std::size_t used = 0;
  EXPECT_EQ(
      sentinel.consume("-READONLY You can't write against a read only replica.\r\n", used, ec),
      Consumed::reply);
  EXPECT_TRUE(sentinel.demoted());
  EXPECT_EQ(a.first_value().substr(0, 8), "READONLY") << "the caller sees the error reply";
  sentinel.link_lost(error::not_master);
  EXPECT_FALSE(sentinel.demoted()) << "the next link starts clean";

  Caller& b = caller("b");  // without detect_readonly (no Sentinel): just an error reply
  ASSERT_FALSE(add(b));
  write();
  read("-READONLY no\r\n");
  EXPECT_FALSE(q.demoted());
}

TEST_F(QueueTest, TheFlushHintComesOnceHalfTheWrittenCommandsAreComplete) {
  for (int i = 0; i < 8; ++i) ASSERT_FALSE(add(caller("k")));
  write();
  q.begin_read();
  std::string replies;
  for (int i = 0; i < 8; ++i) replies += "+v\r\n";
  std::string_view data = replies;
  int hinted_after = -1;
  for (int n = 1; n <= 8; ++n) {
    std::size_t used = 0;
    ASSERT_EQ(q.consume(data, used, ec), Consumed::reply);
    data.remove_prefix(used);
    if (q.take_flush_hint()) {
      EXPECT_EQ(hinted_after, -1) << "once per read";
      hinted_after = n;
    }
  }
  EXPECT_EQ(hinted_after, 4);

  for (int i = 0; i < 3; ++i) ASSERT_FALSE(add(caller("k")));
  write();
  read("+v\r\n+v\r\n+v\r\n");
  EXPECT_FALSE(q.take_flush_hint()) << "fewer than four on the wire: no hint";
}

TEST(ReadBufferTest, OffersRoomCompactsGrowsAndShrinksWhenIdle) {
  ReadBuffer buffer;
  auto room = buffer.prepare();
  EXPECT_GE(room.size(), ReadBuffer::min_space);
  EXPECT_EQ(buffer.capacity(), ReadBuffer::initial);
  const std::string head(ReadBuffer::initial - 100, 'x');
  std::copy(head.begin(), head.end(), room.begin());
  buffer.commit(head.size());
  buffer.consume(head.size() - 10);  // 10 bytes left unparsed at the end
  room = buffer.prepare();
  EXPECT_EQ(buffer.capacity(), ReadBuffer::initial) << "compacted, not grown";
  EXPECT_EQ(buffer.data(), std::string(10, 'x'));
  EXPECT_GE(room.size(), ReadBuffer::min_space);

  // A reply larger than the buffer: it grows while nothing of it can be dropped.
  std::size_t total = 10;
  while (total < 3 * ReadBuffer::max_idle) {
    room = buffer.prepare();
    std::fill(room.begin(), room.end(), 'y');
    buffer.commit(room.size());
    total += room.size();
  }
  EXPECT_EQ(buffer.data().size(), total);
  EXPECT_GT(buffer.capacity(), ReadBuffer::max_idle);
  buffer.consume(total);
  EXPECT_GE(buffer.prepare().size(), ReadBuffer::min_space);
  EXPECT_EQ(buffer.capacity(), ReadBuffer::initial) << "an idle big buffer is given back";
}

}  // namespace
}  // namespace promptcache::net::sansio
