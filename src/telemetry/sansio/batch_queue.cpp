#include "telemetry/sansio/batch_queue.hpp"

#include <algorithm>

namespace promptcache::telemetry {

namespace {
constexpr std::size_t spare_buffers = 4;  // a full queue's batches, at the default limits
}  // namespace

BatchQueue::BatchQueue(BatchLimits limits, Clock::time_point now)
    : limits_(limits), last_take_(now) {
  limits_.max_queue = std::max<std::size_t>(limits_.max_queue, 1);
  limits_.max_batch = std::clamp<std::size_t>(limits_.max_batch, 1, limits_.max_queue);
}

char* BatchQueue::push(std::size_t size) {
  if (size_ >= limits_.max_queue) {
    ++dropped_;
    return nullptr;
  }
  if (batches_.empty() || batches_.back().spans >= limits_.max_batch) {
    EncodedBatch fresh;
    if (!spare_.empty()) {
      fresh.records = std::move(spare_.back());
      spare_.pop_back();
    }
    batches_.push_back(std::move(fresh));
  }
  EncodedBatch& last = batches_.back();
  const std::size_t at = last.records.size();
  last.records.resize(at + size);
  ++last.spans;
  ++size_;
  return last.records.data() + at;
}

BatchQueue::Clock::time_point BatchQueue::due() const noexcept {
  if (size_ == 0) return Clock::time_point::max();
  if (flushing_ || size_ >= limits_.max_batch) return Clock::time_point::min();
  return last_take_ + limits_.schedule_delay;
}

EncodedBatch BatchQueue::take(Clock::time_point now) {
  last_take_ = now;
  if (batches_.empty()) return {};
  EncodedBatch batch = std::move(batches_.front());
  batches_.pop_front();
  size_ -= batch.spans;
  if (size_ == 0) flushing_ = false;
  return batch;
}

void BatchQueue::recycle(EncodedBatch&& batch) {
  if (spare_.size() >= spare_buffers) return;
  batch.records.clear();  // its room kept
  spare_.push_back(std::move(batch.records));
}

}  // namespace promptcache::telemetry
