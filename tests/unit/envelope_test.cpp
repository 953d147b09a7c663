// Unit tests for promptcache::cache's value envelope (envelope.hpp): round trips below and above
// the compression threshold, metadata to the millisecond, legacy plain JSON from the seed, and
// every kind of corrupt stored value giving error::corrupt_value — never a crash.
#include "promptcache/cache/envelope.hpp"
#include "promptcache/store/store.hpp"

#include <gtest/gtest.h>
#include <zstd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "promptcache/error.hpp"

namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using namespace std::string_view_literals;
using promptcache::cache::CodecOptions;
using promptcache::cache::decode_value;
using promptcache::cache::DecodedValue;
using promptcache::cache::encode_value;
using promptcache::cache::EnvelopeMeta;
using promptcache::cache::SystemClock;

constexpr std::size_t kHeader = 30;

SystemClock::time_point at_ms(std::int64_t ms) {
  return SystemClock::time_point(std::chrono::milliseconds(ms));
}

EnvelopeMeta sample_meta() {
  return {at_ms(1'700'000'000'123), at_ms(1'700'000'030'130)};
}

// A realistic analysis result (docs/benchmarks.md) of about `bytes` bytes of JSON.
std::string analysis_json(std::size_t bytes) {
  std::string json = R"({"score":0.87,"clarity":0.91,"tokens":412,"suggestions":[)";
  for (int i = 0; json.size() + 64 < bytes; ++i) {
    if (i > 0) json += ',';
    json += "\"Make the instruction more specific, step " + std::to_string(i) + "\"";
  }
  json += "]}";
  return json;
}

// JSON that zstd cannot shrink much: a string of pseudo-random hex digits.
std::string incompressible_json(std::size_t bytes) {
  std::string json = "\"";
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  constexpr char hex[] = "0123456789abcdef";
  while (json.size() + 1 < bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    json += hex[x & 15];
  }
  json += '"';
  return json;
}

std::string u64_le(std::uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::uint64_t read_u64_le(std::string_view in) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string header(std::uint8_t version, std::uint8_t flags, std::uint8_t codec,
                   std::uint64_t created_ms = 0, std::uint64_t soft_ms = 0) {
  std::string h("\0PC"s);
  h += static_cast<char>(version);
  h += static_cast<char>(flags);
  h += static_cast<char>(codec);
  h += u64_le(created_ms);
  h += u64_le(soft_ms);
  if (version >= 2) h += u64_le(0);  // the item version (format 2)
  return h;
}

using Result = boost::system::result<DecodedValue>;

bool is_corrupt(const Result& r) {
  return !r.has_value() &&
         r.error() == promptcache::make_error_code(promptcache::error::corrupt_value);
}

std::string describe(const Result& r) {
  if (r.has_value()) {
    return "decoded " + std::string(r->legacy ? "legacy" : "envelope") + " value of " +
           std::to_string(r->json.size()) + " bytes";
  }
  return "error " + r.error().message();
}

// Decodes from an exactly sized heap copy, so that AddressSanitizer sees any read past the end.
struct ExactDecode {
  std::unique_ptr<char[]> bytes;
  std::string scratch;
  Result result{promptcache::make_error_code(promptcache::error::ok)};

  ExactDecode(std::string_view stored, const CodecOptions& options)
      : bytes(std::make_unique<char[]>(stored.size())) {
    if (!stored.empty()) std::memcpy(bytes.get(), stored.data(), stored.size());
    result = decode_value(std::string_view(bytes.get(), stored.size()), options, scratch);
  }
};

// --- round trips -------------------------------------------------------------------------

TEST(Envelope, small_value_round_trips_uncompressed) {
  const CodecOptions options;
  const std::string json = R"({"score":0.5,"suggestions":["a","b"]})";
  const std::string stored = encode_value(json, sample_meta(), options);
  EXPECT_EQ(stored.size(), kHeader + json.size());
  EXPECT_EQ(stored[4] & 1, 0) << "below the threshold nothing is compressed";
  EXPECT_EQ(stored.substr(kHeader), json);
  std::string scratch;
  const auto r = decode_value(stored, options, scratch);
  ASSERT_TRUE(r.has_value()) << describe(r);
  EXPECT_EQ(r->json, json);
  EXPECT_FALSE(r->legacy);
  EXPECT_EQ(r->meta.created, sample_meta().created);
  EXPECT_EQ(r->meta.soft_expiry, sample_meta().soft_expiry);
}

TEST(Envelope, header_has_the_documented_layout) {
  const std::string stored = encode_value("[1]", sample_meta(), CodecOptions{});
  ASSERT_GE(stored.size(), kHeader);
  EXPECT_EQ(stored.substr(0, 3), "\0PC"s);
  EXPECT_EQ(static_cast<unsigned char>(stored[3]), 2u) << "format";
  EXPECT_EQ(static_cast<unsigned char>(stored[4]), 0u) << "flags";
  EXPECT_EQ(static_cast<unsigned char>(stored[5]), 1u) << "codec JSON";
  EXPECT_EQ(read_u64_le(std::string_view(stored).substr(6, 8)), 1'700'000'000'123u);
  EXPECT_EQ(read_u64_le(std::string_view(stored).substr(14, 8)), 1'700'000'030'130u);
  EXPECT_EQ(read_u64_le(std::string_view(stored).substr(22, 8)), 0u) << "unversioned";
  EXPECT_EQ(stored.substr(kHeader), "[1]");
}

TEST(Envelope, item_version_is_stored_at_bytes_22_to_29_where_the_write_script_reads_it) {
  EnvelopeMeta meta = sample_meta();
  meta.version = 0x0102030405060708ull;
  const std::string stored = encode_value("[1]", meta, CodecOptions{});
  EXPECT_EQ(read_u64_le(std::string_view(stored).substr(22, 8)), 0x0102030405060708ull);
  EXPECT_EQ(promptcache::store::stored_version(stored), 0x0102030405060708ull);
  std::string scratch;
  const auto r = decode_value(stored, CodecOptions{}, scratch);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->meta.version, 0x0102030405060708ull);
  EXPECT_EQ(r->json, "[1]");
  EXPECT_EQ(promptcache::store::stored_version("[1]"), 0u) << "a legacy value has no version";
}

