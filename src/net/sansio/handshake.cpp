#include "promptcache/net/sansio/handshake.hpp"

#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "promptcache/error.hpp"

namespace promptcache::net::sansio {

using boost::system::error_code;

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool is_auth_message(std::string_view m) {
  return starts_with(m, "WRONGPASS") || starts_with(m, "NOAUTH") ||
         m.find("invalid password") != std::string_view::npos ||
         m.find("invalid username-password") != std::string_view::npos;
}

}  // namespace

HandshakeAlgo::HandshakeAlgo(const ClientConfig& cfg, std::string address)
    : cfg_(cfg), address_(std::move(address)) {}

Step HandshakeAlgo::resume(const Outcome& last) {
  switch (phase_) {
    case Phase::start: {
      request_.clear();
      const std::string user = cfg_.username.empty() ? "default" : cfg_.username;
      if (cfg_.password.empty()) {
        request_.push("HELLO", "3", "SETNAME", cfg_.client_name);
      } else {
        request_.push("HELLO", "3", "AUTH", user, cfg_.password, "SETNAME", cfg_.client_name);
      }
      if (cfg_.db != 0) request_.push("SELECT", cfg_.db);
      if (cfg_.readonly) request_.push("READONLY");
      return send(Phase::hello);
    }
    case Phase::hello:
      return on_hello(last);
    case Phase::legacy:
      return on_legacy(last);
    case Phase::tracking:
      return on_tracking(last);
    case Phase::role:
      return on_role(last);
    case Phase::finished:
      break;
  }
  return Step::done(error::protocol_error);  // resumed after it finished: a runner's bug
}

Step HandshakeAlgo::send(Phase next) {
  phase_ = next;
  return Step::exchange(request_);
}

Step HandshakeAlgo::fail(error_code ec, std::string detail) {
  phase_ = Phase::finished;
  detail_ = std::move(detail);
  return Step::done(ec);
}

std::optional<Step> HandshakeAlgo::refused(std::span<const resp::Reply> replies) {
  for (const auto& r : replies) {
    if (!r.is_error()) continue;
    if (!is_auth_message(r.value)) {
      return fail(error::server_error,
                  fmt::format("handshake with {} failed: {}", address_, r.value));
    }
    if (starts_with(r.value, "NOAUTH") && cfg_.password.empty()) {
      return fail(error::auth_failed,
                  fmt::format("authentication failed for {}: the server requires a password "
                              "(REDIS_PASSWORD or the URL's user info)",
                              address_));
    }
    return fail(error::auth_failed,
                fmt::format("authentication failed for {}: {}", address_, r.value));
  }
  return std::nullopt;
}

Step HandshakeAlgo::on_hello(const Outcome& last) {
  if (last.ec) {
    return fail(last.ec, fmt::format("handshake with {} failed: {}", address_, last.ec.message()));
  }
  const auto& replies = last.replies;
  if (replies.empty()) return fail(error::protocol_error, "handshake: no reply");
  const std::string& first = replies[0].value;
  if (replies[0].is_error() && !is_auth_message(first) &&
      (starts_with(first, "NOPROTO") || starts_with(first, "ERR unknown command"))) {
    // A server without RESP3: authenticate and name the connection the RESP2 way.
    request_.clear();
    push_auth(request_, cfg_.username, cfg_.password);
    request_.push("CLIENT", "SETNAME", cfg_.client_name);
    if (cfg_.db != 0) request_.push("SELECT", cfg_.db);
    if (cfg_.readonly) request_.push("READONLY");
    return send(Phase::legacy);
  }
  // HELLO's own refusal first (an auth error), then SELECT's and READONLY's: the connection is
  // of no use until all of them are right, so nothing more is asked of it.
  if (auto failed = refused(replies.first(1))) return *failed;
  std::size_t next = 1;
  if (cfg_.db != 0 && next < replies.size() && replies[next++].is_error()) {
    return fail(error::server_error, fmt::format("SELECT {} on {} failed: {}", cfg_.db, address_,
                                                 replies[next - 1].value));
  }
  if (cfg_.readonly && next < replies.size() && replies[next].is_error()) {
    return fail(error::server_error,
                fmt::format("READONLY on {} failed: {}", address_, replies[next].value));
  }
  resp3_ = true;
  return after_setup();
}

Step HandshakeAlgo::on_legacy(const Outcome& last) {
  if (last.ec) {
    return fail(last.ec, fmt::format("handshake with {} failed: {}", address_, last.ec.message()));
  }
  if (auto failed = refused(last.replies)) return *failed;
  resp3_ = false;
  if (cfg_.tracking.listener) tracking_refused_ = "the server speaks RESP2 only: no push messages";
  return role_or_done();
}

Step HandshakeAlgo::after_setup() {
  if (!cfg_.tracking.listener) return role_or_done();
  // Tracking belongs to the connection: every new one asks again, before any read.
  std::vector<std::string_view> args{"TRACKING", "ON"};
  if (cfg_.tracking.bcast) {
    args.emplace_back("BCAST");
    for (const auto& p : cfg_.tracking.prefixes) {
      args.emplace_back("PREFIX");
      args.emplace_back(p);
    }
  }
  request_.clear();
  request_.push_range("CLIENT", args);
  return send(Phase::tracking);
}

Step HandshakeAlgo::on_tracking(const Outcome& last) {
  if (last.ec) {
    return fail(last.ec,
                fmt::format("CLIENT TRACKING on {} failed: {}", address_, last.ec.message()));
  }
  if (last.replies.empty() || last.replies.front().is_error()) {
    tracking_refused_ = last.replies.empty() ? "no reply" : last.replies.front().value;
  }
  return role_or_done();
}

Step HandshakeAlgo::role_or_done() {
  if (!cfg_.sentinel) {
    phase_ = Phase::finished;
    return Step::done();
  }
  request_.clear();
  request_.push("ROLE");
  return send(Phase::role);
}

Step HandshakeAlgo::on_role(const Outcome& last) {
  if (last.ec) {
    return fail(last.ec, fmt::format("ROLE on {} failed: {}", address_, last.ec.message()));
  }
  const bool master = !last.replies.empty() && !last.replies[0].elements.empty() &&
                      last.replies[0].elements[0].value == "master";
  if (!master) {
    return fail(error::not_master,
                fmt::format("{} is not the master of {:?} (a failover in progress?)", address_,
                            cfg_.sentinel->master_name));
  }
  phase_ = Phase::finished;
  return Step::done();
}

}  // namespace promptcache::net::sansio
