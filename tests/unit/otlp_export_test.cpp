// The exporter's sans-IO parts: the OTLP/JSON body (otlp_json), the span records and the
// OTLP/protobuf body (span_record, otlp_proto), the batch queue, the retry decision and the HTTP
// exchange's bytes — and OtlpConfig::from_env. No socket, no clock.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cstring>
#include <map>

#include "promptcache/error.hpp"
#include "promptcache/json_text.hpp"
#include "promptcache/redact.hpp"
#include "promptcache/telemetry/otlp.hpp"
#include "telemetry/otlp_http.hpp"
#include "telemetry/sansio/batch_queue.hpp"
#include "telemetry/sansio/export_retry.hpp"
#include "telemetry/sansio/http_exchange.hpp"
#include "telemetry/sansio/otlp_json.hpp"
#include "telemetry/sansio/otlp_proto.hpp"
#include "telemetry/sansio/protobuf.hpp"
#include "telemetry/sansio/span_record.hpp"

namespace promptcache::telemetry {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

SpanData sample_span() {
  SpanData s;
  s.name = "GET /v1/analyses/{hash}";
  s.kind = SpanKind::server;
  s.trace_id =
      parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")->trace_id;
  s.span_id = new_span_id();
  s.parent_span_id =
      parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")->span_id;
  s.start_ns = 1700000000123456789ULL;
  s.end_ns = 1700000000223456789ULL;
  s.attributes = {{"http.request.method", std::string("GET")},
                  {"http.response.status_code", std::int64_t{200}},
                  {"cache.hit", true},
                  {"ratio", 0.5}};
  s.events = {{"exception", 1700000000200000000ULL, {{"exception.message", std::string("boom")}}}};
  s.status = StatusCode::error;
  s.status_message = "boom";
  return s;
}

json::object encoded_span(const SpanData& s) {
  const std::vector<SpanData> spans{s};
  const json::value body = json::parse(
      otlp_json({{{"service.name", std::string("svc")}}}, Scope{"promptcache", "0.1.0"}, spans));
  const auto& rs = body.at("resourceSpans").as_array().at(0).as_object();
  EXPECT_EQ(rs.at("resource").at("attributes").at(0).at("value").at("stringValue"), "svc");
  const auto& ss = rs.at("scopeSpans").as_array().at(0).as_object();
  EXPECT_EQ(ss.at("scope").at("name"), "promptcache");
  EXPECT_EQ(ss.at("scope").at("version"), "0.1.0");
  return ss.at("spans").as_array().at(0).as_object();
}

std::map<std::string, json::value> attribute_map(const json::value& list) {
  std::map<std::string, json::value> out;
  for (const auto& a : list.as_array()) {
    out[std::string(a.at("key").as_string())] = a.at("value");
  }
  return out;
}

TEST(OtlpJson, a_span_is_written_in_the_protobuf_json_mapping) {
  const SpanData s = sample_span();
  const json::object span = encoded_span(s);
  EXPECT_EQ(span.at("traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span.at("spanId").as_string(), to_hex(s.span_id));
  EXPECT_EQ(span.at("parentSpanId"), "00f067aa0ba902b7");
  EXPECT_EQ(span.at("name"), "GET /v1/analyses/{hash}");
  EXPECT_EQ(span.at("kind"), 2);                                   // SPAN_KIND_SERVER, as a number
  EXPECT_EQ(span.at("startTimeUnixNano"), "1700000000123456789");  // int64 as a string
  EXPECT_EQ(span.at("endTimeUnixNano"), "1700000000223456789");
  auto attrs = attribute_map(span.at("attributes"));
  EXPECT_EQ(attrs["http.request.method"].at("stringValue"), "GET");
  EXPECT_EQ(attrs["http.response.status_code"].at("intValue"), "200");
  EXPECT_EQ(attrs["cache.hit"].at("boolValue"), true);
  EXPECT_EQ(attrs["ratio"].at("doubleValue"), 0.5);
  const auto& event = span.at("events").at(0);
  EXPECT_EQ(event.at("name"), "exception");
  EXPECT_EQ(event.at("timeUnixNano"), "1700000000200000000");
  EXPECT_EQ(attribute_map(event.at("attributes"))["exception.message"].at("stringValue"), "boom");
  EXPECT_EQ(span.at("status").at("code"), 2);
  EXPECT_EQ(span.at("status").at("message"), "boom");
}

TEST(OtlpJson, a_root_span_has_no_parent_and_an_unset_status_is_empty) {
  SpanData s = sample_span();
  s.parent_span_id = {};
  s.status = StatusCode::unset;
  s.events.clear();
  const json::object span = encoded_span(s);
  EXPECT_FALSE(span.contains("parentSpanId"));
  EXPECT_FALSE(span.contains("events"));
  EXPECT_TRUE(span.at("status").as_object().empty());
}

TEST(OtlpJson, hostile_text_stays_valid_json_and_odd_doubles_are_named) {
  SpanData s = sample_span();
  s.attributes = {{"user_agent.original", std::string("a\"b\\c\n\x01\xff\xc3(")},
                  {"nan", std::numeric_limits<double>::quiet_NaN()},
                  {"inf", -std::numeric_limits<double>::infinity()}};
  const json::object span = encoded_span(s);  // parses: the bytes were repaired
  auto attrs = attribute_map(span.at("attributes"));
  EXPECT_EQ(attrs["user_agent.original"].at("stringValue"),
            "a\"b\\c\n\x01\xEF\xBF\xBD\xEF\xBF\xBD(");
  EXPECT_EQ(attrs["nan"].at("doubleValue"), "NaN");
  EXPECT_EQ(attrs["inf"].at("doubleValue"), "-Infinity");
}

TEST(OtlpJson, a_key_set_again_is_replaced_and_a_cleared_span_starts_empty) {
  Attributes a;
  a.set_text("cache.key", "k1");
  a.set("cache.hit", false);
  a.set_text("cache.key", "k2");  // replaced, not added
  a.set("cache.hit", true);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(std::get<std::string>(*a.get("cache.key")), "k2");
  EXPECT_EQ(std::get<bool>(*a.get("cache.hit")), true);
  a.clear();  // a pooled span's next use
  EXPECT_TRUE(a.empty());
  a.set("cache.hit", std::int64_t{7});  // a slot that held text now holds a number
  a.set_text("cache.tier", "redis");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a.decoded()[0].key, "cache.hit");
  EXPECT_EQ(std::get<std::int64_t>(a.decoded()[0].value), 7);
  EXPECT_EQ(std::get<std::string>(a.decoded()[1].value), "redis");
  SpanData s;
  s.attributes = a;
  const auto attrs = attribute_map(encoded_span(s).at("attributes"));
  EXPECT_EQ(attrs.size(), 2u);  // the cleared ones are not encoded
  EXPECT_EQ(attrs.at("cache.tier").at("stringValue"), "redis");
}

TEST(SpanRecord, a_span_read_back_from_its_record_encodes_as_the_span_itself) {
  SpanData first = sample_span();
  first.trace_state = "vendor=opaque";
  first.attributes.set_text("user_agent.original", "a\"b\xff");  // text as it came
  first.attributes.set("delta", std::int64_t{-3});               // a ten-byte varint
  SpanData second;
  second.name = "cache_get";
  second.attributes.set("cache.hit", true);
  std::string records;
  write_span_record(records, first);
  write_span_record(records, second);

  SpanData scratch;
  scratch.attributes.set_text("left.over", "from an earlier record");
  std::string_view in = records;
  std::vector<std::string> encoded;
  while (!in.empty()) {
    ASSERT_TRUE(read_span_record(in, scratch));
    otlp_span_json(encoded.emplace_back(), scratch);
  }
  ASSERT_EQ(encoded.size(), 2u);
  std::string expected_first;
  otlp_span_json(expected_first, first);
  std::string expected_second;
  otlp_span_json(expected_second, second);
  EXPECT_EQ(encoded[0], expected_first);
  EXPECT_EQ(encoded[1], expected_second);  // nothing of the first (nor the left-over) in it
}

TEST(SpanRecord, a_record_cut_short_anywhere_is_refused_and_nothing_is_consumed) {
  std::string record;
  write_span_record(record, sample_span());
  for (std::size_t n = 0; n < record.size(); ++n) {
    std::string_view in(record.data(), n);
    SpanData into;
    EXPECT_FALSE(read_span_record(in, into)) << n;
    EXPECT_EQ(in.size(), n) << n;
  }
}

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list) out += static_cast<char>(b);
  return out;
}