TEST(Envelope, format_1_envelope_without_a_version_still_decodes_as_unversioned) {
  // The format written before versions: 22 header bytes, format byte 1.
  std::string old = "\0PC"s;
  old += '\1';
  old += '\0';
  old += '\1';
  for (int i = 0; i < 16; ++i) old += '\0';
  old += "[7]";
  std::string scratch;
  const auto r = decode_value(old, CodecOptions{}, scratch);
  ASSERT_TRUE(r.has_value()) << describe(r);
  EXPECT_EQ(r->json, "[7]");
  EXPECT_EQ(r->meta.version, 0u);
  EXPECT_EQ(promptcache::store::stored_version(old), 0u);
}

TEST(Envelope, large_value_is_stored_compressed_smaller_and_round_trips) {
  const CodecOptions options;
  const std::string json = analysis_json(20 * 1024);
  ASSERT_GT(json.size(), options.compress_threshold);
  const std::string stored = encode_value(json, sample_meta(), options);
  EXPECT_LT(stored.size(), json.size());
  EXPECT_EQ(static_cast<unsigned char>(stored[4]) & 1u, 1u) << "compression flag in byte 4";
  std::string scratch;
  const auto r = decode_value(stored, options, scratch);
  ASSERT_TRUE(r.has_value()) << describe(r);
  EXPECT_EQ(r->json, json);
  EXPECT_FALSE(r->legacy);
  EXPECT_EQ(r->meta.created, sample_meta().created);
  EXPECT_EQ(r->meta.soft_expiry, sample_meta().soft_expiry);
}

