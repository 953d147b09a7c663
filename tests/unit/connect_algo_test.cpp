// Unit tests of the connect sequence as sans-IO algorithms (net/sansio): the handshake (every
// branch: RESP3, the RESP2 fallback, auth, SELECT, READONLY, tracking, the role check), the
// Sentinel lookup and the whole attempt. A Script says which steps the algorithm must ask for,
// the exact bytes it must write, and what the server answers (or which error a step meets);
// the answers go through the same Exchange the connection uses, whole or split at every byte.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "promptcache/error.hpp"
#include "promptcache/net/sansio/connect_algo.hpp"
#include "promptcache/net/sansio/handshake.hpp"
#include "promptcache/net/sansio/sentinel_lookup.hpp"

namespace promptcache::net::sansio {
namespace {

using boost::system::error_code;
using Kind = Step::Kind;

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::connect:
      return "connect";
    case Kind::exchange:
      return "exchange";
    case Kind::close:
      return "close";
    case Kind::done:
      return "done";
  }
  return "?";
}

// The steps an algorithm must ask for, with what each meets.
class Script {
 public:
  Script& connect(std::optional<Endpoint> to = std::nullopt) {
    steps_.push_back({Kind::connect, std::move(to), {}, {}, {}, {}});
    return *this;
  }
  Script& connect_fails(std::optional<Endpoint> to, error_code ec, std::string why = {}) {
    steps_.push_back({Kind::connect, std::move(to), {}, {}, ec, std::move(why)});
    return *this;
  }
  // The algorithm must write exactly `written`; the server answers `answer`.
  Script& exchange(std::string written, std::string answer) {
    steps_.push_back({Kind::exchange, std::nullopt, std::move(written), std::move(answer), {}, {}});
    return *this;
  }
  Script& exchange_fails(std::string written, error_code ec) {
    steps_.push_back({Kind::exchange, std::nullopt, std::move(written), {}, ec, {}});
    return *this;
  }
  Script& close() {
    steps_.push_back({Kind::close, std::nullopt, {}, {}, {}, {}});
    return *this;
  }
  [[nodiscard]] std::size_t size() const { return steps_.size(); }
  // This script up to step `i`, which meets `ec` (the network failing there).
  [[nodiscard]] Script failing_at(std::size_t i, error_code ec) const {
    Script s;
    s.steps_.assign(steps_.begin(), steps_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    s.steps_.back().ec = ec;
    s.steps_.back().answer.clear();
    return s;
  }
  [[nodiscard]] Kind kind(std::size_t i) const { return steps_[i].kind; }

  // Runs `algo` through the script; answers arrive `chunk` bytes at a time. Returns the result
  // of the final done step; any mismatch fails the test.
  template <class Algo>
  error_code run(Algo& algo, std::size_t chunk = std::string::npos) const {
    Exchange replies;
    Step step = algo.resume({});
    for (std::size_t i = 0; i < steps_.size(); ++i) {
      const Expected& want = steps_[i];
      if (step.kind != want.kind) {
        ADD_FAILURE() << "step " << i << ": asked for " << kind_name(step.kind) << ", expected "
                      << kind_name(want.kind) << (step.kind == Kind::done ? " (done: " : "")
                      << (step.kind == Kind::done ? step.ec.message() + ")" : "");
        return step.ec;
      }
      Outcome outcome;
      outcome.ec = want.ec;
      if (want.kind == Kind::connect) {
        EXPECT_EQ(step.endpoint, want.endpoint) << "step " << i;
        outcome.detail = want.why;
      } else if (want.kind == Kind::exchange) {
        EXPECT_EQ(step.request->payload(), want.written) << "step " << i;
        if (!want.ec) outcome = answer(*step.request, want.answer, chunk, replies, i);
      }
      step = algo.resume(outcome);
    }
    EXPECT_EQ(step.kind, Kind::done) << "the script ended; asked for " << kind_name(step.kind);
    return step.ec;
  }

 private:
  struct Expected {
    Kind kind;
    std::optional<Endpoint> endpoint;
    std::string written;
    std::string answer;
    error_code ec;
    std::string why;
  };

  static Outcome answer(const resp::Request& req, std::string_view bytes, std::size_t chunk,
                        Exchange& replies, std::size_t i) {
    replies.start(req);
    std::string buffer;
    Outcome outcome;
    bool complete = false;
    for (std::size_t at = 0; at < bytes.size() && !complete && !outcome.ec;) {
      const std::size_t n = std::min(chunk, bytes.size() - at);
      buffer.append(bytes.substr(at, n));
      at += n;
      std::size_t used = 0;
      complete = replies.feed(buffer, used, outcome.ec);
      buffer.erase(0, used);
    }
    if (!outcome.ec) {
      EXPECT_TRUE(complete) << "step " << i << ": the answer holds too few replies";
      EXPECT_TRUE(buffer.empty()) << "step " << i << ": bytes left after the replies";
    }
    outcome.replies = replies.replies();
    return outcome;
  }

  std::vector<Expected> steps_;
};

// The wire form of commands, written out for the exact-bytes tests.
std::string wire(std::initializer_list<std::vector<std::string>> commands) {
  resp::Request req;
  for (const auto& c : commands) {
    std::vector<std::string_view> args(c.begin() + 1, c.end());
    req.push_range(c.front(), args);
  }
  return std::string(req.payload());
}

const std::string hello_map = "%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n";

ClientConfig base_config() {
  ClientConfig cfg;
  cfg.host = "10.0.0.5";
  cfg.port = 6390;
  return cfg;
}

struct NullListener final : TrackingListener {
  void invalidated(std::string_view) override {}
  void invalidated_all() override {}
  void link_down() override {}
  void tracking_refused(std::string_view) override {}
};

ClientConfig tracking_config() {
  ClientConfig cfg = base_config();
  cfg.tracking.listener = std::make_shared<NullListener>();
  return cfg;
}

// ---- the handshake ----------------------------------------------------------------------

TEST(Handshake, WithoutAPasswordItIsOneHelloInRESP3) {
  const ClientConfig cfg = base_config();
  HandshakeAlgo algo(cfg, cfg.address());
  const auto ec = Script()
                      .exchange(
                          "*4\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$7\r\nSETNAME\r\n$11\r\n"
                          "promptcache\r\n",
                          hello_map)
                      .run(algo);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(algo.resp3());
  EXPECT_FALSE(algo.tracking_refused());
}

TEST(Handshake, AuthSelectAndReadonlyGoInTheSamePipeline) {
  ClientConfig cfg = base_config();
  cfg.username = "app";
  cfg.password = "s3cret";
  cfg.db = 2;
  cfg.readonly = true;
  HandshakeAlgo algo(cfg, cfg.address());
  const auto ec = Script()
                      .exchange(
                          "*7\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$6\r\n"
                          "s3cret\r\n$7\r\nSETNAME\r\n$11\r\npromptcache\r\n"
                          "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*1\r\n$8\r\nREADONLY\r\n",
                          hello_map + "+OK\r\n+OK\r\n")
                      .run(algo);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(algo.resp3());
}

TEST(Handshake, APasswordWithoutAUserAuthenticatesAsDefault) {
  ClientConfig cfg = base_config();
  cfg.password = "pw";
  HandshakeAlgo algo(cfg, cfg.address());
  EXPECT_FALSE(
      Script()
          .exchange(wire({{"HELLO", "3", "AUTH", "default", "pw", "SETNAME", "promptcache"}}),
                    hello_map)
          .run(algo));
}

TEST(Handshake, AWrongPasswordIsAuthFailedAndTheDetailHoldsNoPassword) {
  ClientConfig cfg = base_config();
  cfg.password = "hunter2";
  HandshakeAlgo algo(cfg, cfg.address());
  const auto ec =
      Script()
          .exchange(wire({{"HELLO", "3", "AUTH", "default", "hunter2", "SETNAME", "promptcache"}}),
                    "-WRONGPASS invalid username-password pair\r\n")
          .run(algo);
  EXPECT_EQ(ec, make_error_code(error::auth_failed));
  EXPECT_EQ(algo.detail(),
            "authentication failed for 10.0.0.5:6390: WRONGPASS invalid username-password pair");
  EXPECT_EQ(algo.detail().find("hunter2"), std::string::npos);
}

TEST(Handshake, NoauthWithoutAPasswordSaysWhereToSetOne) {
  const ClientConfig cfg = base_config();
  HandshakeAlgo algo(cfg, cfg.address());
  const auto ec =
      Script()
          .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}),
                    "-NOAUTH HELLO must be called with the client already authenticated\r\n")
          .run(algo);
  EXPECT_EQ(ec, make_error_code(error::auth_failed));
  EXPECT_NE(algo.detail().find("REDIS_PASSWORD"), std::string::npos) << algo.detail();
}