TEST(SpanRecord, is_the_spans_field_of_scope_spans_byte_for_byte) {
  SpanData s;
  s.trace_id.fill(0x11);
  s.span_id.fill(0x22);
  s.name = "a";
  s.kind = SpanKind::server;
  s.start_ns = 1;
  s.end_ns = 2;
  s.attributes.set("k", std::int64_t{5});
  std::string record;
  write_span_record(record, s);
  const std::string expected =
      bytes({0x12, 60}) +                                // ScopeSpans.spans, 60 bytes
      bytes({0x0a, 16}) + std::string(16, '\x11') +      // trace_id
      bytes({0x12, 8}) + std::string(8, '\x22') +        // span_id
      bytes({0x2a, 1, 'a'}) +                            // name
      bytes({0x30, 2}) +                                 // kind: SERVER
      bytes({0x39, 1, 0, 0, 0, 0, 0, 0, 0}) +            // start_time_unix_nano
      bytes({0x41, 2, 0, 0, 0, 0, 0, 0, 0}) +            // end_time_unix_nano
      bytes({0x4a, 7, 0x0a, 1, 'k', 0x12, 2, 0x18, 5});  // attributes: {k: int_value 5}
  EXPECT_EQ(record, expected);
}

TEST(SpanRecord, attributes_are_encoded_as_they_are_set_and_a_key_set_again_replaced) {
  Attributes a;
  a.set("k", std::int64_t{5});
  a.set_text("t", "v");
  EXPECT_EQ(a.encoded(), bytes({0x4a, 7, 0x0a, 1, 'k', 0x12, 2, 0x18, 5}) +
                             bytes({0x4a, 8, 0x0a, 1, 't', 0x12, 3, 0x0a, 1, 'v'}));
  a.set("k", true);  // its earlier field goes, the new one comes last
  EXPECT_EQ(a.encoded(), bytes({0x4a, 8, 0x0a, 1, 't', 0x12, 3, 0x0a, 1, 'v'}) +
                             bytes({0x4a, 7, 0x0a, 1, 'k', 0x12, 2, 0x10, 1}));
  a.set_text("t", std::string(200, 'x'));  // lengths past one byte
  a.set("d", -0.5);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(std::get<bool>(*a.get("k")), true);
  EXPECT_EQ(std::get<std::string>(*a.get("t")), std::string(200, 'x'));
  EXPECT_EQ(std::get<double>(*a.get("d")), -0.5);
  EXPECT_FALSE(a.get("absent"));
  a.clear();
  EXPECT_TRUE(a.encoded().empty());
  a.set("n", std::int64_t{-1});  // a ten-byte varint
  EXPECT_EQ(std::get<std::int64_t>(*a.get("n")), -1);
}

