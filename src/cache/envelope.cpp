#include "promptcache/cache/envelope.hpp"

#include <cstring>

#include <zstd.h>

#include "promptcache/error.hpp"

namespace promptcache::cache {
namespace {

constexpr char magic[] = {'\0', 'P', 'C'};
constexpr std::uint8_t format = 2;
constexpr std::uint8_t format_unversioned = 1;
constexpr std::uint8_t codec_json = 1;
constexpr std::uint8_t flag_zstd = 1;
constexpr std::uint8_t flag_absent = 2;
constexpr std::size_t header_size = 30;
constexpr std::size_t unversioned_header_size = 22;

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint64_t get_u64(std::string_view in) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::uint64_t to_ms(SystemClock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  return ms.count() < 0 ? 0 : static_cast<std::uint64_t>(ms.count());
}

SystemClock::time_point from_ms(std::uint64_t ms) {
  return SystemClock::time_point(std::chrono::milliseconds(static_cast<std::int64_t>(ms)));
}

// zstd contexts are costly to make (tens of µs, more than compressing 1 KiB): one per thread.
struct ZstdContexts {
  ZSTD_CCtx* compress = ZSTD_createCCtx();
  ZSTD_DCtx* decompress = ZSTD_createDCtx();
  ~ZstdContexts() {
    ZSTD_freeCCtx(compress);
    ZSTD_freeDCtx(decompress);
  }
};

ZstdContexts& zstd_contexts() {
  thread_local ZstdContexts contexts;
  return contexts;
}

bool may_start_json(char c) {
  switch (c) {
    case '{':
    case '[':
    case '"':
    case '-':
    case 't':
    case 'f':
    case 'n':
    case ' ':
    case '\t':
    case '\r':
    case '\n':
      return true;
    default:
      return c >= '0' && c <= '9';
  }
}

}  // namespace

std::string encode_value(std::string_view json, const EnvelopeMeta& meta,
                         const CodecOptions& options) {
  if (meta.absent) json = {};
  const bool compress = json.size() > options.compress_threshold;
  std::string out;
  out.reserve(header_size + (compress ? ZSTD_compressBound(json.size()) : json.size()));
  out.append(magic, sizeof magic);
  out += static_cast<char>(format);
  out += static_cast<char>((compress ? flag_zstd : 0) | (meta.absent ? flag_absent : 0));
  out += static_cast<char>(codec_json);
  put_u64(out, to_ms(meta.created));
  put_u64(out, to_ms(meta.soft_expiry));
  put_u64(out, meta.version);
  if (!compress) {
    out.append(json);
    return out;
  }
  out.resize(header_size + ZSTD_compressBound(json.size()));
  const std::size_t n =
      ZSTD_compressCCtx(zstd_contexts().compress, out.data() + header_size,
                        out.size() - header_size, json.data(), json.size(), options.zstd_level);
  if (ZSTD_isError(n)) {  // cannot happen with a bound-sized buffer; store uncompressed
    out.resize(header_size);
    out[4] = 0;
    out.append(json);
    return out;
  }
  out.resize(header_size + n);
  return out;
}

boost::system::result<DecodedValue> decode_value(std::string_view stored,
                                                 const CodecOptions& options,
                                                 std::string& scratch) {
  DecodedValue value;
  if (stored.empty()) return make_error_code(error::corrupt_value);
  if (stored[0] != '\0') {
    if (!may_start_json(stored[0])) return make_error_code(error::corrupt_value);
    value.json = stored;
    value.legacy = true;
    return value;
  }
  const auto stored_format = stored.size() > 3 ? static_cast<std::uint8_t>(stored[3]) : 0;
  const std::size_t header =
      stored_format == format_unversioned ? unversioned_header_size : header_size;
  if (stored.size() < header || std::memcmp(stored.data(), magic, sizeof magic) != 0 ||
      (stored_format != format && stored_format != format_unversioned) ||
      static_cast<std::uint8_t>(stored[5]) != codec_json ||
      (static_cast<std::uint8_t>(stored[4]) & ~(flag_zstd | flag_absent)) != 0) {
    return make_error_code(error::corrupt_value);
  }
  const std::uint64_t created = get_u64(stored.substr(6, 8));
  const std::uint64_t soft_expiry = get_u64(stored.substr(14, 8));
  // Past the clock's range (year 2262) a time can only come from a corrupt or foreign writer.
  constexpr auto max_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::duration::max()).count());
  if (created > max_ms || soft_expiry > max_ms) return make_error_code(error::corrupt_value);
  value.meta.created = from_ms(created);
  value.meta.soft_expiry = from_ms(soft_expiry);
  if (stored_format == format) value.meta.version = get_u64(stored.substr(22, 8));
  const std::string_view payload = stored.substr(header);
  if ((static_cast<std::uint8_t>(stored[4]) & flag_absent) != 0) {
    if (!payload.empty() || (static_cast<std::uint8_t>(stored[4]) & flag_zstd) != 0) {
      return make_error_code(error::corrupt_value);
    }
    value.meta.absent = true;
    return value;
  }
  if ((static_cast<std::uint8_t>(stored[4]) & flag_zstd) == 0) {
    value.json = payload;
    return value;
  }
  const unsigned long long size = ZSTD_getFrameContentSize(payload.data(), payload.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
      size > options.max_decompressed) {
    return make_error_code(error::corrupt_value);
  }
  scratch.resize(static_cast<std::size_t>(size));
  const std::size_t n = ZSTD_decompressDCtx(zstd_contexts().decompress, scratch.data(),
                                            scratch.size(), payload.data(), payload.size());
  if (ZSTD_isError(n) || n != size) return make_error_code(error::corrupt_value);
  value.json = scratch;
  return value;
}

}  // namespace promptcache::cache
