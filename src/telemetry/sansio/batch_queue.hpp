// The batch span processor's queue, without a thread or a clock: finished spans, as records of
// bytes (span_record.hpp), wait here until a batch is full or the schedule delay has passed
// since the last export, up to a bound past which new spans are dropped and counted (OTEL_BSP_*
// of the OpenTelemetry SDK spec). The exporter's thread drives it: push from any thread (under
// the exporter's lock), due() to decide when to wake, take() for the next batch, recycle() to
// hand its buffer back.
//
// Spans are queued as bytes, in batches made as they come: a span's recording thread writes its
// record and only those bytes cross to the exporter's thread — no span object is freed on
// another thread than the one that made it, and a batch's buffer is used again (no allocation
// once warm).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace promptcache::telemetry {

struct BatchLimits {
  std::size_t max_queue = 2048;  // OTEL_BSP_MAX_QUEUE_SIZE
  std::size_t max_batch = 512;   // OTEL_BSP_MAX_EXPORT_BATCH_SIZE (at most max_queue)
  std::chrono::milliseconds schedule_delay{5000};  // OTEL_BSP_SCHEDULE_DELAY
};

// Spans' records, oldest first, one after the other.
struct EncodedBatch {
  std::string records;
  std::size_t spans = 0;
};

class BatchQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit BatchQueue(BatchLimits limits, Clock::time_point now = Clock::time_point{});

  // Queues a finished span's record of `size` bytes, which its caller writes at the place
  // returned (before the next call); nullptr (and counted as dropped) when the queue is full.
  [[nodiscard]] char* push(std::size_t size);
  // When the next batch is due: now if a full batch waits or a flush was asked, the schedule
  // delay after the last take if anything waits, never (time_point::max) when empty.
  [[nodiscard]] Clock::time_point due() const noexcept;
  // Up to max_batch spans, oldest first (none when empty); the schedule restarts at `now`.
  [[nodiscard]] EncodedBatch take(Clock::time_point now);
  // A taken batch's buffer, for a later batch (a few are kept; the rest freed).
  void recycle(EncodedBatch&& batch);
  // Everything queued is due now (a shutdown's or a caller's flush), until the queue is empty.
  void flush_requested() noexcept { flushing_ = size_ > 0; }

  // Spans queued.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_; }
  [[nodiscard]] const BatchLimits& limits() const noexcept { return limits_; }

 private:
  BatchLimits limits_;
  std::deque<EncodedBatch> batches_;  // each at most max_batch spans; the last one filling
  std::vector<std::string> spare_;    // recycled buffers
  std::size_t size_ = 0;
  Clock::time_point last_take_;
  std::uint64_t dropped_ = 0;
  bool flushing_ = false;
};

}  // namespace promptcache::telemetry