TEST(SpanRecord, a_key_of_a_size_seen_before_is_still_found_to_replace) {
  // Keys are looked for only when a key of their size (mod 64) was set: 1 and 65 share a bit.
  const std::string long_key(65, 'k');
  Attributes a;
  a.set("a", std::int64_t{1});
  a.set("b", std::int64_t{2});  // the same size, another key: added
  a.set(long_key, std::int64_t{3});
  a.set(long_key, std::int64_t{4});
  a.set("a", std::int64_t{5});
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(std::get<std::int64_t>(*a.get("a")), 5);
  EXPECT_EQ(std::get<std::int64_t>(*a.get("b")), 2);
  EXPECT_EQ(std::get<std::int64_t>(*a.get(long_key)), 4);
  a.clear();  // the sizes seen go with the keys
  a.set("a", std::int64_t{6});
  EXPECT_EQ(a.size(), 1u);
}

TEST(SpanRecord, a_prepared_set_appended_is_as_if_each_were_set) {
  Attributes peer;
  peer.set_text("server.address", "127.0.0.1");
  peer.set("server.port", std::int64_t{8080});
  peer.set_text("client.address", "10.0.0.7");

  Attributes fresh;  // a fresh span: the set as it is
  fresh.append(peer);
  EXPECT_EQ(fresh.encoded(), peer.encoded());
  fresh.set("server.port", std::int64_t{9090});  // its keys are known: replaced, not added
  ASSERT_EQ(fresh.size(), 3u);
  EXPECT_EQ(std::get<std::int64_t>(*fresh.get("server.port")), 9090);

  Attributes later;  // a span with attributes already: each replaces or joins, in order
  later.set_text("client.address", "set before");
  later.set_text("http.request.method", "GET");
  later.append(peer);
  Attributes expected;
  expected.set_text("http.request.method", "GET");
  expected.set_text("server.address", "127.0.0.1");
  expected.set("server.port", std::int64_t{8080});
  expected.set_text("client.address", "10.0.0.7");
  EXPECT_EQ(later.encoded(), expected.encoded());
  later.set_text("server.address", "::1");  // the appended keys are found again
  EXPECT_EQ(later.size(), 4u);
  EXPECT_EQ(std::get<std::string>(*later.get("server.address")), "::1");

  later.append(later);  // itself: every key set again to what it holds
  EXPECT_EQ(later.size(), 4u);
  EXPECT_EQ(std::get<std::string>(*later.get("http.request.method")), "GET");
}

// A tracer of a library user's own, which knows nothing of prepared sets: each attribute
// reaches it through set_attribute.
class ListTracer final : public Tracer {
 public:
  std::vector<Attribute> seen;
  StartedSpan start_span(std::string_view, SpanKind, const SpanContext*) override {
    StartedSpan started;
    started.context.trace_id[0] = 1;
    started.context.span_id[0] = 1;
    started.context.sampled = true;
    started.span = std::make_unique<ListSpan>(seen);
    return started;
  }

 private:
  class ListSpan final : public Span {
   public:
    explicit ListSpan(std::vector<Attribute>& seen) : seen_(seen) {}
    void set_attribute(std::string_view key, AttributeValue value) override {
      seen_.push_back({std::string(key), std::move(value)});
    }
    void record_exception(std::string_view) override {}

   private:
    std::vector<Attribute>& seen_;
  };
};

TEST(SpanRecord, a_prepared_set_reaches_another_tracer_attribute_by_attribute) {
  Attributes prepared;
  prepared.set_text("server.address", "127.0.0.1");
  prepared.set("server.port", std::int64_t{8080});
  ListTracer tracer;
  {
    ScopedSpan span(&tracer, "GET");
    span.set(prepared);
  }
  ASSERT_EQ(tracer.seen.size(), 2u);
  EXPECT_EQ(tracer.seen[0].key, "server.address");
  EXPECT_EQ(std::get<std::string>(tracer.seen[0].value), "127.0.0.1");
  EXPECT_EQ(tracer.seen[1].key, "server.port");
  EXPECT_EQ(std::get<std::int64_t>(tracer.seen[1].value), 8080);
}

