#include "telemetry/sansio/batch_queue.hpp"

#include <algorithm>

namespace promptcache::telemetry {

BatchQueue::BatchQueue(BatchLimits limits, Clock::time_point now)
    : limits_(limits), last_take_(now) {
  limits_.max_queue = std::max<std::size_t>(limits_.max_queue, 1);
  limits_.max_batch = std::clamp<std::size_t>(limits_.max_batch, 1, limits_.max_queue);
}

bool BatchQueue::push(SpanData span) {
  if (queue_.size() >= limits_.max_queue) {
    ++dropped_;
    return false;
  }
  queue_.push_back(std::move(span));
  return true;
}

BatchQueue::Clock::time_point BatchQueue::due() const noexcept {
  if (queue_.empty()) return Clock::time_point::max();
  if (flushing_ || queue_.size() >= limits_.max_batch) return Clock::time_point::min();
  return last_take_ + limits_.schedule_delay;
}

std::vector<SpanData> BatchQueue::take(Clock::time_point now) {
  const std::size_t n = std::min(queue_.size(), limits_.max_batch);
  std::vector<SpanData> batch;
  batch.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  last_take_ = now;
  if (queue_.empty()) flushing_ = false;
  return batch;
}

}  // namespace promptcache::telemetry
