#include "promptcache/net/sansio/request_queue.hpp"

#include <algorithm>
#include <utility>

#include "promptcache/error.hpp"

namespace promptcache::net::sansio {

using boost::system::error_code;

RequestQueue::RequestQueue(QueueLimits limits, resp::ParserLimits parser)
    : limits_(limits), parser_(parser) {}

error_code RequestQueue::add(const resp::Request& req, resp::ReplySink& sink,
                             Clock::time_point deadline, Completion& done) {
  if (req.empty()) return make_error_code(boost::system::errc::invalid_argument);
  const std::size_t size = req.payload().size();
  if (slots_.size() >= limits_.max_in_flight || bytes_ + size > limits_.max_in_flight_bytes) {
    ++stats_.overloaded;
    return error::overloaded;
  }
  slots_.push_back(Slot{&done, &sink, &req, deadline, req.commands(), size});
  bytes_ += size;
  return {};
}

std::string_view RequestQueue::prepare_write() {
  if (staged_ > 0 || sent_ == slots_.size()) return {};
  write_buffer_.clear();
  for (std::size_t i = sent_; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    write_buffer_.append(slot.request->payload());
    stats_.commands_sent += slot.request->commands();
    slot.request = nullptr;
  }
  staged_ = slots_.size() - sent_;
  sent_ = slots_.size();
  ++stats_.writes;
  return write_buffer_;
}

void RequestQueue::begin_read() noexcept {
  flush_in_ = sent_ >= 4 ? sent_ / 2 : 0;
  flush_due_ = false;
}

Consumed RequestQueue::consume(std::string_view data, std::size_t& used, error_code& ec) {
  used = 0;
  for (;;) {
    std::size_t n = 0;
    const auto node = parser_.next(data.substr(used), n, ec);
    if (!node) return ec ? Consumed::failed : Consumed::needs_more;
    used += n;
    if (node->depth == 0) {
      root_ = node->type;
      if (root_ == resp::Type::push) push_.clear();
    }
    switch (root_) {
      case resp::Type::attribute:
        continue;  // annotates the message that follows
      case resp::Type::push:
        push_.on_node(*node);
        if (parser_.done() && !push_.replies().empty()) {
          ++stats_.pushes;
          return Consumed::push;
        }
        continue;
      default:
        if (const Consumed c = on_reply_node(*node, ec); c != Consumed::needs_more) return c;
    }
  }
}

// needs_more here means "go on parsing": the reply is not whole yet.
Consumed RequestQueue::on_reply_node(const resp::Node& node, error_code& ec) {
  if (sent_ == 0) {
    ec = error::protocol_error;  // a reply nobody asked for: nothing after it can be trusted
    return Consumed::failed;
  }
  if (node.depth == 0 && limits_.detect_readonly && resp::is_error(node.type) &&
      node.value.substr(0, 8) == "READONLY") {
    demoted_ = true;
  }
  Slot& slot = slots_.front();
  if (slot.sink != nullptr) slot.sink->on_node(node);
  if (!parser_.done()) return Consumed::needs_more;
  if (--slot.replies == 0) finish_front({});
  return Consumed::reply;
}

void RequestQueue::finish_front(error_code ec) {
  Completion* done = slots_.front().done;
  bytes_ -= slots_.front().bytes;
  slots_.pop_front();
  if (sent_ > 0) --sent_;
  staged_ = std::min(staged_, sent_);
  if (done != nullptr) done->complete(ec);
  if (flush_in_ > 0 && --flush_in_ == 0) flush_due_ = true;
}

Clock::time_point RequestQueue::expire(Clock::time_point now, error_code why) {
  auto next = Clock::time_point::max();
  // On the wire: the caller is told, the slot keeps its place until its reply is dropped.
  for (std::size_t i = 0; i < sent_; ++i) {
    Slot& slot = slots_[i];
    if (slot.done == nullptr) continue;
    if (slot.deadline > now) {
      next = std::min(next, slot.deadline);
      continue;
    }
    Completion* done = std::exchange(slot.done, nullptr);
    slot.sink = nullptr;
    ++stats_.timeouts;
    done->complete(why);
  }
  // Waiting: never sent, so removed, and its room in the bounds is free at once.
  const auto first = slots_.begin() + static_cast<std::ptrdiff_t>(sent_);
  auto kept = first;
  for (auto it = first; it != slots_.end(); ++it) {
    if (it->deadline > now) {
      next = std::min(next, it->deadline);
      if (kept != it) *kept = *it;
      ++kept;
      continue;
    }
    bytes_ -= it->bytes;
    ++stats_.timeouts;
    it->done->complete(why);
  }
  slots_.erase(kept, slots_.end());
  return next;
}

void RequestQueue::link_lost(error_code why) {
  while (sent_ > 0) finish_front(why);
  staged_ = 0;
  parser_.reset();
  root_ = resp::Type::null;
  push_.clear();
  flush_in_ = 0;
  flush_due_ = false;
  demoted_ = false;
}

void RequestQueue::fail_all(error_code why) {
  link_lost(why);
  while (!slots_.empty()) finish_front(why);
  flush_due_ = false;
}

SlotState RequestQueue::state(std::size_t i) const noexcept {
  if (slots_[i].done == nullptr) return SlotState::abandoned;
  if (i >= sent_) return SlotState::waiting;
  return i >= sent_ - staged_ ? SlotState::staged : SlotState::written;
}

}  // namespace promptcache::net::sansio
