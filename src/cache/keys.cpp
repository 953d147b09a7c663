#include "promptcache/cache/keys.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace promptcache::cache {
namespace {

// A table, not a switch: keys are built on every call and nearly every character is plain.
constexpr std::array<bool, 256> escape_table = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : std::string_view("%:*?[]\\{}")) t[c] = true;
  return t;
}();

bool needs_escape(char c) {
  return escape_table[static_cast<unsigned char>(c)];
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Whether any of the 16 bytes at `p` needs an escape: one block compare instead of 16 lookups
// (GCC and Clang vector extensions: SIMD where the target has it, plain code elsewhere).
bool block_needs_escape(const char* p) {
  using Block = unsigned char __attribute__((vector_size(16)));
  Block b;
  std::memcpy(&b, p, sizeof b);
  auto is = [&b](char c) { return b == static_cast<unsigned char>(c); };
  const auto hit =
      is('%') | is(':') | is('*') | is('?') | is('[') | is(']') | is('\\') | is('{') | is('}');
  std::uint64_t lanes[2];
  std::memcpy(lanes, &hit, sizeof lanes);
  return (lanes[0] | lanes[1]) != 0;
}

void append_escaped(std::string& out, std::string_view part) {
  constexpr char hex[] = "0123456789ABCDEF";
  // Ordinary ids need no escape: plain blocks are skipped whole, runs copied, not characters.
  const std::size_t n = part.size();
  std::size_t run = 0;
  std::size_t i = 0;
  while (i < n) {
    if (i + 16 <= n && !block_needs_escape(part.data() + i)) {
      i += 16;
      continue;
    }
    for (const std::size_t end = std::min(n, i + 16); i < end; ++i) {
      if (!needs_escape(part[i])) continue;
      out.append(part.data() + run, i - run);
      const auto u = static_cast<unsigned char>(part[i]);
      const char escaped[3] = {'%', hex[u >> 4], hex[u & 15]};
      out.append(escaped, 3);
      run = i + 1;
    }
  }
  out.append(part.data() + run, n - run);
}

}  // namespace

std::string escape_key_part(std::string_view part) {
  std::string out;
  out.reserve(part.size());
  append_escaped(out, part);
  return out;
}

std::string unescape_key_part(std::string_view part) {
  std::string out;
  out.reserve(part.size());
  for (std::size_t i = 0; i < part.size(); ++i) {
    if (part[i] == '%' && i + 2 < part.size()) {
      const int hi = hex_value(part[i + 1]);
      const int lo = hex_value(part[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += part[i];
  }
  return out;
}

std::string build_key(std::initializer_list<std::string_view> parts) {
  std::size_t size = parts.size();
  for (auto p : parts) size += p.size();
  std::string key;
  key.reserve(size);
  bool first = true;
  for (auto p : parts) {
    if (!first) key += ':';
    first = false;
    append_escaped(key, p);
  }
  return key;
}

namespace {

constexpr std::string_view analysis_prefix = "prompt:analysis:";
constexpr std::string_view index_prefix = "prompt:analysis-index:";

// {<escaped user>}: the hash tag that puts a user's entries and index in one cluster slot.
void append_user_tag(std::string& out, std::string_view user_id) {
  if (user_id.empty()) throw std::invalid_argument("user id must not be empty");
  out += '{';
  append_escaped(out, user_id);
  out += '}';
}

}  // namespace

std::string analysis_key(std::string_view prompt_hash, std::string_view user_id,
                         std::string_view analysis_type) {
  std::string key;
  key.reserve(analysis_prefix.size() + prompt_hash.size() + user_id.size() + analysis_type.size() +
              4);
  key += analysis_prefix;
  append_escaped(key, prompt_hash);
  key += ':';
  append_user_tag(key, user_id);
  key += ':';
  append_escaped(key, analysis_type);
  return key;
}

std::string user_analysis_index_key(std::string_view user_id) {
  std::string key(index_prefix);
  append_user_tag(key, user_id);
  return key;
}

std::string analysis_index_of(std::string_view key) {
  if (!key.starts_with(analysis_prefix)) return {};
  key.remove_prefix(analysis_prefix.size());
  // <hash>:{<user>}:<type>: three parts, none holding ':' or a brace but the tag's own.
  const auto first = key.find(':');
  const auto second = key.find(':', first == std::string_view::npos ? first : first + 1);
  if (second == std::string_view::npos) return {};
  const std::string_view tag = key.substr(first + 1, second - first - 1);
  const bool plain = key.substr(0, first).find_first_of("{}") == std::string_view::npos &&
                     key.substr(second + 1).find_first_of(":{}") == std::string_view::npos;
  const bool tagged = tag.size() > 2 && tag.front() == '{' && tag.back() == '}' &&
                      tag.substr(1, tag.size() - 2).find_first_of("{}") == std::string_view::npos;
  if (!plain || !tagged) return {};
  std::string index(index_prefix);
  index += tag;
  return index;
}

std::string suggestions_key(std::string_view prompt_hash, std::string_view user_id,
                            std::string_view version) {
  return build_key({"prompt", "suggestions", prompt_hash, user_id, version});
}

std::string prediction_key(std::string_view model_version, std::string_view prompt_hash) {
  return build_key({"ml", "model", "prediction", model_version, prompt_hash});
}

std::string user_analysis_pattern(std::string_view user_id) {
  std::string pattern = "prompt:analysis:*:";
  append_user_tag(pattern, user_id);
  pattern += ":*";
  return pattern;
}

std::string prompt_hash(std::string_view prompt) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(prompt.data(), prompt.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  constexpr char hex[] = "0123456789abcdef";
  std::string out(2 * length, '\0');
  for (unsigned int i = 0; i < length; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 15];
  }
  return out;
}

}  // namespace promptcache::cache
