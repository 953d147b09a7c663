// make_otlp_tracer: spans recorded as SpanData, written as records (span_record.hpp) by the
// thread that ends them and queued in a BatchQueue; one thread of the tracer's own exports each
// batch through HttpPoster — the records as they are behind an OTLP/protobuf envelope, or read
// back and encoded as OTLP/JSON — retried as after_attempt() says.
//
// What a span costs its thread: its SpanData comes from a small per-thread pool (its
// attributes' slots and strings' room kept), its record is a few copies into a batch buffer
// that is itself reused, and nothing it allocates is freed on another thread.
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <boost/json/parse.hpp>

#include "promptcache/error.hpp"
#include "promptcache/log.hpp"
#include "promptcache/redact.hpp"
#include "promptcache/telemetry/otlp.hpp"
#include "telemetry/otlp_http.hpp"
#include "telemetry/sansio/batch_queue.hpp"
#include "telemetry/sansio/export_retry.hpp"
#include "telemetry/sansio/http_exchange.hpp"
#include "telemetry/sansio/otlp_json.hpp"
#include "telemetry/sansio/otlp_proto.hpp"
#include "telemetry/sansio/span_record.hpp"

namespace promptcache::telemetry {
namespace {

using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

std::uint64_t unix_nanos() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(SystemClock::now().time_since_epoch())
          .count());
}