TEST(SpanRecord, attribute_text_that_is_not_utf8_is_repaired_as_it_is_set) {
  Attributes a;
  a.set_text("user_agent.original", "caf\xc3\xa9");  // UTF-8: kept as it is
  a.set_text("k\xff", "\xff\xfe");
  a.set("x", std::string("bad \xc3"));
  const std::vector<Attribute> list = a.decoded();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(std::get<std::string>(list[0].value), "caf\xc3\xa9");
  for (const Attribute& attribute : list) {
    EXPECT_TRUE(valid_utf8(attribute.key));
    EXPECT_TRUE(valid_utf8(std::get<std::string>(attribute.value)));
  }
}

TEST(SpanRecord, text_that_is_not_utf8_is_repaired_as_it_is_written) {
  SpanData s = sample_span();
  s.name = "bad \xc3";
  s.attributes.set_text("user_agent.original", "\xff\xfe");
  std::string record;
  write_span_record(record, s);
  std::string_view in = record;
  SpanData back;
  ASSERT_TRUE(read_span_record(in, back));
  EXPECT_TRUE(valid_utf8(back.name));
  const auto agent = back.attributes.get("user_agent.original");
  ASSERT_TRUE(agent);
  EXPECT_TRUE(valid_utf8(std::get<std::string>(*agent)));
  for (const SpanEvent& e : back.events) {
    for (const Attribute& a : e.attributes) EXPECT_TRUE(valid_utf8(a.key));
  }
}

TEST(Protobuf, a_message_longer_than_127_bytes_takes_a_two_byte_length) {
  for (const std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{127}, std::size_t{128},
                              std::size_t{200}, std::size_t{20000}}) {
    std::string out = "x";
    const std::size_t body = protobuf::open(out, 3);
    out.append(n, 'b');
    protobuf::close(out, body);
    protobuf::Reader r(std::string_view(out).substr(1));
    unsigned field = 0;
    protobuf::Wire wire{};
    std::string_view inside;
    ASSERT_TRUE(r.tag(field, wire)) << n;
    EXPECT_EQ(field, 3u);
    EXPECT_EQ(wire, protobuf::Wire::len);
    ASSERT_TRUE(r.bytes(inside)) << n;
    EXPECT_EQ(inside, std::string(n, 'b'));
    EXPECT_TRUE(r.done());
    EXPECT_EQ(out.size(), 1 + 1 + protobuf::varint_size(n) + n);
  }
}

TEST(Protobuf, a_reader_refuses_what_runs_past_its_input) {
  std::uint64_t v = 0;
  std::string_view b;
  EXPECT_FALSE(protobuf::Reader(bytes({0x80})).varint(v));            // cut short
  EXPECT_FALSE(protobuf::Reader(std::string(11, '\x80')).varint(v));  // over ten bytes
  EXPECT_FALSE(protobuf::Reader(bytes({5, 'a', 'b'})).bytes(b));      // length past the end
  EXPECT_FALSE(protobuf::Reader(bytes({1, 2, 3})).fixed64(v));
  const std::string three_hundred = bytes({0xac, 0x02});  // the Reader views it
  protobuf::Reader ok(three_hundred);
  EXPECT_TRUE(ok.varint(v));
  EXPECT_EQ(v, 300u);
}

TEST(OtlpProto, the_envelope_holds_the_records_as_they_are) {
  SpanData second;
  second.name = "cache_get";
  second.trace_id.fill(7);
  second.span_id.fill(8);
  const std::vector<SpanData> spans{sample_span(), second};
  const std::string body =
      otlp_proto({{{"service.name", std::string("svc")}}}, Scope{"promptcache", "0.1.0"}, spans);
  // ExportTraceServiceRequest.resource_spans(1) > ResourceSpans.scope_spans(2) > the records.
  const auto only = [](std::string_view message, unsigned wanted, std::string_view& inside,
                       std::string_view* before = nullptr) {
    protobuf::Reader r(message);
    unsigned field = 0;
    protobuf::Wire wire{};
    std::string_view seen;
    while (r.tag(field, wire) && r.bytes(seen)) {
      if (field == wanted) {
        inside = seen;
        return r.done();
      }
      if (before != nullptr) *before = seen;
    }
    return false;
  };
  std::string_view resource_spans;
  std::string_view scope_spans;
  std::string_view resource;
  ASSERT_TRUE(only(body, 1, resource_spans));
  ASSERT_TRUE(only(resource_spans, 2, scope_spans, &resource));
  EXPECT_NE(resource.find("svc"), std::string_view::npos);
  // The scope (field 1), then every span's record.
  protobuf::Reader r(scope_spans);
  unsigned field = 0;
  protobuf::Wire wire{};
  std::string_view scope;
  ASSERT_TRUE(r.tag(field, wire) && r.bytes(scope));
  EXPECT_EQ(field, 1u);
  EXPECT_NE(scope.find("0.1.0"), std::string_view::npos);
  std::string_view records = r.rest();
  std::string expected;
  for (const SpanData& s : spans) write_span_record(expected, s);
  EXPECT_EQ(records, expected);
  SpanData back;
  ASSERT_TRUE(read_span_record(records, back));
  ASSERT_TRUE(read_span_record(records, back));
  EXPECT_EQ(back.name, "cache_get");
  EXPECT_TRUE(records.empty());
}