TEST(Handshake, AnotherHelloErrorIsAServerError) {
  const ClientConfig cfg = base_config();
  HandshakeAlgo algo(cfg, cfg.address());
  const auto ec = Script()
                      .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}),
                                "-ERR Protocol version is not an integer or out of range\r\n")
                      .run(algo);
  EXPECT_EQ(ec, make_error_code(error::server_error));
  EXPECT_EQ(algo.detail(),
            "handshake with 10.0.0.5:6390 failed: ERR Protocol version is not an integer or out "
            "of range");
}

TEST(Handshake, ARESP2ServerGetsAuthSetnameSelectReadonlyTheOldWay) {
  ClientConfig cfg = tracking_config();
  cfg.username = "app";
  cfg.password = "pw";
  cfg.db = 3;
  cfg.readonly = true;
  HandshakeAlgo algo(cfg, cfg.address());
  const auto ec = Script()
                      .exchange(wire({{"HELLO", "3", "AUTH", "app", "pw", "SETNAME", "promptcache"},
                                      {"SELECT", "3"},
                                      {"READONLY"}}),
                                "-NOPROTO unsupported protocol version\r\n-NOAUTH Authentication "
                                "required.\r\n-NOAUTH Authentication required.\r\n")
                      .exchange(wire({{"AUTH", "app", "pw"},
                                      {"CLIENT", "SETNAME", "promptcache"},
                                      {"SELECT", "3"},
                                      {"READONLY"}}),
                                "+OK\r\n+OK\r\n+OK\r\n+OK\r\n")
                      .run(algo);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(algo.resp3());
  ASSERT_TRUE(algo.tracking_refused());
  EXPECT_EQ(*algo.tracking_refused(), "the server speaks RESP2 only: no push messages");
}