// The rejected spans an OTLP partial success reports ({"partialSuccess":{"rejectedSpans":"3"}}).
std::uint64_t rejected_spans(const std::string& body) {
  if (body.empty()) return 0;
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return 0;
  const auto* partial = v.as_object().if_contains("partialSuccess");
  if (partial == nullptr || !partial->is_object()) return 0;
  const auto* rejected = partial->as_object().if_contains("rejectedSpans");
  if (rejected == nullptr) return 0;
  if (rejected->is_int64() && rejected->as_int64() > 0) {
    return static_cast<std::uint64_t>(rejected->as_int64());
  }
  if (rejected->is_string()) {
    try {
      return std::stoull(std::string(rejected->as_string()));
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

// What the spans and the exporter's thread share; spans hold it, so a span that ends after
// its tracer is gone is counted as dropped, not a crash.
class Pipeline {
 public:
  explicit Pipeline(const OtlpConfig& config)
      : config_(config),
        target_(parse_http_target(config.endpoint)),
        queue_(
            BatchLimits{config.max_queue_size, config.max_export_batch_size, config.schedule_delay},
            SteadyClock::now()) {
    resource_.attributes.push_back({"service.name", config_.service_name});
    for (const auto& [k, v] : config_.resource_attributes) {
      if (k != "service.name") resource_.attributes.push_back({k, v});
    }
    resource_.attributes.push_back({"telemetry.sdk.name", std::string("promptcache")});
    resource_.attributes.push_back({"telemetry.sdk.language", std::string("cpp")});
  }

  // A finished span: its record written straight into the batch it joins (sized first, outside
  // the lock). A span with text that is not UTF-8 (a hostile header) is repaired on the way.
  void end(const SpanData& span) {
    if (!utf8_throughout(span)) {
      std::string record;
      write_span_record(record, span);
      end(record.size(), [&](char* at) { std::memcpy(at, record.data(), record.size()); });
      return;
    }
    end(span_record_size(span), [&](char* at) { write_span_record(at, span); });
  }

  ExporterStats stats() const {
    ExporterStats s;
    s.spans_exported = exported_.load(std::memory_order_relaxed);
    s.spans_failed = failed_spans_.load(std::memory_order_relaxed);
    s.exports_failed = failed_exports_.load(std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    s.spans_dropped = queue_.dropped() + dropped_after_stop_;
    s.queued = queue_.size() + in_flight_;
    return s;
  }

  void flush(std::chrono::milliseconds deadline) {
    std::unique_lock lock(mutex_);
    queue_.flush_requested();
    wake_.notify_one();
    idle_.wait_for(lock, deadline, [this] { return queue_.empty() && in_flight_ == 0; });
  }

  // Flushes until `deadline` and ends the thread's loop; spans ended later are dropped.
  void stop(std::chrono::milliseconds deadline) {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    stop_at_ = SteadyClock::now() + deadline;
    queue_.flush_requested();
    wake_.notify_one();
  }

  // The exporter's thread.
  void run() {
    HttpPoster poster(target_);
    std::unique_lock lock(mutex_);
    for (;;) {
      const auto now = SteadyClock::now();
      if (stopping_ && (queue_.empty() || now >= stop_at_)) break;
      const auto due = queue_.due();
      if (due > now) {
        const auto until = stopping_ ? std::min(due, stop_at_) : due;
        if (until == SteadyClock::time_point::max()) {
          wake_.wait(lock);
        } else {
          wake_.wait_until(lock, until);
        }
        continue;
      }
      EncodedBatch batch = queue_.take(now);
      in_flight_ = batch.spans;
      lock.unlock();
      export_batch(poster, batch);
      lock.lock();
      queue_.recycle(std::move(batch));
      in_flight_ = 0;
      idle_.notify_all();
    }
    stopped_ = true;
    // What the deadline left queued is lost: counted, and the flushers are told.
    failed_spans_.fetch_add(queue_.size(), std::memory_order_relaxed);
    while (!queue_.empty()) queue_.recycle(queue_.take(SteadyClock::now()));
    idle_.notify_all();
  }

 private:
  void export_batch(HttpPoster& poster, const EncodedBatch& batch) {
    static const Scope scope{"promptcache", PROMPTCACHE_VERSION};
    body_.clear();  // its room kept from export to export: no fresh pages to fault in
    const bool json = config_.protocol == OtlpProtocol::http_json;
    if (json) {
      otlp_json_open(body_, resource_, scope);
      std::string_view records = batch.records;
      for (bool first = true; !records.empty() && read_span_record(records, scratch_);
           first = false) {
        if (!first) body_ += ',';
        otlp_span_json(body_, scratch_);
      }
      otlp_json_close(body_);
    } else {
      // The records are the spans' protobuf: sent behind the envelope as they are.
      otlp_proto_open(body_, resource_, scope, batch.records.size());
    }
    const HttpPoster::Body body{body_, json ? std::string_view() : batch.records};
    const std::string head = post_head(target_.host_header, target_.path, config_.headers,
                                       json ? "application/json" : "application/x-protobuf",
                                       body.size(), "promptcache/" PROMPTCACHE_VERSION);
    const RetryLimits limits;
    for (int attempt = 1;; ++attempt) {
      const auto timeout = attempt_timeout();
      const HttpPoster::Outcome out = poster.post(head, body, timeout);
      if (out.status >= 200 && out.status < 300) {
        const std::uint64_t rejected = std::min<std::uint64_t>(
            json ? rejected_spans(out.body) : otlp_proto_rejected_spans(out.body), batch.spans);
        exported_.fetch_add(batch.spans - rejected, std::memory_order_relaxed);
        failed_spans_.fetch_add(rejected, std::memory_order_relaxed);
        return;
      }
      failed_exports_.fetch_add(1, std::memory_order_relaxed);
      const RetryDecision next = after_attempt(limits, attempt, {out.status, out.retry_after},
                                               jitter_(rng_), SystemClock::now());
      warn(out, batch.spans, next.kind == RetryDecision::Kind::retry);
      if (next.kind != RetryDecision::Kind::retry || !pause(next.pause)) {
        failed_spans_.fetch_add(batch.spans, std::memory_order_relaxed);
        return;
      }
    }
  }

  // The export timeout, cut short by a shutdown's deadline.
  std::chrono::milliseconds attempt_timeout() {
    std::lock_guard lock(mutex_);
    auto t = std::min(config_.timeout, config_.export_timeout);
    if (stopping_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(stop_at_ - SteadyClock::now());
      t = std::max(std::min(t, left), std::chrono::milliseconds(1));
    }
    return t;
  }

  // Waits before a retry; false when a shutdown's deadline comes first.
  bool pause(std::chrono::milliseconds pause) {
    std::unique_lock lock(mutex_);
    const auto until = SteadyClock::now() + pause;
    wake_.wait_until(lock, until, [&] { return stopping_ && SteadyClock::now() >= stop_at_; });
    return !(stopping_ && (SteadyClock::now() >= stop_at_ || until > stop_at_));
  }

  // At most one warning every 10 s: a collector that is down must not flood the log.
  void warn(const HttpPoster::Outcome& out, std::size_t spans, bool retrying) {
    const auto now = SteadyClock::now();
    if (now - last_warning_ < std::chrono::seconds(10)) return;
    last_warning_ = now;
    const std::string why =
        out.status != 0 ? "HTTP " + std::to_string(out.status) : redact(out.error);
    logger()->warn("trace export to {} failed: {}; {} spans {} (failed exports so far: {})",
                   redact_url(config_.endpoint), why, spans,
                   retrying ? "will be sent again" : "given up",
                   failed_exports_.load(std::memory_order_relaxed));
  }

  template <class Write>
  void end(std::size_t size, Write write) {
    std::lock_guard lock(mutex_);
    if (stopped_) {
      ++dropped_after_stop_;
      return;
    }
    if (char* at = queue_.push(size)) write(at);
    // The thread sleeps without a deadline while the queue is empty, and until the schedule
    // otherwise: told of the first span, and of a full batch.
    if (queue_.size() == 1 || queue_.size() == queue_.limits().max_batch) wake_.notify_one();
  }

  const OtlpConfig config_;
  Resource resource_;  // what every export names: service.name and the rest
  HttpTarget target_;  // the endpoint, parsed
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // the thread: a full batch, a flush, a stop
  std::condition_variable idle_;  // the flushers: the queue ran empty
  BatchQueue queue_;
  std::size_t in_flight_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  SteadyClock::time_point stop_at_;
  std::uint64_t dropped_after_stop_ = 0;
  std::atomic<std::uint64_t> exported_{0};
  std::atomic<std::uint64_t> failed_spans_{0};
  std::atomic<std::uint64_t> failed_exports_{0};
  SteadyClock::time_point last_warning_{};
  // The exporter's thread only, each reused from export to export:
  SpanData scratch_;  // a record read back
  std::string body_;  // the export request's body
  std::minstd_rand rng_{std::random_device{}()};
  std::uniform_real_distribution<double> jitter_{0.0, 1.0};
};

// This thread's T, made at its first use; nullptr once destroyed. A span may end after its
// thread's lists (SpanDataPool's, SpanMemory's) are gone: one held by a thread_local object
// made before them ends as its thread exits, after they are destroyed; one held by a static
// object ends at exit, after the main thread's thread_locals. It then takes and gives back its
// memory without a list. `gone` is trivially destroyed: it stays readable.
template <class T>
class PerThread {
 public:
  static T* get() {
    if (gone) return nullptr;
    thread_local Holder holder;
    return &holder.value;
  }

 private:
  struct Holder {
    ~Holder() { gone = true; }
    T value;
  };
  static inline thread_local bool gone = false;
};

// SpanData for the spans this thread records: taken at a span's start, given back (emptied,
// its room kept) once the span is encoded at its end — by the thread that ends it, whichever
// that is. At most `kept` wait.
class SpanDataPool {
 public:
  static std::unique_ptr<SpanData> take() {
    auto* free = list();
    if (free == nullptr || free->empty()) {
      return std::make_unique<SpanData>();
    }
    auto data = std::move(free->back());
    free->pop_back();
    return data;
  }
  static void give_back(std::unique_ptr<SpanData> data) {
    auto* free = list();
    if (free == nullptr || free->size() >= kept) return;
    data->attributes.clear();
    data->events.clear();
    data->trace_state.clear();
    data->status = StatusCode::unset;
    data->status_message.clear();
    data->parent_span_id = {};
    free->push_back(std::move(data));
  }

 private:
  // Spans open at once on a thread, about: a SERVER span and a cache span for each request in
  // flight (50 connections' worth keep 100 open). Past it, spans are made and freed afresh.
  static constexpr std::size_t kept = 256;
  static std::vector<std::unique_ptr<SpanData>>* list() {
    return PerThread<std::vector<std::unique_ptr<SpanData>>>::get();
  }
};

// The memory of RecordingSpan objects, kept per thread as SpanDataPool keeps their data: a
// request's spans are then made and ended without a call to malloc (glibc's per-thread cache
// holds 7 blocks of a size: 50 connections' spans, ended in bursts, ran past it).
class SpanMemory {
 public:
  static void* take(std::size_t size) {
    List* free = list();
    if (free == nullptr || free->blocks.empty()) return ::operator new(size);
    void* block = free->blocks.back();
    free->blocks.pop_back();
    return block;
  }
  static void give_back(void* block) noexcept {
    List* free = list();
    if (free == nullptr || free->blocks.size() >= kept) {
      ::operator delete(block);
      return;
    }
    free->blocks.push_back(block);  // room reserved: does not throw
  }

 private:
  static constexpr std::size_t kept = 256;  // as SpanDataPool
  struct List {
    List() { blocks.reserve(kept); }
    List(const List&) = delete;
    List& operator=(const List&) = delete;
    ~List() {
      for (void* block : blocks) ::operator delete(block);
    }
    std::vector<void*> blocks;
  };
  static List* list() { return PerThread<List>::get(); }
};

class RecordingSpan final : public Span {
 public:
  // Final: every object is this size, so one thread-local list serves them all.
  static void* operator new(std::size_t size) { return SpanMemory::take(size); }
  static void operator delete(void* block) noexcept { SpanMemory::give_back(block); }

  RecordingSpan(std::shared_ptr<Pipeline> pipeline, std::unique_ptr<SpanData> data)
      : pipeline_(std::move(pipeline)), data_(std::move(data)) {}
  ~RecordingSpan() override {
    data_->end_ns = unix_nanos();
    // Its record, written by this thread into the batch: only bytes go to the exporter's thread.
    pipeline_->end(*data_);
    SpanDataPool::give_back(std::move(data_));
  }
  void set_attribute(std::string_view key, AttributeValue value) override {
    data_->attributes.set(key, std::move(value));
  }
  void set_text(std::string_view key, std::string_view value) override {
    data_->attributes.set_text(key, value);  // encoded in the span's room: none allocated
  }
  void set_attributes(const Attributes& prepared) override {
    data_->attributes.append(prepared);  // as they are encoded: one copy
  }
  void record_exception(std::string_view message) override {
    data_->events.push_back(
        {"exception", unix_nanos(), {{"exception.message", std::string(message)}}});
    set_error(message);
  }
  void set_error(std::string_view description) override {
    data_->status = StatusCode::error;
    data_->status_message = description;
  }
  void update_name(std::string_view name) override { data_->name = name; }

 private:
  std::shared_ptr<Pipeline> pipeline_;
  std::unique_ptr<SpanData> data_;
};

class Exporter final : public OtlpTracer {
 public:
  explicit Exporter(const OtlpConfig& config)
      : config_(config), pipeline_(std::make_shared<Pipeline>(config)) {
    thread_ = std::thread([p = pipeline_] {
      // Named for the operator's tools (top -H, perf, gdb): 15 characters at most.
      ::pthread_setname_np(::pthread_self(), "otlp-exporter");
      p->run();
    });
  }
  ~Exporter() override { shutdown(config_.export_timeout); }

  StartedSpan start_span(std::string_view name, SpanKind kind, const SpanContext* parent) override {
    const bool continues = parent != nullptr && parent->valid();
    StartedSpan started;
    SpanContext& c = started.context;
    c.trace_id = continues ? parent->trace_id : new_trace_id();
    c.span_id = new_span_id();
    c.sampled = config_.sampler.sample(continues ? parent : nullptr, c.trace_id);
    if (continues) c.trace_state = parent->trace_state;
    if (!c.sampled) return started;
    std::unique_ptr<SpanData> data = SpanDataPool::take();
    data->name = name;
    data->kind = kind;
    data->trace_id = c.trace_id;
    data->span_id = c.span_id;
    if (continues) data->parent_span_id = parent->span_id;
    data->trace_state = c.trace_state;
    data->start_ns = unix_nanos();
    started.span = std::make_unique<RecordingSpan>(pipeline_, std::move(data));
    return started;
  }

  ExporterStats stats() const override { return pipeline_->stats(); }
  void flush(std::chrono::milliseconds deadline) override { pipeline_->flush(deadline); }
  void shutdown(std::chrono::milliseconds deadline) override {
    std::lock_guard lock(shutdown_mutex_);
    if (!thread_.joinable()) return;
    pipeline_->stop(deadline);
    thread_.join();
  }
  const OtlpConfig& config() const override { return config_; }

 private:
  const OtlpConfig config_;
  std::shared_ptr<Pipeline> pipeline_;
  std::mutex shutdown_mutex_;
  std::thread thread_;
};

}  // namespace

std::shared_ptr<OtlpTracer> make_otlp_tracer(const OtlpConfig& config) {
  if (!config.enabled) return nullptr;
  if (!parse_http_target(config.endpoint).valid) {
    throw ConfigError("OTEL_EXPORTER_OTLP_ENDPOINT: not a usable http:// or https:// URL");
  }
  return std::make_shared<Exporter>(config);
}

}  // namespace promptcache::telemetry
