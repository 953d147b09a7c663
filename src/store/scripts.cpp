#include "store/scripts.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include <openssl/evp.h>

namespace promptcache::store::scripts {
namespace {

// KEYS[1] entry, KEYS[2] index; ARGV[1] value, ARGV[2] TTL in seconds (0: none), ARGV[3] "1"
// for NX. The index's score is the entry's expiry by the server's clock (+inf: none), so the
// members whose entries have expired are dropped on every write and the index lives exactly as
// long as its longest-lived entry.
constexpr std::string_view indexed_set_text = R"lua(
local ttl = tonumber(ARGV[2])
local written
if ttl > 0 then
  if ARGV[3] == '1' then
    written = redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl, 'NX')
  else
    written = redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
  end
elseif ARGV[3] == '1' then
  written = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else
  written = redis.call('SET', KEYS[1], ARGV[1])
end
if not written then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local life = redis.call('PTTL', KEYS[2])
if ttl > 0 then
  redis.call('ZADD', KEYS[2], string.format('%d', now + ttl * 1000), KEYS[1])
else
  redis.call('ZADD', KEYS[2], '+inf', KEYS[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('(%d', now))
if ttl == 0 then
  redis.call('PERSIST', KEYS[2])
elseif life ~= -1 and life < ttl * 1000 then
  redis.call('PEXPIRE', KEYS[2], ttl * 1000)
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

const std::string& indexed_set_sha() {
  static const std::string sha = sha1_hex(indexed_set_text);
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

void push_indexed_set(resp::Request& req, bool by_sha, std::string_view key, std::string_view value,
                      std::chrono::seconds ttl, SetMode mode, std::string_view index) {
  const std::string_view nx = mode == SetMode::if_absent ? "1" : "0";
  req.push(by_sha ? "EVALSHA" : "EVAL", by_sha ? indexed_set_sha() : indexed_set_text, 2, key,
           index, value, ttl.count(), nx);
}

void push_drain(resp::Request& req, bool by_sha, std::string_view index) {
  req.push(by_sha ? "EVALSHA" : "EVAL", by_sha ? drain_sha() : drain_text, 1, index, drain_batch);
}

void push_load_indexed_set(resp::Request& req) {
  req.push("SCRIPT", "LOAD", indexed_set_text);
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

bool is_noscript(std::string_view error) noexcept {
  return error.starts_with("NOSCRIPT");
}

}  // namespace promptcache::store::scripts