TEST(OtlpProto, a_partial_success_names_the_rejected_spans) {
  // ExportTraceServiceResponse{partial_success{rejected_spans: 3, error_message: "x"}}
  EXPECT_EQ(otlp_proto_rejected_spans(bytes({0x0a, 5, 0x08, 3, 0x12, 1, 'x'})), 3u);
  EXPECT_EQ(otlp_proto_rejected_spans(""), 0u);
  EXPECT_EQ(otlp_proto_rejected_spans(bytes({0x0a, 0})), 0u);
  EXPECT_EQ(otlp_proto_rejected_spans(bytes({0x0a, 9, 0x08})), 0u);     // cut short
  EXPECT_EQ(otlp_proto_rejected_spans("{\"partialSuccess\":{}}"), 0u);  // not protobuf
}

using Clock = BatchQueue::Clock;
const Clock::time_point t0 = Clock::time_point{} + 1000s;

// Queues `record` as a recording thread does: at the place the queue gives.
bool queued(BatchQueue& q, std::string_view record) {
  char* at = q.push(record.size());
  if (at == nullptr) return false;
  std::memcpy(at, record.data(), record.size());
  return true;
}

// A stand-in for a span's record, as a recording thread queues it.
std::string named(int i) {
  return "<record " + std::to_string(i) + ">";  // two are past std::string's inner room
}

TEST(BatchQueue, spans_past_the_bound_are_dropped_and_counted) {
  BatchQueue q({3, 2, 5000ms}, t0);
  EXPECT_TRUE(queued(q, named(1)));
  EXPECT_TRUE(queued(q, named(2)));
  char* place = q.push(4);  // a record its writer places itself
  ASSERT_NE(place, nullptr);
  std::memcpy(place, "<r3>", 4);
  EXPECT_FALSE(queued(q, named(4)));
  EXPECT_EQ(q.push(4), nullptr);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.dropped(), 2u);
  EXPECT_EQ(q.take(t0).records, named(1) + named(2));
  EXPECT_EQ(q.take(t0).records, "<r3>");
}

TEST(BatchQueue, a_batch_is_due_when_full_or_when_the_delay_has_passed) {
  BatchQueue q({10, 3, 5000ms}, t0);
  EXPECT_EQ(q.due(), Clock::time_point::max());  // nothing to send
  (void)queued(q, named(1));
  EXPECT_EQ(q.due(), t0 + 5000ms);  // the schedule
  (void)queued(q, named(2));
  (void)queued(q, named(3));
  EXPECT_EQ(q.due(), Clock::time_point::min());  // a full batch: now
  const auto batch = q.take(t0 + 1s);
  EXPECT_EQ(batch.spans, 3u);
  EXPECT_EQ(batch.records, named(1) + named(2) + named(3));  // oldest first
  EXPECT_TRUE(q.empty());
  (void)queued(q, named(4));
  EXPECT_EQ(q.due(), t0 + 1s + 5000ms);  // the schedule restarted at the take
}

TEST(BatchQueue, batches_are_cut_at_the_batch_size_and_their_buffers_used_again) {
  BatchQueue q({10, 2, 5000ms}, t0);
  for (int i = 1; i <= 5; ++i) (void)queued(q, named(i));
  EXPECT_EQ(q.size(), 5u);
  auto first = q.take(t0);
  EXPECT_EQ(first.records, named(1) + named(2));
  const std::size_t room = first.records.capacity();
  const char* buffer = first.records.data();
  q.recycle(std::move(first));
  EXPECT_EQ(q.take(t0).records, named(3) + named(4));
  EXPECT_EQ(q.size(), 1u);
  (void)queued(q, named(6));  // fills the batch holding 5
  (void)queued(q, named(7));  // a new batch: in the recycled buffer
  EXPECT_EQ(q.take(t0).records, named(5) + named(6));
  const auto last = q.take(t0);
  EXPECT_EQ(last.records, named(7));
  EXPECT_EQ(last.records.data(), buffer);
  EXPECT_GE(last.records.capacity(), room);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.take(t0).spans, 0u);  // nothing left: an empty batch
}