TEST(Envelope, value_of_exactly_the_threshold_is_not_compressed_and_one_more_byte_is) {
  CodecOptions options;
  options.compress_threshold = 100;
  const std::string at = analysis_json(200).substr(0, 100);
  const std::string above = analysis_json(200).substr(0, 101);
  const std::string stored_at = encode_value(at, {}, options);
  const std::string stored_above = encode_value(above, {}, options);
  EXPECT_EQ(stored_at[4] & 1, 0);
  EXPECT_EQ(stored_above[4] & 1, 1);
  std::string scratch;
  const auto r_at = decode_value(stored_at, options, scratch);
  ASSERT_TRUE(r_at.has_value()) << describe(r_at);
  EXPECT_EQ(r_at->json, at);
  const auto r_above = decode_value(stored_above, options, scratch);
  ASSERT_TRUE(r_above.has_value()) << describe(r_above);
  EXPECT_EQ(r_above->json, above);
}

TEST(Envelope, incompressible_large_value_round_trips) {
  const CodecOptions options;
  const std::string json = incompressible_json(100 * 1024);
  const std::string stored = encode_value(json, sample_meta(), options);
  EXPECT_EQ(stored[4] & 1, 1);
  std::string scratch;
  const auto r = decode_value(stored, options, scratch);
  ASSERT_TRUE(r.has_value()) << describe(r);
  EXPECT_EQ(r->json, json);
}

TEST(Envelope, round_trips_with_other_thresholds_and_levels) {
  const std::string json = analysis_json(5000);
  for (std::size_t threshold : {std::size_t{0}, std::size_t{1}, std::size_t{4999}, json.size()}) {
    for (int level : {1, 3, 19}) {
      CodecOptions options;
      options.compress_threshold = threshold;
      options.zstd_level = level;
      const std::string stored = encode_value(json, sample_meta(), options);
      std::string scratch;
      const auto r = decode_value(stored, options, scratch);
      ASSERT_TRUE(r.has_value()) << describe(r) << " threshold " << threshold;
      EXPECT_EQ(r->json, json) << "threshold " << threshold << " level " << level;
    }
  }
}

TEST(Envelope, scratch_buffer_is_reused_across_decodes) {
  const CodecOptions options;
  const std::string big = analysis_json(8000);
  const std::string bigger = analysis_json(16000);
  std::string scratch = "left over";
  const auto r1 = decode_value(encode_value(bigger, {}, options), options, scratch);
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(r1->json, bigger);
  const std::string stored = encode_value(big, {}, options);
  const auto r2 = decode_value(stored, options, scratch);
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->json, big);
}

TEST(Envelope, empty_json_string_payload_round_trips_and_is_not_absent) {
  // Seed defect 4: `if cached_data:` treated an empty value as a miss.
  const CodecOptions options;
  const std::string stored = encode_value(R"("")", sample_meta(), options);
  std::string scratch;
  const auto r = decode_value(stored, options, scratch);
  ASSERT_TRUE(r.has_value()) << describe(r);
  EXPECT_EQ(r->json, R"("")");
  EXPECT_FALSE(r->legacy);
  EXPECT_EQ(r->meta.created, sample_meta().created);
}

TEST(Envelope, not_found_marker_round_trips_with_no_payload_and_differs_from_every_value) {
  CodecOptions options;
  options.compress_threshold = 0;  // even "compress everything" leaves the marker bare
  EnvelopeMeta meta = sample_meta();
  meta.absent = true;
  const std::string marker = encode_value("ignored", meta, options);
  EXPECT_EQ(marker.size(), kHeader);
  std::string scratch;
  const auto r = decode_value(marker, options, scratch);
  ASSERT_TRUE(r.has_value()) << describe(r);
  EXPECT_TRUE(r->meta.absent);
  EXPECT_TRUE(r->json.empty());
  EXPECT_EQ(r->meta.soft_expiry, meta.soft_expiry);
  for (std::string_view json : {R"("")", "null", "{}", "[]", "0", "false"}) {
    const std::string value = encode_value(json, sample_meta(), options);
    EXPECT_NE(value, marker) << json;
    const auto v = decode_value(value, options, scratch);
    ASSERT_TRUE(v.has_value()) << json;
    EXPECT_FALSE(v->meta.absent) << json;
  }
}

TEST(Envelope, empty_and_falsy_json_values_round_trip) {
  const CodecOptions options;
  for (std::string_view json : {R"("")", "{}", "[]", "0", "false", "null", ""}) {
    const std::string stored = encode_value(json, {}, options);
    std::string scratch;
    const auto r = decode_value(stored, options, scratch);
    ASSERT_TRUE(r.has_value()) << describe(r) << " for '" << json << "'";
    EXPECT_EQ(r->json, json);
    EXPECT_FALSE(r->legacy);
  }
}

