#include "promptcache/net/sansio/sentinel_lookup.hpp"

#include <fmt/format.h>

#include "promptcache/error.hpp"

namespace promptcache::net::sansio {

SentinelLookupAlgo::SentinelLookupAlgo(const SentinelConfig& cfg, std::size_t first)
    : cfg_(cfg), first_(cfg.sentinels.empty() ? 0 : first % cfg.sentinels.size()) {
  push_auth(ask_, cfg_.username, cfg_.password);
  ask_.push("SENTINEL", "get-master-addr-by-name", cfg_.master_name);
}

Step SentinelLookupAlgo::resume(const Outcome& last) {
  switch (phase_) {
    case Phase::start:
      if (cfg_.sentinels.empty()) break;
      phase_ = Phase::connecting;
      return Step::connect(cfg_.sentinels[current()]);
    case Phase::connecting:
      if (last.ec) {
        note_failure(last.detail.empty() ? std::string_view(last.ec.message()) : last.detail);
        phase_ = Phase::closing;
        return Step::close();
      }
      phase_ = Phase::asking;
      return Step::exchange(ask_);
    case Phase::asking:
      if (last.ec) {
        note_failure(last.ec.message());
      } else {
        read_answer(last.replies);
      }
      phase_ = Phase::closing;
      return Step::close();
    case Phase::closing:
      if (master_) {
        phase_ = Phase::finished;
        return Step::done();
      }
      if (++tried_ < cfg_.sentinels.size()) {
        phase_ = Phase::connecting;
        return Step::connect(cfg_.sentinels[current()]);
      }
      break;
    case Phase::finished:
      return Step::done(error::protocol_error);  // resumed after it finished: a runner's bug
  }
  phase_ = Phase::finished;
  detail_ = fmt::format("no sentinel named a master for {:?} ({})", cfg_.master_name,
                        failures_.empty() ? "no sentinels" : failures_);
  return Step::done(error::not_master);
}

void SentinelLookupAlgo::note_failure(std::string_view why) {
  if (!failures_.empty()) failures_ += "; ";
  failures_ += cfg_.sentinels[current()].to_string();
  failures_ += ": ";
  failures_ += why;
}

void SentinelLookupAlgo::read_answer(std::span<const resp::Reply> replies) {
  if (replies.empty()) return note_failure("no reply");
  if (replies.front().is_error()) {
    return note_failure(replies.front().value);  // AUTH refused, or SENTINEL unknown
  }
  const resp::Reply& reply = replies.back();
  if (reply.elements.size() == 2) {
    master_ = parse_endpoint(reply.elements[0].value + ":" + reply.elements[1].value);
  }
  if (!master_) {
    note_failure(reply.type == resp::Type::null ? "does not know this master" : "unexpected reply");
  }
}

}  // namespace promptcache::net::sansio
