// The batch span processor's queue, without a thread or a clock: finished spans wait here
// until a batch is full or the schedule delay has passed since the last export, up to a bound
// past which new spans are dropped and counted (OTEL_BSP_* of the OpenTelemetry SDK spec).
// The exporter's thread drives it: push from any thread (under the exporter's lock), due() to
// decide when to wake, take() for the next batch.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "telemetry/sansio/span_data.hpp"

namespace promptcache::telemetry {

struct BatchLimits {
  std::size_t max_queue = 2048;  // OTEL_BSP_MAX_QUEUE_SIZE
  std::size_t max_batch = 512;   // OTEL_BSP_MAX_EXPORT_BATCH_SIZE (at most max_queue)
  std::chrono::milliseconds schedule_delay{5000};  // OTEL_BSP_SCHEDULE_DELAY
};

class BatchQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit BatchQueue(BatchLimits limits, Clock::time_point now = Clock::time_point{});

  // Queues a finished span; false (and counted as dropped) when the queue is full.
  bool push(SpanData span);
  // When the next batch is due: now if a full batch waits or a flush was asked, the schedule
  // delay after the last take if anything waits, never (time_point::max) when empty.
  [[nodiscard]] Clock::time_point due() const noexcept;
  // Up to max_batch spans, oldest first; the schedule restarts at `now`.
  [[nodiscard]] std::vector<SpanData> take(Clock::time_point now);
  // Everything queued is due now (a shutdown's or a caller's flush), until the queue is empty.
  void flush_requested() noexcept { flushing_ = !queue_.empty(); }

  [[nodiscard]] std::size_t size() const noexcept { return queue_.size(); }
  [[nodiscard]] bool empty() const noexcept { return queue_.empty(); }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_; }
  [[nodiscard]] const BatchLimits& limits() const noexcept { return limits_; }

 private:
  BatchLimits limits_;
  std::deque<SpanData> queue_;
  Clock::time_point last_take_;
  std::uint64_t dropped_ = 0;
  bool flushing_ = false;
};

}  // namespace promptcache::telemetry