// --- metadata ----------------------------------------------------------------------------

TEST(Envelope, created_and_soft_expiry_are_preserved_to_the_millisecond) {
  const CodecOptions options;
  for (const std::string& json : {std::string("{}"), analysis_json(4096)}) {
    const EnvelopeMeta meta{at_ms(1'712'345'678'901), at_ms(1'712'345'678'901 + 299'999)};
    std::string scratch;
    const auto r = decode_value(encode_value(json, meta, options), options, scratch);
    ASSERT_TRUE(r.has_value()) << describe(r);
    EXPECT_EQ(r->meta.created, meta.created);
    EXPECT_EQ(r->meta.soft_expiry, meta.soft_expiry);
  }
}

TEST(Envelope, sub_millisecond_times_are_truncated_to_the_millisecond) {
  const auto now = SystemClock::now();
  const EnvelopeMeta meta{now, now + 1500us};
  std::string scratch;
  const auto r = decode_value(encode_value("{}", meta, {}), {}, scratch);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->meta.created, std::chrono::floor<std::chrono::milliseconds>(meta.created));
  EXPECT_EQ(r->meta.soft_expiry, std::chrono::floor<std::chrono::milliseconds>(meta.soft_expiry));
}

TEST(Envelope, no_soft_expiry_stays_the_epoch) {
  std::string scratch;
  const auto r = decode_value(encode_value("{}", {at_ms(5), {}}, {}), {}, scratch);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->meta.created, at_ms(5));
  EXPECT_EQ(r->meta.soft_expiry, SystemClock::time_point{});
}

TEST(Envelope, header_timestamps_beyond_the_clocks_range_never_decode_to_a_wrapped_time) {
  // A u64 millisecond count larger than system_clock can hold (after 2262, or with the top bit
  // set) only comes from a corrupt or foreign writer. It must be rejected as corrupt_value or
  // decoded to a time no earlier than what was written (or, for the soft expiry, to "none") —
  // never wrapped around to an earlier time.
  const std::vector<std::uint64_t> huge = {
      9'300'000'000'000ull,  // ms beyond system_clock's nanosecond range (~9.22e12 ms)
      std::uint64_t{1} << 62,
      std::uint64_t{1} << 63,
      std::numeric_limits<std::uint64_t>::max(),
  };
  for (std::uint64_t ms : huge) {
    for (bool in_created : {true, false}) {
      const std::string stored =
          header(2, 0, 1, in_created ? ms : 1000, in_created ? 0 : ms) + "{}";
      std::string scratch;
      const auto r = decode_value(stored, {}, scratch);
      if (is_corrupt(r)) continue;
      ASSERT_TRUE(r.has_value()) << describe(r);
      const auto ns = [](SystemClock::time_point t) { return t.time_since_epoch().count(); };
      const std::int64_t created_ns = ns(r->meta.created);
      const std::int64_t soft_ns = ns(r->meta.soft_expiry);
      if (in_created) {
        EXPECT_GE(created_ns, ns(at_ms(1000)))
            << "header created = " << ms << " ms decoded to " << created_ns << " ns since epoch";
      } else {
        EXPECT_TRUE(soft_ns == 0 || soft_ns >= created_ns)
            << "header soft expiry = " << ms << " ms decoded to " << soft_ns
            << " ns since epoch (0 means none), before created = " << created_ns << " ns";
      }
    }
  }
}

// --- legacy plain JSON (the seed's values) -------------------------------------------------

TEST(Envelope, legacy_plain_json_decodes_as_legacy_with_the_input_as_json) {
  const CodecOptions options;
  for (std::string_view json : {R"({"a":1})", "[1]", R"("s")", R"(  {"x":2})", "123", "true",
                                "null", "false", "-1.5", "\t\n[ ]", "\r\n{}"}) {
    std::string scratch;
    const auto r = decode_value(json, options, scratch);
    ASSERT_TRUE(r.has_value()) << describe(r) << " for '" << json << "'";
    EXPECT_TRUE(r->legacy) << json;
    EXPECT_EQ(r->json, json);
    EXPECT_EQ(r->meta.created, SystemClock::time_point{});
    EXPECT_EQ(r->meta.soft_expiry, SystemClock::time_point{});
  }
}

