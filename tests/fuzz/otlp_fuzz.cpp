// libFuzzer target for the exporter's sans-IO reading: what a collector answers, and span
// records read back.
//
// Input layout: byte 0 is a control byte, the rest the subject.
//   bit  0    0: a collector's HTTP response, fed to ResponseParser; 1: span records
//   bits 1-3  response: chunk size (1..8) for a second, chunked parse
//
// A response is parsed whole and chunked: both must agree (done or failed, status, body,
// Retry-After); a done response's body is read as an ExportTraceServiceResponse. Records are
// read one after another; each one read is written again and must read back to the same span
// (its OTLP/JSON the same). Any broken invariant calls __builtin_trap().
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "telemetry/sansio/http_exchange.hpp"
#include "telemetry/sansio/otlp_json.hpp"
#include "telemetry/sansio/otlp_proto.hpp"
#include "telemetry/sansio/span_record.hpp"

namespace {

using namespace promptcache::telemetry;

#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

ResponseParser parse(std::string_view bytes, std::size_t step) {
  ResponseParser p;
  while (!bytes.empty() && !p.done() && !p.failed()) {
    const std::size_t n = step == 0 ? bytes.size() : std::min(step, bytes.size());
    const std::size_t used = p.feed(bytes.substr(0, n));
    FUZZ_CHECK(used <= n);
    bytes.remove_prefix(used);
    if (used < n) break;  // done: the rest is not this response's
  }
  if (!p.done() && !p.failed()) p.end_of_stream();
  return p;
}

void response(std::string_view bytes, std::size_t step) {
  const ResponseParser whole = parse(bytes, 0);
  const ResponseParser chunked = parse(bytes, step);
  FUZZ_CHECK(whole.done() == chunked.done());
  FUZZ_CHECK(whole.failed() == chunked.failed());
  FUZZ_CHECK(whole.done() || whole.failed());
  if (!whole.done()) return;
  FUZZ_CHECK(whole.response().status == chunked.response().status);
  FUZZ_CHECK(whole.response().body == chunked.response().body);
  FUZZ_CHECK(whole.response().retry_after == chunked.response().retry_after);
  FUZZ_CHECK(whole.response().body.size() <= ResponseParser::kept_body);
  (void)otlp_proto_rejected_spans(whole.response().body);
}

void records(std::string_view bytes) {
  SpanData span;
  SpanData again;
  while (!bytes.empty()) {
    std::string_view in = bytes;
    if (!read_span_record(in, span)) {
      FUZZ_CHECK(in.size() == bytes.size());  // nothing consumed
      return;
    }
    FUZZ_CHECK(in.size() < bytes.size());
    bytes = in;
    std::string record;
    write_span_record(record, span);
    std::string_view written = record;
    FUZZ_CHECK(read_span_record(written, again) && written.empty());
    std::string first;
    std::string second;
    otlp_span_json(first, span);
    otlp_span_json(second, again);
    FUZZ_CHECK(first == second);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const std::string_view subject(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((control & 1) == 0) {
    response(subject, 1 + ((control >> 1) & 7));
  } else {
    records(subject);
  }
  return 0;
}
