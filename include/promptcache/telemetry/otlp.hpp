// Exporting spans to an OpenTelemetry collector over OTLP/HTTP (protobuf or JSON), configured by
// the standard OTEL_* variables. Nothing is exported unless an endpoint is configured.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "promptcache/telemetry/sampler.hpp"
#include "promptcache/telemetry/tracer.hpp"

namespace promptcache::telemetry {

// How spans are encoded (OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL): OTLP/HTTP with protobuf, the
// standard's default, or with JSON.
enum class OtlpProtocol : std::uint8_t { http_protobuf, http_json };

struct OtlpConfig {
  using Getenv = std::function<std::optional<std::string>(const char*)>;
  using Pairs = std::vector<std::pair<std::string, std::string>>;

  // Whether spans are exported: an endpoint is set, OTEL_SDK_DISABLED is not true and
  // OTEL_TRACES_EXPORTER is not "none".
  bool enabled = false;
  // The traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, or
  // OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended. http or https.
  std::string endpoint;
  // OTEL_EXPORTER_OTLP_HEADERS (and _TRACES_HEADERS, which wins per name): sent with every
  // export, never logged or shown (describe() shows their names only).
  Pairs headers;
  OtlpProtocol protocol = OtlpProtocol::http_protobuf;  // OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL
  std::chrono::milliseconds timeout{10000};             // OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT
  Sampler sampler;                                      // OTEL_TRACES_SAMPLER, _ARG
  std::chrono::milliseconds schedule_delay{5000};       // OTEL_BSP_SCHEDULE_DELAY
  std::chrono::milliseconds export_timeout{30000};      // OTEL_BSP_EXPORT_TIMEOUT
  std::size_t max_queue_size = 2048;                    // OTEL_BSP_MAX_QUEUE_SIZE
  std::size_t max_export_batch_size = 512;              // OTEL_BSP_MAX_EXPORT_BATCH_SIZE
  // service.name: OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES's, else the default.
  std::string service_name = "promptcache";
  Pairs resource_attributes;  // OTEL_RESOURCE_ATTRIBUTES, percent-decoded

  // Reads the variables; ConfigError naming the variable for a value it cannot use (a header's
  // value is never repeated in the message).
  [[nodiscard]] static OtlpConfig from_env(const Getenv& getenv);
  // One line for the start-up log: endpoint, sampler, batch settings, header names.
  [[nodiscard]] std::string describe() const;
};

// What the exporter did so far (for /metrics).
struct ExporterStats {
  std::uint64_t spans_exported = 0;  // accepted by the collector
  std::uint64_t spans_dropped = 0;   // the queue was full when they ended
  std::uint64_t spans_failed = 0;    // in batches given up (retries exhausted, refused, shut down)
  std::uint64_t exports_failed = 0;  // export attempts that failed (each retry counts)
  std::size_t queued = 0;
};

// A tracer that records the spans its sampler picks and exports them from a thread of its own
// through a batch processor. Destroying it (or shutdown()) exports what is queued, within the
// export timeout.
class OtlpTracer : public Tracer {
 public:
  ~OtlpTracer() override = default;
  [[nodiscard]] virtual ExporterStats stats() const = 0;
  // Exports everything queued now; returns when it is sent or `deadline` passed.
  virtual void flush(std::chrono::milliseconds deadline) = 0;
  // Flushes (up to `deadline`) and stops the thread; spans ended later are dropped.
  virtual void shutdown(std::chrono::milliseconds deadline) = 0;
  [[nodiscard]] virtual const OtlpConfig& config() const = 0;
};

// nullptr unless config.enabled.
[[nodiscard]] std::shared_ptr<OtlpTracer> make_otlp_tracer(const OtlpConfig& config);

}  // namespace promptcache::telemetry
