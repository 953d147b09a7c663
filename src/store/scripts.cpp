#include "store/scripts.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <span>

#include <openssl/evp.h>

namespace promptcache::store::scripts {
namespace {

// The one write of an entry that needs more than SET: indexed, versioned, fenced or bounded.
// KEYS[1] entry, then KEYS[2] the index when ARGV[7] is "1", then the lease when ARGV[6] is a
// token. ARGV[1] value, ARGV[2] TTL in seconds (0: none), ARGV[3] "1" for NX, ARGV[4] version
// (0: none), ARGV[5] not-after in Unix ms (0: none), ARGV[6] lease token ("": no lease),
// ARGV[7] "1" with an index. Replies 1 when written, 0 when not.
//
// A version is compared with the one in the held value's envelope header (bytes 23–30 of
// "\0PC\2…", little endian; read with GETRANGE, never the whole value). The index's score is
// the entry's expiry by the server's clock (+inf: none), so the members whose entries have
// expired are dropped on every write and the index lives exactly as long as its longest-lived
// entry.
constexpr std::string_view write_text = R"lua(
local ttl = tonumber(ARGV[2])
local version = tonumber(ARGV[4])
local not_after = tonumber(ARGV[5])
if ARGV[6] ~= '' then
  local lease = KEYS[#KEYS]
  if redis.call('GET', lease) ~= ARGV[6] then return 0 end
  redis.call('DEL', lease)
end
local now = nil
if not_after > 0 or ARGV[7] == '1' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if not_after > 0 and now > not_after then return 0 end
end
local nx = ARGV[3] == '1'
if version > 0 then
  nx = false
  local head = redis.call('GETRANGE', KEYS[1], 0, 29)
  if #head == 30 and string.sub(head, 1, 4) == '\0PC\2' then
    local held = 0
    for i = 30, 23, -1 do held = held * 256 + string.byte(head, i) end
    if held >= version then return 0 end
  end
end
local written
if ttl > 0 then
  if nx then
    written = redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl, 'NX')
  else
    written = redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
  end
elseif nx then
  written = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else
  written = redis.call('SET', KEYS[1], ARGV[1])
end
if not written then return 0 end
if ARGV[7] ~= '1' then return 1 end
local index = KEYS[2]
local life = redis.call('PTTL', index)
if ttl > 0 then
  redis.call('ZADD', index, string.format('%d', now + ttl * 1000), KEYS[1])
else
  redis.call('ZADD', index, '+inf', KEYS[1])
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', string.format('(%d', now))
if ttl == 0 then
  redis.call('PERSIST', index)
elseif life ~= -1 and life < ttl * 1000 then
  redis.call('PEXPIRE', index, ttl * 1000)
end
return 1
)lua";

// KEYS[1] index; ARGV[1] batch size.
constexpr std::string_view drain_text = R"lua(
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #members == 0 then return '0 0' end
local deleted = redis.call('UNLINK', unpack(members))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #members - 1)
return deleted .. ' ' .. redis.call('ZCARD', KEYS[1])
)lua";

// KEYS[1] lease; ARGV[1] the owner's token.
constexpr std::string_view release_text = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

std::string sha1_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha1(), nullptr);
  constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

const std::string& write_sha() {
  static const std::string sha = sha1_hex(write_text);
  return sha;
}

const std::string& drain_sha() {
  static const std::string sha = sha1_hex(drain_text);
  return sha;
}

const std::string& release_sha() {
  static const std::string sha = sha1_hex(release_text);
  return sha;
}

}  // namespace

void push_release(resp::Request& req, bool by_sha, std::string_view key, std::string_view token) {
  req.push(by_sha ? "EVALSHA" : "EVAL", by_sha ? release_sha() : release_text, 1, key, token);
}

void push_acquire(resp::Request& req, std::string_view key, std::string_view token,
                  std::chrono::milliseconds ttl) {
  req.push("SET", key, token, "NX", "PX", std::max<std::int64_t>(1, ttl.count()));
}

bool needs_script(const Write& w) noexcept {
  return !w.index.empty() || w.version > 0 || w.not_after_ms > 0 || !w.token.empty();
}

void push_write(resp::Request& req, bool by_sha, const Write& w) {
  // The arguments in script order; the index and the lease are keys only when present.
  char numbers[4][24];
  auto decimal = [&numbers](int slot, auto v) {
    const auto end = std::to_chars(numbers[slot], numbers[slot] + sizeof numbers[slot], v).ptr;
    return std::string_view(numbers[slot], static_cast<std::size_t>(end - numbers[slot]));
  };
  std::array<std::string_view, 13> args;
  std::size_t n = 0;
  args[n++] = by_sha ? std::string_view(write_sha()) : write_text;
  args[n++] = decimal(0, 1 + (w.index.empty() ? 0 : 1) + (w.token.empty() ? 0 : 1));
  args[n++] = w.key;
  if (!w.index.empty()) args[n++] = w.index;
  if (!w.token.empty()) args[n++] = w.lease;
  args[n++] = w.value;
  args[n++] = decimal(1, w.ttl.count());
  args[n++] = w.mode == SetMode::if_absent ? "1" : "0";
  args[n++] = decimal(2, w.version);
  args[n++] = decimal(3, w.not_after_ms);
  args[n++] = w.token;
  args[n++] = w.index.empty() ? "0" : "1";
  req.push_range(by_sha ? "EVALSHA" : "EVAL", std::span<const std::string_view>(args.data(), n));
}

void push_write(resp::Request& req, bool by_sha, const Entry& e) {
  Write w;
  w.key = e.key;
  w.value = e.value;
  w.ttl = e.ttl;
  w.index = e.index;
  w.version = e.version;
  push_write(req, by_sha, w);
}

void push_plain_set(resp::Request& req, std::string_view key, std::string_view value,
                    std::chrono::seconds ttl, SetMode mode) {
  const bool nx = mode == SetMode::if_absent;
  if (ttl.count() > 0 && nx) {
    req.push("SET", key, value, "NX", "EX", ttl.count());
  } else if (ttl.count() > 0) {
    req.push("SET", key, value, "EX", ttl.count());
  } else if (nx) {
    req.push("SET", key, value, "NX");
  } else {
    req.push("SET", key, value);
  }
}

void push_drain(resp::Request& req, bool by_sha, std::string_view index) {
  req.push(by_sha ? "EVALSHA" : "EVAL", by_sha ? drain_sha() : drain_text, 1, index, drain_batch);
}

void push_load_write(resp::Request& req) {
  req.push("SCRIPT", "LOAD", write_text);
}

bool parse_drained(std::string_view reply, Drained& out) {
  const auto space = reply.find(' ');
  if (space == std::string_view::npos) return false;
  const char* end = reply.data() + reply.size();
  auto a = std::from_chars(reply.data(), reply.data() + space, out.deleted);
  auto b = std::from_chars(reply.data() + space + 1, end, out.left);
  return a.ec == std::errc{} && a.ptr == reply.data() + space && b.ec == std::errc{} &&
         b.ptr == end;
}

Result<bool> write_outcome(resp::Type type, std::string_view value) {
  if (resp::is_error(type)) return failure(make_error_code(error::server_error));
  if (type == resp::Type::number) return answer(value == "1");
  return answer(type != resp::Type::null);
}

bool is_noscript(std::string_view error) noexcept {
  return error.starts_with("NOSCRIPT");
}

}  // namespace promptcache::store::scripts