TEST(Envelope, large_legacy_json_is_not_decompressed_or_altered) {
  const std::string json = analysis_json(50 * 1024);
  std::string scratch;
  const auto r = decode_value(json, CodecOptions{}, scratch);
  ASSERT_TRUE(r.has_value()) << describe(r);
  EXPECT_TRUE(r->legacy);
  EXPECT_EQ(r->json, json);
}

// --- corrupt values ----------------------------------------------------------------------

TEST(Envelope, empty_stored_value_is_corrupt) {
  std::string scratch;
  EXPECT_TRUE(is_corrupt(decode_value("", {}, scratch)));
}

TEST(Envelope, nul_prefixed_value_shorter_than_the_header_is_corrupt) {
  const std::string full = header(2, 0, 1, 1, 2);
  for (std::size_t n = 1; n < kHeader; ++n) {
    const ExactDecode d(std::string_view(full).substr(0, n), {});
    EXPECT_TRUE(is_corrupt(d.result)) << "length " << n << ": " << describe(d.result);
  }
  for (std::string_view s :
       {"\0"sv, "\0\0\0\0"sv, "\0PC"sv, "\0PC\x01\x00\x01"sv, "\0PC\x02\x00\x01"sv}) {
    const ExactDecode d(s, {});
    EXPECT_TRUE(is_corrupt(d.result)) << describe(d.result);
  }
}

TEST(Envelope, wrong_magic_is_corrupt) {
  for (std::string magic : {"\0PD"s, "\0pc"s, "\0\0\0"s, "\0CP"s, "\0P\0"s}) {
    std::string stored = header(2, 0, 1) + "{}";
    stored.replace(0, 3, magic);
    const ExactDecode d(stored, {});
    EXPECT_TRUE(is_corrupt(d.result)) << describe(d.result);
  }
}

TEST(Envelope, unknown_version_is_corrupt) {
  for (int version : {0, 3, 0x7f, 0x80, 0xff}) {
    const ExactDecode d(header(static_cast<std::uint8_t>(version), 0, 1) + "{}", {});
    EXPECT_TRUE(is_corrupt(d.result)) << "version " << version << ": " << describe(d.result);
  }
}

TEST(Envelope, unknown_codec_is_corrupt) {
  for (int codec : {0, 2, 3, 0x80, 0xff}) {
    const ExactDecode d(header(2, 0, static_cast<std::uint8_t>(codec)) + "{}", {});
    EXPECT_TRUE(is_corrupt(d.result)) << "codec " << codec << ": " << describe(d.result);
  }
}

TEST(Envelope, unknown_flag_bits_are_corrupt) {
  for (int flags = 2; flags < 256; ++flags) {
    const ExactDecode d(header(2, static_cast<std::uint8_t>(flags), 1) + "{}", {});
    EXPECT_TRUE(is_corrupt(d.result)) << "flags " << flags << ": " << describe(d.result);
  }
}

TEST(Envelope, compressed_flag_with_garbage_payload_is_corrupt) {
  for (std::string payload :
       {""s, "{}"s, R"({"a":1})"s, "\x28\xb5\x2f"s, "\x28\xb5\x2f\xfd"s, std::string(64, '\xff'),
        std::string(1000, 'a'), "\x28\xb5\x2f\xfd\xff\xff\xff\xff\xff\xff\xff\xff"s}) {
    const ExactDecode d(header(2, 1, 1) + payload, {});
    EXPECT_TRUE(is_corrupt(d.result))
        << "payload of " << payload.size() << " bytes: " << describe(d.result);
  }
}