TEST(Handshake, AServerWithoutHelloFallsBackToo) {
  ClientConfig cfg = base_config();
  cfg.password = "pw";
  HandshakeAlgo algo(cfg, cfg.address());
  const auto ec =
      Script()
          .exchange(wire({{"HELLO", "3", "AUTH", "default", "pw", "SETNAME", "promptcache"}}),
                    "-ERR unknown command 'HELLO'\r\n")
          .exchange(wire({{"AUTH", "pw"}, {"CLIENT", "SETNAME", "promptcache"}}), "+OK\r\n+OK\r\n")
          .run(algo);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(algo.resp3());
  EXPECT_FALSE(algo.tracking_refused()) << "no tracking was asked for";
}

TEST(Handshake, TheFallbacksAuthAndSelectErrorsAreTheirOwn) {
  ClientConfig cfg = base_config();
  cfg.password = "pw";
  cfg.db = 9;
  const std::string legacy =
      wire({{"AUTH", "pw"}, {"CLIENT", "SETNAME", "promptcache"}, {"SELECT", "9"}});
  const std::string hello =
      wire({{"HELLO", "3", "AUTH", "default", "pw", "SETNAME", "promptcache"}, {"SELECT", "9"}});
  {
    HandshakeAlgo algo(cfg, cfg.address());
    EXPECT_EQ(Script()
                  .exchange(hello, "-NOPROTO x\r\n-NOAUTH y\r\n")
                  .exchange(legacy, "-ERR invalid password\r\n-NOAUTH z\r\n-NOAUTH z\r\n")
                  .run(algo),
              make_error_code(error::auth_failed));
  }
  {
    HandshakeAlgo algo(cfg, cfg.address());
    EXPECT_EQ(Script()
                  .exchange(hello, "-NOPROTO x\r\n-NOAUTH y\r\n")
                  .exchange(legacy, "+OK\r\n+OK\r\n-ERR DB index is out of range\r\n")
                  .run(algo),
              make_error_code(error::server_error));
    EXPECT_EQ(algo.detail(), "handshake with 10.0.0.5:6390 failed: ERR DB index is out of range");
  }
}

// SELECT's and READONLY's errors end the handshake before tracking is asked for: a connection
// on the wrong database is not worth tracking.
TEST(Handshake, SelectAndReadonlyErrorsEndItBeforeTracking) {
  ClientConfig cfg = tracking_config();
  cfg.db = 20;
  {
    HandshakeAlgo algo(cfg, cfg.address());
    EXPECT_EQ(Script()
                  .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}, {"SELECT", "20"}}),
                            hello_map + "-ERR DB index is out of range\r\n")
                  .run(algo),
              make_error_code(error::server_error));
    EXPECT_EQ(algo.detail(), "SELECT 20 on 10.0.0.5:6390 failed: ERR DB index is out of range");
  }
  cfg.db = 0;
  cfg.readonly = true;
  {
    HandshakeAlgo algo(cfg, cfg.address());
    EXPECT_EQ(Script()
                  .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}, {"READONLY"}}),
                            hello_map + "-ERR This instance has cluster support disabled\r\n")
                  .run(algo),
              make_error_code(error::server_error));
    EXPECT_EQ(algo.detail(),
              "READONLY on 10.0.0.5:6390 failed: ERR This instance has cluster support disabled");
  }
}

