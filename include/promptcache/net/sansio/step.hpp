// The connect sequence as sans-IO algorithms (in the manner of Boost.MySQL's sansio): an
// algorithm never touches a socket; each resume() says what the runner should do next (a
// Step) and the next resume() is told what came of it (an Outcome). The runner
// (net::Connection) owns the stream and the timers; unit tests script the bytes instead.
//
//   Step step = algo.resume({});
//   while (step.kind != Step::Kind::done) {
//     Outcome outcome = perform(step);  // connect, exchange (write + read replies), close
//     step = algo.resume(outcome);
//   }
//   // step.ec: the result; algo.detail(): why, in words (never a credential)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

#include "promptcache/net/endpoint.hpp"
#include "promptcache/resp/parser.hpp"
#include "promptcache/resp/reply.hpp"
#include "promptcache/resp/request.hpp"

namespace promptcache::net::sansio {

struct Step {
  enum class Kind : std::uint8_t {
    connect,   // open the stream to `endpoint` (empty: the configured server) with the
               // configured transport (TCP, TLS, unix socket)
    exchange,  // write `request`, then read one reply per command (pushes skipped)
    close,     // close the stream; the next step starts afresh
    done,      // finished: `ec`
  };
  Kind kind = Kind::done;
  std::optional<Endpoint> endpoint;
  const resp::Request* request = nullptr;
  boost::system::error_code ec;

  [[nodiscard]] static Step connect(std::optional<Endpoint> to) {
    return {Kind::connect, std::move(to), nullptr, {}};
  }
  [[nodiscard]] static Step exchange(const resp::Request& req) {
    return {Kind::exchange, std::nullopt, &req, {}};
  }
  [[nodiscard]] static Step close() { return {Kind::close, std::nullopt, nullptr, {}}; }
  [[nodiscard]] static Step done(boost::system::error_code ec = {}) {
    return {Kind::done, std::nullopt, nullptr, ec};
  }
};

// What came of the last step (nothing, for the first resume() and after a close).
struct Outcome {
  boost::system::error_code ec;          // the connect or the exchange failed
  std::string_view detail;               // connect: the failure in words (TLS, refused, …)
  std::span<const resp::Reply> replies;  // exchange: one per command
};

// AUTH [username] password, when there is a password (the RESP2 way; HELLO carries its own).
void push_auth(resp::Request& req, const std::string& username, const std::string& password);

// Collects the replies of one exchange from bytes: the runner's half of Step::exchange.
class Exchange {
 public:
  explicit Exchange(resp::ParserLimits limits = {}) : parser_(limits) {}

  // Expects one reply per command of `req`; forgets the last exchange.
  void start(const resp::Request& req);
  // Parses `data`; `used` is what it took. True once every reply is in (the bytes after the
  // last reply are not taken). Push messages and attributes are skipped.
  [[nodiscard]] bool feed(std::string_view data, std::size_t& used, boost::system::error_code& ec);
  [[nodiscard]] std::span<const resp::Reply> replies() noexcept { return out_.replies(); }

 private:
  resp::Parser parser_;
  resp::ReplyCollector out_;
  std::size_t expected_ = 0;
  std::size_t received_ = 0;
  resp::Type root_ = resp::Type::null;
};

}  // namespace promptcache::net::sansio
