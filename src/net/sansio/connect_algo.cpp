#include "promptcache/net/sansio/connect_algo.hpp"

#include "promptcache/error.hpp"

namespace promptcache::net::sansio {

ConnectAlgo::ConnectAlgo(const ClientConfig& cfg, std::size_t sentinel_first)
    : cfg_(cfg), sentinel_answered_(sentinel_first) {}

Step ConnectAlgo::resume(const Outcome& last) {
  switch (phase_) {
    case Phase::start:
      if (cfg_.sentinel) {
        phase_ = Phase::lookup;
        lookup_.emplace(*cfg_.sentinel, sentinel_answered_);
        return on_lookup(last);
      }
      phase_ = Phase::connecting;
      return Step::connect(std::nullopt);
    case Phase::lookup:
      return on_lookup(last);
    case Phase::connecting:
      return on_connected(last);
    case Phase::handshake:
      return on_handshake(last);
    case Phase::finished:
      break;
  }
  return Step::done(error::protocol_error);  // resumed after it finished: a runner's bug
}

Step ConnectAlgo::on_lookup(const Outcome& last) {
  Step step = lookup_->resume(last);
  if (step.kind != Step::Kind::done) return step;
  if (step.ec) return finish(step, lookup_->detail());
  master_ = lookup_->master();
  sentinel_answered_ = lookup_->answered();
  phase_ = Phase::connecting;
  return Step::connect(master_);
}

Step ConnectAlgo::on_connected(const Outcome& last) {
  if (last.ec) {
    return finish(Step::done(last.ec),
                  last.detail.empty() ? last.ec.message() : std::string(last.detail));
  }
  phase_ = Phase::handshake;
  handshake_.emplace(cfg_, master_ ? master_->to_string() : cfg_.address());
  return on_handshake({});
}

Step ConnectAlgo::on_handshake(const Outcome& last) {
  Step step = handshake_->resume(last);
  if (step.kind != Step::Kind::done) return step;
  return finish(step, handshake_->detail());
}

Step ConnectAlgo::finish(Step done, const std::string& detail) {
  phase_ = Phase::finished;
  detail_ = detail;
  return done;
}

}  // namespace promptcache::net::sansio