TEST(Handshake, TrackingIsTurnedOnAfterTheSetup) {
  const ClientConfig cfg = tracking_config();
  HandshakeAlgo algo(cfg, cfg.address());
  EXPECT_FALSE(Script()
                   .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}), hello_map)
                   .exchange("*3\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\nON\r\n", "+OK\r\n")
                   .run(algo));
  EXPECT_FALSE(algo.tracking_refused());
}

TEST(Handshake, BroadcastTrackingNamesEveryPrefix) {
  ClientConfig cfg = tracking_config();
  cfg.tracking.bcast = true;
  cfg.tracking.prefixes = {"prompt:", "user:"};
  HandshakeAlgo algo(cfg, cfg.address());
  EXPECT_FALSE(Script()
                   .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}), hello_map)
                   .exchange(wire({{"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX",
                                    "prompt:", "PREFIX", "user:"}}),
                             "+OK\r\n")
                   .run(algo));
}

TEST(Handshake, RefusedTrackingIsReportedNotFatal) {
  const ClientConfig cfg = tracking_config();
  HandshakeAlgo algo(cfg, cfg.address());
  EXPECT_FALSE(Script()
                   .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}), hello_map)
                   .exchange(wire({{"CLIENT", "TRACKING", "ON"}}),
                             "-ERR Prefix 'a' overlaps with another provided prefix\r\n")
                   .run(algo));
  ASSERT_TRUE(algo.tracking_refused());
  EXPECT_EQ(*algo.tracking_refused(), "ERR Prefix 'a' overlaps with another provided prefix");
  EXPECT_TRUE(algo.resp3());
}

TEST(Handshake, APushBeforeAReplyIsSkipped) {
  const ClientConfig cfg = base_config();
  HandshakeAlgo algo(cfg, cfg.address());
  EXPECT_FALSE(Script()
                   .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}),
                             ">2\r\n$10\r\ninvalidate\r\n_\r\n|1\r\n+a\r\n+b\r\n" + hello_map)
                   .run(algo));
  EXPECT_TRUE(algo.resp3());
}

TEST(Handshake, MalformedBytesAreAProtocolError) {
  const ClientConfig cfg = base_config();
  HandshakeAlgo algo(cfg, cfg.address());
  EXPECT_EQ(
      Script().exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}), "?garbage\r\n").run(algo),
      make_error_code(error::protocol_error));
  EXPECT_EQ(algo.detail(),
            "handshake with 10.0.0.5:6390 failed: malformed reply from the server (protocol error)")
      << "names the server and the failure";
}

ClientConfig sentinel_config() {
  ClientConfig cfg = tracking_config();
  cfg.sentinel = SentinelConfig{{{"10.0.1.1", 26379}, {"10.0.1.2", 26379}}, "mymaster", {}, {}};
  return cfg;
}

TEST(Handshake, UnderSentinelTheServerMustSayItIsTheMaster) {
  const ClientConfig cfg = sentinel_config();
  const auto script = [](std::string role) {
    return Script()
        .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}), hello_map)
        .exchange(wire({{"CLIENT", "TRACKING", "ON"}}), "+OK\r\n")
        .exchange(wire({{"ROLE"}}), std::move(role));
  };
  {
    HandshakeAlgo algo(cfg, "10.0.0.7:6379");
    EXPECT_FALSE(script("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n").run(algo));
  }
  for (const char* not_master :
       {"*5\r\n$5\r\nslave\r\n$8\r\n10.0.0.8\r\n:6379\r\n$9\r\nconnected\r\n:1\r\n", "*0\r\n",
        "-ERR unknown command 'ROLE'\r\n"}) {
    HandshakeAlgo algo(cfg, "10.0.0.7:6379");
    EXPECT_EQ(script(not_master).run(algo), make_error_code(error::not_master)) << not_master;
    EXPECT_EQ(algo.detail(),
              "10.0.0.7:6379 is not the master of \"mymaster\" (a failover in progress?)");
  }
}

