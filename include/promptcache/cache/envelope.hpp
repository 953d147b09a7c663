// The one value codec: every cached value is JSON text in an envelope that records when it was
// written and when it goes soft-stale, compressed with zstd above a size threshold. Plain JSON
// (as the seed's Python service writes it) decodes too, so both can share one Redis.
//
// Stored layout (little endian):
//   0  "\0PC"  magic: a NUL never starts JSON, so a legacy value cannot look like an envelope
//   3  u8      format (2; format 1, without the item version, still decodes)
//   4  u8      flags: bit 0 zstd-compressed payload; bit 1 "not found" marker (no payload)
//   5  u8      codec: 1 = JSON
//   6  u64     created, Unix milliseconds
//  14  u64     soft expiry, Unix milliseconds; 0 = none
//  22  u64     the item's version (0: unversioned); the Redis write script reads these bytes
//  30  …       payload
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace promptcache::cache {

using SystemClock = std::chrono::system_clock;

struct EnvelopeMeta {
  SystemClock::time_point created{};
  SystemClock::time_point soft_expiry{};  // epoch (0): none
  // The negative-cache marker: the source of truth said "not found". Never confused with a
  // value, not even an empty one: it has no payload and a flag of its own.
  bool absent = false;
  // The source of truth's version of the item (see store::Write::version); 0: unversioned.
  std::uint64_t version = 0;
};

struct CodecOptions {
  std::size_t compress_threshold = 1024;  // payloads above this many bytes are compressed
  int zstd_level = 1;
  std::size_t max_decompressed = 64 * 1024 * 1024;  // a larger frame is corrupt, not allocated
};

// Wraps JSON text for storage.
[[nodiscard]] std::string encode_value(std::string_view json, const EnvelopeMeta& meta,
                                       const CodecOptions& options);

struct DecodedValue {
  std::string_view json;  // into the stored bytes, or into the caller's scratch buffer
  EnvelopeMeta meta;
  bool legacy = false;  // plain JSON without an envelope
};

// Unwraps a stored value. `scratch` holds decompressed bytes and must outlive the result. An
// unknown version, a truncated header, a bad frame or an empty value is error::corrupt_value;
// whether the JSON itself parses is the caller's check.
[[nodiscard]] boost::system::result<DecodedValue> decode_value(std::string_view stored,
                                                               const CodecOptions& options,
                                                               std::string& scratch);

}  // namespace promptcache::cache