TEST(BatchQueue, a_flush_makes_everything_due_until_the_queue_is_empty) {
  BatchQueue q({10, 2, 5000ms}, t0);
  for (int i = 0; i < 3; ++i) (void)queued(q, named(i));
  (void)q.take(t0);  // two taken: one left, not a full batch
  EXPECT_EQ(q.due(), t0 + 5000ms);
  q.flush_requested();
  EXPECT_EQ(q.due(), Clock::time_point::min());
  EXPECT_EQ(q.take(t0).spans, 1u);
  (void)queued(q, named(9));
  EXPECT_EQ(q.due(), t0 + 5000ms);  // the flush ended with the queue empty
}

TEST(BatchQueue, a_batch_is_never_larger_than_the_queue) {
  BatchQueue q({2, 100, 1ms}, t0);
  EXPECT_EQ(q.limits().max_batch, 2u);
}

const auto noon = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37

TEST(ExportRetry, success_is_done_and_a_client_error_is_given_up) {
  const RetryLimits limits;
  EXPECT_EQ(after_attempt(limits, 1, {200, {}}, 0.5, noon).kind, RetryDecision::Kind::exported);
  EXPECT_EQ(after_attempt(limits, 1, {204, {}}, 0.5, noon).kind, RetryDecision::Kind::exported);
  for (int status : {400, 401, 403, 404, 413, 500}) {
    EXPECT_EQ(after_attempt(limits, 1, {status, {}}, 0.5, noon).kind, RetryDecision::Kind::give_up)
        << status;
  }
}

TEST(ExportRetry, throttling_unavailability_and_no_answer_are_retried_with_growing_pauses) {
  const RetryLimits limits;
  for (int status : {0, 429, 502, 503, 504}) {
    const auto d = after_attempt(limits, 1, {status, {}}, 0.5, noon);
    EXPECT_EQ(d.kind, RetryDecision::Kind::retry) << status;
    EXPECT_EQ(d.pause, 1000ms) << status;  // jitter 0.5: the step itself
  }
  EXPECT_EQ(after_attempt(limits, 2, {503, {}}, 0.5, noon).pause, 1500ms);
  EXPECT_EQ(after_attempt(limits, 3, {503, {}}, 0.0, noon).pause, 1800ms);  // 2250 · 0.8
  EXPECT_EQ(after_attempt(limits, 4, {503, {}}, 1.0, noon).pause, 4050ms);  // 3375 · 1.2
  EXPECT_EQ(after_attempt(limits, 5, {503, {}}, 0.5, noon).kind, RetryDecision::Kind::give_up);
}

TEST(ExportRetry, retry_after_sets_the_pause_in_seconds_or_as_a_date_and_is_capped) {
  const RetryLimits limits;
  EXPECT_EQ(after_attempt(limits, 1, {503, "7"}, 0.5, noon).pause, 7000ms);
  EXPECT_EQ(after_attempt(limits, 1, {429, "Sun, 06 Nov 1994 08:49:47 GMT"}, 0.5, noon).pause,
            10000ms);
  EXPECT_EQ(after_attempt(limits, 1, {429, "Sun, 06 Nov 1994 08:00:00 GMT"}, 0.5, noon).pause,
            0ms);  // in the past
  EXPECT_EQ(after_attempt(limits, 1, {503, "86400"}, 0.5, noon).pause, 30000ms);
  EXPECT_EQ(after_attempt(limits, 1, {503, "99999999999999999999999"}, 0.5, noon).pause, 30000ms);
  EXPECT_EQ(after_attempt(limits, 1, {503, "soon"}, 0.5, noon).pause, 1000ms);  // ignored
  EXPECT_FALSE(parse_retry_after("-3", noon));
  EXPECT_EQ(parse_retry_after(" 3 ", noon), 3000ms);
}

TEST(HttpExchange, the_head_is_one_post_with_the_bodys_length_and_no_injected_lines) {
  const std::string head =
      post_head("127.0.0.1:4318", "/v1/traces", {{"Authorization", "Bearer abc\r\nX-Evil: 1"}},
                "application/json", 7, "promptcache/0.1.0");
  EXPECT_EQ(head,
            "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:4318\r\n"
            "Content-Type: application/json\r\nContent-Length: 7\r\n"
            "User-Agent: promptcache/0.1.0\r\nAuthorization: Bearer abcX-Evil: 1\r\n\r\n");
}

// Feeds `bytes` in pieces of `step` (0: all at once).
ResponseParser parsed_response(std::string_view bytes, std::size_t step = 0) {
  ResponseParser p;
  std::size_t at = 0;
  while (at < bytes.size() && !p.done() && !p.failed()) {
    const std::size_t n = step == 0 ? bytes.size() - at : std::min(step, bytes.size() - at);
    at += p.feed(bytes.substr(at, n));
  }
  return p;
}

TEST(HttpExchange, a_sized_response_is_read_at_every_split) {
  const std::string bytes =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  for (std::size_t step = 0; step <= bytes.size(); ++step) {
    const ResponseParser p = parsed_response(bytes, step);
    ASSERT_TRUE(p.done()) << step << " " << p.error();
    EXPECT_EQ(p.response().status, 200);
    EXPECT_EQ(p.response().body, "{}");
    EXPECT_FALSE(p.response().close);
  }
}