// Every branch again, with each answer arriving one byte at a time and in two pieces cut at
// every byte: the same result.
TEST(Handshake, AnswersSplitAtEveryByteGiveTheSameResult) {
  const ClientConfig cfg = sentinel_config();
  const Script script =
      Script()
          .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}), hello_map)
          .exchange(wire({{"CLIENT", "TRACKING", "ON"}}), ">2\r\n+x\r\n_\r\n-ERR no\r\n")
          .exchange(wire({{"ROLE"}}), "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
  for (std::size_t chunk = 1; chunk <= hello_map.size(); ++chunk) {
    HandshakeAlgo algo(cfg, cfg.address());
    EXPECT_FALSE(script.run(algo, chunk)) << "chunk " << chunk;
    EXPECT_EQ(algo.tracking_refused().value_or(""), "ERR no") << "chunk " << chunk;
  }
}

// A network failure at any step ends the handshake with that error, naming the server.
TEST(Handshake, ANetworkErrorAtAnyStepEndsItWithThatError) {
  ClientConfig cfg = sentinel_config();
  cfg.password = "pw";
  const Script full =
      Script()
          .exchange(wire({{"HELLO", "3", "AUTH", "default", "pw", "SETNAME", "promptcache"}}),
                    "-NOPROTO x\r\n")
          .exchange(wire({{"AUTH", "pw"}, {"CLIENT", "SETNAME", "promptcache"}}), "+OK\r\n+OK\r\n")
          .exchange(wire({{"ROLE"}}), "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
  {
    HandshakeAlgo algo(cfg, cfg.address());
    ASSERT_FALSE(full.run(algo)) << "the script succeeds as it is";
  }
  for (std::size_t i = 0; i < full.size(); ++i) {
    const error_code reset = make_error_code(boost::system::errc::connection_reset);
    HandshakeAlgo algo(cfg, "10.0.0.7:6379");
    EXPECT_EQ(full.failing_at(i, reset).run(algo), reset) << "step " << i;
    EXPECT_NE(algo.detail().find("10.0.0.7:6379"), std::string::npos) << algo.detail();
    EXPECT_EQ(algo.detail().find("pw"), std::string::npos) << algo.detail();
  }
}

// ---- the Sentinel lookup ----------------------------------------------------------------

const Endpoint s1{"10.0.1.1", 26379};
const Endpoint s2{"10.0.1.2", 26379};
const Endpoint s3{"10.0.1.3", 26379};
const std::string ask = wire({{"SENTINEL", "get-master-addr-by-name", "mymaster"}});
const std::string master_at = "*2\r\n$8\r\n10.0.0.7\r\n$4\r\n6379\r\n";

SentinelConfig three_sentinels() {
  return SentinelConfig{{s1, s2, s3}, "mymaster", {}, {}};
}

TEST(SentinelLookup, TheFirstSentinelThatAnswersNamesTheMaster) {
  const SentinelConfig cfg = three_sentinels();
  SentinelLookupAlgo algo(cfg, 0);
  EXPECT_FALSE(Script().connect(s1).exchange(ask, master_at).close().run(algo));
  ASSERT_TRUE(algo.master());
  EXPECT_EQ(*algo.master(), (Endpoint{"10.0.0.7", 6379}));
  EXPECT_EQ(algo.answered(), 0u);
}

TEST(SentinelLookup, ASentinelThatCannotBeReachedIsSkipped) {
  const SentinelConfig cfg = three_sentinels();
  SentinelLookupAlgo algo(cfg, 0);
  EXPECT_FALSE(Script()
                   .connect_fails(s1, boost::system::errc::make_error_code(
                                          boost::system::errc::connection_refused))
                   .close()
                   .connect(s2)
                   .exchange(ask, master_at)
                   .close()
                   .run(algo));
  EXPECT_EQ(algo.answered(), 1u);
}

TEST(SentinelLookup, TheOneThatAnsweredLastIsAskedFirstAndTheTurnWraps) {
  const SentinelConfig cfg = three_sentinels();
  SentinelLookupAlgo algo(cfg, 2);
  EXPECT_FALSE(Script()
                   .connect(s3)
                   .exchange(ask, "_\r\n")
                   .close()
                   .connect(s1)
                   .exchange(ask, master_at)
                   .close()
                   .run(algo));
  EXPECT_EQ(algo.answered(), 0u);
}

TEST(SentinelLookup, SentinelCredentialsGoFirstAndARefusalMovesOn) {
  SentinelConfig cfg = three_sentinels();
  cfg.username = "watch";
  cfg.password = "pw";
  const std::string asked =
      wire({{"AUTH", "watch", "pw"}, {"SENTINEL", "get-master-addr-by-name", "mymaster"}});
  SentinelLookupAlgo algo(cfg, 0);
  EXPECT_FALSE(Script()
                   .connect(s1)
                   .exchange(asked, "-WRONGPASS invalid username-password pair\r\n-NOAUTH x\r\n")
                   .close()
                   .connect(s2)
                   .exchange(asked, "+OK\r\n" + master_at)
                   .close()
                   .run(algo));
  EXPECT_EQ(algo.answered(), 1u);
}

TEST(SentinelLookup, WhenNoneNamesTheMasterEveryAnswerIsInTheDetail) {
  const SentinelConfig cfg = three_sentinels();
  SentinelLookupAlgo algo(cfg, 0);
  const auto ec = Script()
                      .connect(s1)
                      .exchange(ask, "_\r\n")
                      .close()
                      .connect(s2)
                      .exchange(ask, "*2\r\n$8\r\n10.0.0.7\r\n$6\r\nnoport\r\n")
                      .close()
                      .connect_fails(s3, make_error_code(error::connect_timeout), "timed out")
                      .close()
                      .run(algo);
  EXPECT_EQ(ec, make_error_code(error::not_master));
  EXPECT_FALSE(algo.master());
  EXPECT_EQ(algo.detail(),
            "no sentinel named a master for \"mymaster\" (10.0.1.1:26379: does not know this "
            "master; 10.0.1.2:26379: unexpected reply; 10.0.1.3:26379: timed out)");
}

// ---- the whole attempt ------------------------------------------------------------------

TEST(ConnectAttempt, ConnectsToTheConfiguredServerThenHandshakes) {
  const ClientConfig cfg = base_config();
  ConnectAlgo algo(cfg, 0);
  EXPECT_FALSE(Script()
                   .connect(std::nullopt)
                   .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}), hello_map)
                   .run(algo));
  EXPECT_TRUE(algo.resp3());
  EXPECT_FALSE(algo.master());
}

