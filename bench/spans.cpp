// What recording a span costs the thread that records it, without a server around it: a loop
// of what `promptcache serve` records for a cache hit — a SERVER span with the HTTP attributes
// and its cache_get child — exported to the OTLP endpoint given (bench/spans.sh starts nginx
// answering 200), with the exporter's thread beside it. Prints one JSON line: the recording
// thread's CPU per request, the whole process's (the exporter's included) and the spans
// exported. The same loop sampled out (OTEL_TRACES_SAMPLER=always_off) is the reference.
//
//   promptcache_span_bench <endpoint> <always_on|always_off> <http/protobuf|http/json> [requests]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "promptcache/telemetry/otlp.hpp"
#include "promptcache/telemetry/tracer.hpp"

namespace {

using namespace promptcache::telemetry;

double cpu_seconds(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// One request's spans, as serve records them for a hit.
void record_request(Tracer* tracer, std::string_view key) {
  ScopedSpan request(tracer, "GET", SpanKind::server, nullptr);
  if (request.recording()) {
    request.set("http.request.method", "GET");
    request.set("url.path",
                "/v1/analyses/4bf92f3577b34da6a3ce929d0e0e47364bf92f3577b34da6a3ce929d0e0e4736");
    request.set("url.scheme", "http");
    request.set("network.protocol.version", "1.1");
    request.set("server.address", "127.0.0.1");
    request.set("server.port", std::int64_t{8080});
    request.set("client.address", "127.0.0.1");
    request.set("user_agent.original", "wrk");
  }
  {
    ScopedSpan read(tracer, "cache_get", SpanKind::internal, request.parent_for_children());
    read.set("cache.key", key);
    read.set("cache.tier", "redis");
    read.set("cache.hit", true);
  }
  if (request.recording()) {
    request.update_name("GET /v1/analyses/{prompt_hash}");
    request.set("http.route", "/v1/analyses/{prompt_hash}");
    request.set("http.response.status_code", std::int64_t{200});
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: %s <endpoint> <always_on|always_off> <http/protobuf|http/json> "
                 "[requests]\n",
                 argv[0]);
    return 2;
  }
  const std::string endpoint = argv[1];
  const std::string sampler = argv[2];
  const std::string protocol = argv[3];
  const long requests = argc > 4 ? std::atol(argv[4]) : 1000000;
  const OtlpConfig config =
      OtlpConfig::from_env([&](const char* name) -> std::optional<std::string> {
        const std::string_view n = name;
        if (n == "OTEL_EXPORTER_OTLP_ENDPOINT") return endpoint;
        if (n == "OTEL_TRACES_SAMPLER") return sampler;
        if (n == "OTEL_EXPORTER_OTLP_PROTOCOL") return protocol;
        if (n == "OTEL_BSP_SCHEDULE_DELAY") return std::string("200");
        if (n == "OTEL_BSP_MAX_QUEUE_SIZE") return std::string("65536");
        return std::nullopt;
      });
  const auto tracer = make_otlp_tracer(config);
  const std::string key =
      "prompt:analysis:4bf92f3577b34da6a3ce929d0e0e47364bf92f3577b34da6a3ce929d0e0e4736:{alice}:"
      "default";
  const double thread_start = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
  const double process_start = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (long i = 0; i < requests; ++i) {
    record_request(tracer.get(), key);
    // As fast as the exporter drains, not faster: a span dropped at a full queue costs less
    // than one recorded, and would flatter the figure.
    if ((i & 255) == 0) {
      while (tracer->stats().queued + 512 > config.max_queue_size) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  }
  const double thread_seconds = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - thread_start;
  tracer->shutdown(std::chrono::seconds(30));
  const double process_seconds = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - process_start;
  const ExporterStats stats = tracer->stats();
  std::printf(
      "{\"workload\": \"spans\", \"sampler\": \"%s\", \"protocol\": \"%s\", \"requests\": %ld, "
      "\"recording_thread_us_per_request\": %.3f, \"process_us_per_request\": %.3f, "
      "\"spans_exported\": %llu, \"spans_dropped\": %llu}\n",
      sampler.c_str(), protocol.c_str(), requests, thread_seconds * 1e6 / requests,
      process_seconds * 1e6 / requests, static_cast<unsigned long long>(stats.spans_exported),
      static_cast<unsigned long long>(stats.spans_dropped));
  return stats.spans_dropped == 0 ? 0 : 1;
}