TEST(HttpExchange, a_chunked_response_with_extensions_and_trailers_is_read_at_every_split) {
  const std::string bytes =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\n{\"par\r\n10\r\ntialSuccess\":{}}\r\n0\r\nX-Trailer: yes\r\n\r\n";
  for (std::size_t step = 0; step <= bytes.size(); ++step) {
    const ResponseParser p = parsed_response(bytes, step);
    ASSERT_TRUE(p.done()) << step << " " << p.error();
    EXPECT_EQ(p.response().body, R"({"partialSuccess":{}})");
  }
}

TEST(HttpExchange, interim_responses_are_skipped_and_retry_after_is_kept) {
  const ResponseParser p = parsed_response(
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nConnection: keep-alive, Close\r\n"
      "Content-Length: 0\r\n\r\n");
  ASSERT_TRUE(p.done()) << p.error();
  EXPECT_EQ(p.response().status, 503);
  EXPECT_EQ(p.response().retry_after, "2");
  EXPECT_TRUE(p.response().close);
}

TEST(HttpExchange, a_body_without_a_length_runs_to_the_end_of_the_connection) {
  ResponseParser p = parsed_response("HTTP/1.0 200 OK\r\n\r\nhello");
  EXPECT_FALSE(p.done());
  p.end_of_stream();
  ASSERT_TRUE(p.done());
  EXPECT_EQ(p.response().body, "hello");
  EXPECT_TRUE(p.response().close);
  ResponseParser cut = parsed_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel");
  cut.end_of_stream();
  EXPECT_TRUE(cut.failed());
}

TEST(HttpExchange, no_content_has_no_body) {
  const ResponseParser p = parsed_response("HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_TRUE(p.done());
  EXPECT_EQ(p.response().status, 204);
}

TEST(HttpExchange, malformed_and_oversized_responses_fail) {
  for (std::string_view bad : {
           "SMTP ready\r\n\r\n",
           "HTTP/1.1 2000 OK\r\n\r\n",
           "HTTP/1.1 20x OK\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
           "HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
       }) {
    EXPECT_TRUE(parsed_response(bad).failed()) << bad;
  }
  EXPECT_TRUE(parsed_response("HTTP/1.1 200 OK\r\nX: " + std::string(20000, 'a')).failed());
  EXPECT_TRUE(parsed_response("HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n" +
                              std::string(1100000, 'a'))
                  .failed());
}

TEST(HttpExchange, only_the_first_kilobytes_of_a_body_are_kept) {
  const ResponseParser p =
      parsed_response("HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + std::string(10000, 'b'));
  ASSERT_TRUE(p.done());
  EXPECT_EQ(p.response().body.size(), ResponseParser::kept_body);
}

OtlpConfig from(std::map<std::string, std::string> env) {
  return OtlpConfig::from_env([env](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

std::string config_error(std::map<std::string, std::string> env) {
  try {
    (void)from(std::move(env));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(OtlpConfig, nothing_is_exported_unless_an_endpoint_is_set) {
  EXPECT_FALSE(from({}).enabled);
  EXPECT_FALSE(from({{"OTEL_SERVICE_NAME", "x"}}).enabled);
  const OtlpConfig c = from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"}});
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.endpoint, "http://127.0.0.1:4318/v1/traces");
  EXPECT_EQ(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/base/"}}).endpoint,
            "http://h:4318/base/v1/traces");
  EXPECT_EQ(from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"},
                  {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://b:2/custom"}})
                .endpoint,
            "https://b:2/custom");  // as given
  EXPECT_FALSE(
      from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"}, {"OTEL_SDK_DISABLED", "true"}}).enabled);
  EXPECT_FALSE(
      from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"}, {"OTEL_TRACES_EXPORTER", "none"}})
          .enabled);
}

TEST(OtlpConfig, every_variable_is_read_and_checked) {
  const OtlpConfig c =
      from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"},
            {"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"},
            {"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
            {"OTEL_TRACES_SAMPLER_ARG", "0.25"},
            {"OTEL_BSP_SCHEDULE_DELAY", "200"},
            {"OTEL_BSP_EXPORT_TIMEOUT", "3000"},
            {"OTEL_BSP_MAX_QUEUE_SIZE", "100"},
            {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"},
            {"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,team=cache%20ops"},
            {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}});
  EXPECT_EQ(c.timeout, 2500ms);
  EXPECT_EQ(c.protocol, OtlpProtocol::http_json);
  EXPECT_EQ(from({}).protocol, OtlpProtocol::http_protobuf);  // the standard's default
  EXPECT_EQ(from({{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                  {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"}})
                .protocol,
            OtlpProtocol::http_protobuf);  // the traces' own variable wins
  EXPECT_EQ(c.sampler.describe(), "parentbased_traceidratio{0.25}");
  EXPECT_EQ(c.schedule_delay, 200ms);
  EXPECT_EQ(c.export_timeout, 3000ms);
  EXPECT_EQ(c.max_queue_size, 100u);
  EXPECT_EQ(c.max_export_batch_size, 10u);
  EXPECT_EQ(c.service_name, "from-attrs");
  ASSERT_EQ(c.resource_attributes.size(), 2u);
  EXPECT_EQ(c.resource_attributes[1].second, "cache ops");
  EXPECT_EQ(from({{"OTEL_SERVICE_NAME", "named"}, {"OTEL_RESOURCE_ATTRIBUTES", "service.name=x"}})
                .service_name,
            "named");  // OTEL_SERVICE_NAME wins
  EXPECT_EQ(from({}).service_name, "promptcache");
}

TEST(OtlpConfig, a_bad_value_is_an_error_naming_the_variable) {
  EXPECT_NE(config_error({{"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://a"}})
                .find("OTEL_EXPORTER_OTLP_ENDPOINT:"),
            std::string::npos);
  EXPECT_NE(
      config_error({{"OTEL_EXPORTER_OTLP_TIMEOUT", "soon"}}).find("OTEL_EXPORTER_OTLP_TIMEOUT:"),
      std::string::npos);
  EXPECT_NE(config_error({{"OTEL_TRACES_SAMPLER", "often"}}).find("OTEL_TRACES_SAMPLER:"),
            std::string::npos);
  EXPECT_NE(config_error({{"OTEL_BSP_MAX_QUEUE_SIZE", "0"}}).find("OTEL_BSP_MAX_QUEUE_SIZE:"),
            std::string::npos);
  EXPECT_NE(
      config_error({{"OTEL_BSP_MAX_QUEUE_SIZE", "10"}, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20"}})
          .find("OTEL_BSP_MAX_EXPORT_BATCH_SIZE:"),
      std::string::npos);
  EXPECT_NE(
      config_error({{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}}).find("OTEL_EXPORTER_OTLP_PROTOCOL:"),
      std::string::npos);
  for (const char* endpoint :
       {"http://collector:0", "http://collector:70000", "http://collector:4318x", "http://:4318"}) {
    const std::string error = config_error({{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint}});
    EXPECT_NE(error.find("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:"), std::string::npos) << endpoint;
    EXPECT_EQ(error.find("collector"), std::string::npos) << error;  // the URL not repeated
  }
  EXPECT_NE(config_error({{"OTEL_SDK_DISABLED", "maybe"}}).find("OTEL_SDK_DISABLED:"),
            std::string::npos);
  EXPECT_NE(
      config_error({{"OTEL_RESOURCE_ATTRIBUTES", "novalue"}}).find("OTEL_RESOURCE_ATTRIBUTES:"),
      std::string::npos);
}

TEST(OtlpConfig, an_endpoint_is_taken_apart_with_its_default_port) {
  const HttpTarget plain = parse_http_target("http://collector.example:4318/v1/traces?x=1");
  ASSERT_TRUE(plain.valid);
  EXPECT_FALSE(plain.tls);
  EXPECT_EQ(plain.host, "collector.example");
  EXPECT_EQ(plain.port, 4318);
  EXPECT_EQ(plain.path, "/v1/traces?x=1");
  EXPECT_EQ(plain.host_header, "collector.example:4318");
  const HttpTarget tls = parse_http_target("https://[::1]/");
  ASSERT_TRUE(tls.valid);
  EXPECT_TRUE(tls.tls);
  EXPECT_EQ(tls.host, "::1");
  EXPECT_EQ(tls.port, 443);
  EXPECT_EQ(parse_http_target("http://collector").port, 80);
  EXPECT_EQ(parse_http_target("http://collector").path, "/");
  EXPECT_EQ(parse_http_target("http://collector:/").port, 80);  // an empty port: the default
  EXPECT_FALSE(parse_http_target("http://collector:65536").valid);
  EXPECT_FALSE(parse_http_target("http://collector:4318x").valid);
  EXPECT_FALSE(parse_http_target("ftp://collector").valid);
}

TEST(OtlpConfig, headers_are_secrets_never_repeated_or_shown) {
  const std::string token = "Bearer s3cr3t-token-value";
  const OtlpConfig c =
      from({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"},
            {"OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cr3t-token-value,x-team=a"},
            {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-team=b"}});
  ASSERT_EQ(c.headers.size(), 2u);
  EXPECT_EQ(c.headers[0].second, token);
  EXPECT_EQ(c.headers[1].second, "b");  // the traces variable wins per name
  EXPECT_EQ(c.describe().find("s3cr3t"), std::string::npos);
  EXPECT_NE(c.describe().find("authorization"), std::string::npos);
  EXPECT_EQ(redact("sent " + token), "sent ***");  // registered for every log line
  const std::string error =
      config_error({{"OTEL_EXPORTER_OTLP_HEADERS", "authorization=ok,Bearer-other-s3cret"}});
  EXPECT_NE(error.find("OTEL_EXPORTER_OTLP_HEADERS: entry 2"), std::string::npos) << error;
  EXPECT_EQ(error.find("s3cret"), std::string::npos) << error;
}

}  // namespace
}  // namespace promptcache::telemetry