TEST(ConnectAttempt, AConnectFailureEndsItWithTheStreamsWords) {
  const ClientConfig cfg = base_config();
  ConnectAlgo algo(cfg, 0);
  const auto refused = make_error_code(boost::system::errc::connection_refused);
  EXPECT_EQ(Script()
                .connect_fails(std::nullopt, refused, "cannot connect to 10.0.0.5:6390: refused")
                .run(algo),
            refused);
  EXPECT_EQ(algo.detail(), "cannot connect to 10.0.0.5:6390: refused");
}

TEST(ConnectAttempt, UnderSentinelItAsksThenConnectsToTheMasterAndChecksItsRole) {
  const ClientConfig cfg = sentinel_config();
  ConnectAlgo algo(cfg, 1);
  EXPECT_FALSE(Script()
                   .connect(s2)
                   .exchange(ask, master_at)
                   .close()
                   .connect(Endpoint{"10.0.0.7", 6379})
                   .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}), hello_map)
                   .exchange(wire({{"CLIENT", "TRACKING", "ON"}}), "+OK\r\n")
                   .exchange(wire({{"ROLE"}}), "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")
                   .run(algo));
  ASSERT_TRUE(algo.master());
  EXPECT_EQ(algo.master()->to_string(), "10.0.0.7:6379");
  EXPECT_EQ(algo.sentinel_answered(), 1u);
}

TEST(ConnectAttempt, ADemotedMasterFailsWithNotMasterNamingIt) {
  const ClientConfig cfg = sentinel_config();
  ConnectAlgo algo(cfg, 0);
  EXPECT_EQ(Script()
                .connect(s1)
                .exchange(ask, master_at)
                .close()
                .connect(Endpoint{"10.0.0.7", 6379})
                .exchange(wire({{"HELLO", "3", "SETNAME", "promptcache"}}), hello_map)
                .exchange(wire({{"CLIENT", "TRACKING", "ON"}}), "+OK\r\n")
                .exchange(wire({{"ROLE"}}), "*1\r\n$5\r\nslave\r\n")
                .run(algo),
            make_error_code(error::not_master));
  EXPECT_EQ(algo.detail(),
            "10.0.0.7:6379 is not the master of \"mymaster\" (a failover in progress?)");
  EXPECT_TRUE(algo.master()) << "where it was looked for, for the logs";
}

}  // namespace
}  // namespace promptcache::net::sansio