TEST(Envelope, zstd_frame_declaring_more_than_max_decompressed_is_corrupt) {
  CodecOptions small;
  small.compress_threshold = 16;
  small.max_decompressed = 100;
  const std::string json = analysis_json(10'000);
  const std::string stored = encode_value(json, sample_meta(), small);
  ASSERT_EQ(stored[4] & 1, 1);
  ASSERT_EQ(ZSTD_getFrameContentSize(stored.data() + kHeader, stored.size() - kHeader),
            json.size());

  const ExactDecode rejected(stored, small);
  EXPECT_TRUE(is_corrupt(rejected.result)) << describe(rejected.result);

  // The frame itself is sound: a limit of exactly its size accepts it.
  CodecOptions exact = small;
  exact.max_decompressed = json.size();
  const ExactDecode accepted(stored, exact);
  ASSERT_TRUE(accepted.result.has_value()) << describe(accepted.result);
  EXPECT_EQ(accepted.result->json, json);

  CodecOptions one_less = small;
  one_less.max_decompressed = json.size() - 1;
  const ExactDecode just_over(stored, one_less);
  EXPECT_TRUE(is_corrupt(just_over.result)) << describe(just_over.result);
}

TEST(Envelope, zstd_frame_without_a_declared_size_is_corrupt) {
  const std::string json = analysis_json(4096);
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  ASSERT_NE(cctx, nullptr);
  ASSERT_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 0)));
  std::string frame(ZSTD_compressBound(json.size()), '\0');
  const std::size_t n =
      ZSTD_compress2(cctx.get(), frame.data(), frame.size(), json.data(), json.size());
  ASSERT_FALSE(ZSTD_isError(n));
  frame.resize(n);
  ASSERT_EQ(ZSTD_getFrameContentSize(frame.data(), frame.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  const ExactDecode d(header(2, 1, 1) + frame, {});
  EXPECT_TRUE(is_corrupt(d.result)) << describe(d.result);
}

TEST(Envelope, truncated_zstd_frame_is_corrupt) {
  const CodecOptions options;
  const std::string stored = encode_value(analysis_json(20'000), sample_meta(), options);
  ASSERT_EQ(stored[4] & 1, 1);
  for (std::size_t cut : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{10},
                          (stored.size() - kHeader) / 2}) {
    const ExactDecode d(std::string_view(stored).substr(0, stored.size() - cut), options);
    EXPECT_TRUE(is_corrupt(d.result)) << "cut " << cut << ": " << describe(d.result);
  }
}

TEST(Envelope, zstd_frame_followed_by_trailing_garbage_is_corrupt) {
  const CodecOptions options;
  const std::string stored = encode_value(analysis_json(20'000), sample_meta(), options);
  for (std::string tail : {"x"s, "\0"s, "garbage"s, std::string(100, '\x5a')}) {
    const ExactDecode d(stored + tail, options);
    EXPECT_TRUE(is_corrupt(d.result)) << "tail of " << tail.size() << ": " << describe(d.result);
  }
}

TEST(Envelope, zstd_frame_with_a_flipped_payload_byte_is_corrupt_or_decodes_without_crashing) {
  // Without a checksum zstd may not notice every flip; what matters is no crash or overread.
  const CodecOptions options;
  const std::string json = analysis_json(6000);
  const std::string stored = encode_value(json, sample_meta(), options);
  for (std::size_t i = kHeader; i < stored.size(); ++i) {
    std::string bad = stored;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    const ExactDecode d(bad, options);
    if (!d.result.has_value()) {
      EXPECT_TRUE(is_corrupt(d.result)) << "byte " << i << ": " << describe(d.result);
    } else {
      EXPECT_LE(d.result->json.size(), options.max_decompressed);
    }
  }
}

TEST(Envelope, flipping_any_bit_of_magic_version_flags_or_codec_is_detected) {
  const std::string stored = encode_value("{}", sample_meta(), {});
  for (std::size_t byte = 1; byte < 6; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      if (byte == 4 && bit == 0) continue;  // the compression flag itself: tested above
      std::string bad = stored;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      const ExactDecode d(bad, {});
      EXPECT_TRUE(is_corrupt(d.result))
          << "byte " << byte << " bit " << bit << ": " << describe(d.result);
    }
  }
}

TEST(Envelope, value_starting_with_a_byte_that_cannot_start_json_is_corrupt) {
  for (std::string s :
       {"x"s, "xyz"s, "\x80"s, "\x80{}"s, "\xef\xbb\xbf{}"s, "\x01PC"s, "N"s, "T"s, "}"s, "]"s,
        ":"s, ","s, "+1"s, ".5"s, "'s'"s, "\x7f"s, "\xff\xfe"s, "\x1f\x8b"s, "\x28\xb5\x2f\xfd"s}) {
    const ExactDecode d(s, {});
    EXPECT_TRUE(is_corrupt(d.result))
        << "first byte " << static_cast<int>(static_cast<unsigned char>(s[0])) << ": "
        << describe(d.result);
  }
}

TEST(Envelope, every_first_byte_is_legacy_json_or_corrupt_never_a_crash) {
  const std::string_view json_starts = "{[\"-tfn \t\r\n0123456789";
  for (int b = 1; b < 256; ++b) {
    const std::string s{static_cast<char>(b), '1'};
    const ExactDecode d(s, {});
    if (json_starts.find(static_cast<char>(b)) != std::string_view::npos) {
      ASSERT_TRUE(d.result.has_value()) << "byte " << b << ": " << describe(d.result);
      EXPECT_TRUE(d.result->legacy);
      EXPECT_EQ(d.result->json, s);
    } else {
      EXPECT_TRUE(is_corrupt(d.result)) << "byte " << b << ": " << describe(d.result);
    }
  }
}

// --- prefixes of valid envelopes ---------------------------------------------------------

TEST(Envelope, every_prefix_of_a_compressed_envelope_is_corrupt_and_the_whole_decodes) {
  const CodecOptions options;
  const std::string json = analysis_json(4096);
  const std::string stored = encode_value(json, sample_meta(), options);
  ASSERT_EQ(stored[4] & 1, 1);
  for (std::size_t n = 0; n < stored.size(); ++n) {
    const ExactDecode d(std::string_view(stored).substr(0, n), options);
    EXPECT_TRUE(is_corrupt(d.result)) << "prefix " << n << ": " << describe(d.result);
  }
  const ExactDecode whole(stored, options);
  ASSERT_TRUE(whole.result.has_value()) << describe(whole.result);
  EXPECT_EQ(whole.result->json, json);
  EXPECT_EQ(whole.result->meta.created, sample_meta().created);
}

TEST(Envelope, sampled_prefixes_of_a_multi_block_compressed_envelope_are_corrupt) {
  // 300 KiB of incompressible JSON spans several zstd blocks (128 KiB each).
  const CodecOptions options;
  const std::string json = incompressible_json(300 * 1024);
  const std::string stored = encode_value(json, sample_meta(), options);
  ASSERT_EQ(stored[4] & 1, 1);
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n < 64 && n < stored.size(); ++n) lengths.push_back(n);
  for (std::size_t n = 64; n < stored.size(); n += 4099) lengths.push_back(n);
  for (std::size_t n = stored.size() - 32; n < stored.size(); ++n) lengths.push_back(n);
  for (std::size_t n : lengths) {
    const ExactDecode d(std::string_view(stored).substr(0, n), options);
    EXPECT_TRUE(is_corrupt(d.result)) << "prefix " << n << ": " << describe(d.result);
  }
  const ExactDecode whole(stored, options);
  ASSERT_TRUE(whole.result.has_value()) << describe(whole.result);
  EXPECT_EQ(whole.result->json, json);
}

TEST(Envelope, every_prefix_of_an_uncompressed_envelope_is_corrupt_or_a_payload_prefix) {
  const CodecOptions options;
  const std::string json = R"({"score":0.5,"suggestions":["a","b"]})";
  const std::string stored = encode_value(json, sample_meta(), options);
  for (std::size_t n = 0; n <= stored.size(); ++n) {
    const ExactDecode d(std::string_view(stored).substr(0, n), options);
    if (n < kHeader) {
      EXPECT_TRUE(is_corrupt(d.result)) << "prefix " << n << ": " << describe(d.result);
    } else {
      ASSERT_TRUE(d.result.has_value()) << "prefix " << n << ": " << describe(d.result);
      EXPECT_EQ(d.result->json, json.substr(0, n - kHeader));
    }
  }
}

}  // namespace
