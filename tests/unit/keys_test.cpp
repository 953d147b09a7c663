// Unit tests for promptcache::cache key building (docs/cache.md: Keys, seed defects 1–3): ordinary
// ids give the seed's keys (analysis keys with the user id as a hash tag), escaping is injective
// for hostile ids, the per-user SCAN pattern matches that user's analysis keys and nobody else's
// under Redis's own glob rules, and every analysis key names its user's index, in its slot.
#include "promptcache/cache/keys.hpp"
#include "promptcache/cluster/slot.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace {

using promptcache::cache::analysis_index_of;
using promptcache::cache::analysis_key;
using promptcache::cache::build_key;
using promptcache::cache::escape_key_part;
using promptcache::cache::prediction_key;
using promptcache::cache::suggestions_key;
using promptcache::cache::unescape_key_part;
using promptcache::cache::user_analysis_index_key;
using promptcache::cache::user_analysis_pattern;

using namespace std::string_literals;

// sha256("") — a realistic 64-hex prompt hash.
constexpr std::string_view kHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Ids a caller might pass on purpose or by accident: separators, glob specials, percent
// sequences that look like our own escapes, empty, long, non-ASCII and binary.
std::vector<std::string> hostile_ids() {
  std::string mixed_1k;
  const std::string_view cycle = "a:*?[]\\%_-^!";
  while (mixed_1k.size() < 1024) mixed_1k += cycle[mixed_1k.size() % cycle.size()];
  return {
      "user123",
      "",
      "a:b",
      "a_b",
      "a%3Ab",
      "a%3ab",
      "a%253Ab",
      "a::b",
      "a:",
      ":a",
      ":",
      "::",
      "*",
      "**",
      "?",
      "[x]",
      "[",
      "]",
      "[^a]",
      "[a-z]",
      "\\",
      "\\*",
      "{",
      "}",
      "{}",
      "a{b}c",
      "}{",
      "%",
      "%%",
      "%25",
      "%2",
      "100%",
      "*:*",
      "a b",
      "Zoë",
      "用户",
      "a\0b"s,
      "\xff\xfe\x80"s,
      std::string(1024, 'x'),
      mixed_1k,
  };
}

// The hostile ids a user id may be: all but the empty one, which analysis keys refuse.
std::vector<std::string> hostile_user_ids() {
  auto ids = hostile_ids();
  std::erase(ids, std::string());
  return ids;
}

std::vector<std::string> split_on_colon(std::string_view key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t pos = key.find(':', start);
    if (pos == std::string_view::npos) {
      parts.emplace_back(key.substr(start));
      return parts;
    }
    parts.emplace_back(key.substr(start, pos - start));
    start = pos + 1;
  }
}

// A port of Redis's stringmatchlen (util.c, Redis 7), case-sensitive as SCAN MATCH uses it:
// `*`, `?`, `[...]` with `^` negation, `a-z` ranges and `\` escapes inside, and `\` escapes
// outside. Reads past the end of the pattern see '\0', as Redis's NUL-terminated sds does.
bool redis_glob_impl(std::string_view p, std::string_view s, bool& skip_longer, int nesting) {
  if (nesting > 1000) return false;
  const auto at = [&p](std::size_t i) -> char { return i < p.size() ? p[i] : '\0'; };
  std::size_t pi = 0;
  std::size_t si = 0;
  while (pi < p.size() && si < s.size()) {
    switch (p[pi]) {
      case '*':
        while (pi < p.size() && at(pi + 1) == '*') ++pi;
        if (pi + 1 == p.size()) return true;
        while (si < s.size()) {
          if (redis_glob_impl(p.substr(pi + 1), s.substr(si), skip_longer, nesting + 1)) {
            return true;
          }
          if (skip_longer) return false;
          ++si;
        }
        skip_longer = true;
        return false;
      case '?':
        ++si;
        break;
      case '[': {
        ++pi;
        const bool negate = at(pi) == '^';
        if (negate) ++pi;
        bool match = false;
        const char c = s[si];
        for (;;) {
          if (at(pi) == '\\' && p.size() - pi >= 2) {
            ++pi;
            if (p[pi] == c) match = true;
          } else if (at(pi) == ']') {
            break;
          } else if (pi >= p.size()) {
            --pi;  // as Redis: step back so that the increment below lands on the end
            break;
          } else if (p.size() - pi >= 3 && p[pi + 1] == '-') {
            int start = p[pi];
            int end = p[pi + 2];
            if (start > end) std::swap(start, end);
            pi += 2;
            if (c >= start && c <= end) match = true;
          } else if (p[pi] == c) {
            match = true;
          }
          ++pi;
        }
        if (negate) match = !match;
        if (!match) return false;
        ++si;
        break;
      }
      case '\\':
        if (p.size() - pi >= 2) ++pi;
        [[fallthrough]];
      default:
        if (p[pi] != s[si]) return false;
        ++si;
        break;
    }
    ++pi;
    if (si == s.size()) {
      while (at(pi) == '*') ++pi;
      break;
    }
  }
  return pi == p.size() && si == s.size();
}

bool redis_glob_match(std::string_view pattern, std::string_view string) {
  bool skip_longer = false;
  return redis_glob_impl(pattern, string, skip_longer, 0);
}

// --- the seed's keys ---------------------------------------------------------------------

TEST(Keys, ordinary_analysis_key_is_the_seed_key_with_the_user_id_as_hash_tag) {
  EXPECT_EQ(analysis_key(kHash, "user123", "default"),
            "prompt:analysis:" + std::string(kHash) + ":{user123}:default");
  EXPECT_EQ(user_analysis_index_key("user123"), "prompt:analysis-index:{user123}");
}

TEST(Keys, ordinary_suggestions_key_equals_the_seed_key) {
  EXPECT_EQ(suggestions_key(kHash, "user123", "v2"),
            "prompt:suggestions:" + std::string(kHash) + ":user123:v2");
}

TEST(Keys, ordinary_prediction_key_equals_the_seed_key) {
  EXPECT_EQ(prediction_key("model_v1.2", kHash),
            "ml:model:prediction:model_v1.2:" + std::string(kHash));
}

TEST(Keys, ordinary_user_analysis_pattern_is_the_seed_pattern_with_the_hash_tag) {
  EXPECT_EQ(user_analysis_pattern("user123"), "prompt:analysis:*:{user123}:*");
}

TEST(Keys, an_empty_user_id_is_refused_by_every_analysis_key_builder) {
  EXPECT_THROW((void)analysis_key(kHash, "", "default"), std::invalid_argument);
  EXPECT_THROW((void)user_analysis_index_key(""), std::invalid_argument);
  EXPECT_THROW((void)user_analysis_pattern(""), std::invalid_argument);
}

TEST(Keys, build_key_joins_ordinary_parts_with_colons) {
  EXPECT_EQ(build_key({"service", "entity", "id", "qualifier"}), "service:entity:id:qualifier");
  EXPECT_EQ(build_key({"only"}), "only");
  EXPECT_EQ(build_key({}), "");
}

// --- escaping ----------------------------------------------------------------------------

TEST(Keys, escape_percent_encodes_exactly_percent_colon_glob_specials_and_braces_in_hex) {
  const std::string_view specials = "%:*?[]\\{}";
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const std::string in(1, c);
    const std::string out = escape_key_part(in);
    if (specials.find(c) != std::string_view::npos) {
      constexpr char hex[] = "0123456789ABCDEF";
      EXPECT_EQ(out, (std::string{'%', hex[b >> 4], hex[b & 15]})) << "byte " << b;
    } else {
      EXPECT_EQ(out, in) << "byte " << b;
    }
  }
}

// Long parts are scanned 16 bytes at a time: an escape anywhere in a block, at its edges, or in
// the tail after the last whole block is found, whatever the part's length.
TEST(Keys, escape_finds_every_special_at_every_position_of_parts_of_every_length_up_to_70) {
  auto reference = [](std::string_view part) {
    std::string out;
    for (char c : part) {
      if (std::string_view("%:*?[]\\{}").find(c) == std::string_view::npos) {
        out += c;
      } else {
        constexpr char hex[] = "0123456789ABCDEF";
        out += '%';
        out += hex[static_cast<unsigned char>(c) >> 4];
        out += hex[static_cast<unsigned char>(c) & 15];
      }
    }
    return out;
  };
  for (std::size_t length = 1; length <= 70; ++length) {
    const std::string plain(length, 'a');
    EXPECT_EQ(promptcache::cache::escape_key_part(plain), plain);
    for (std::size_t at = 0; at < length; ++at) {
      for (char special : std::string_view("%:*?[]\\{}")) {
        std::string part = plain;
        part[at] = special;
        if (at + 17 < length) part[at + 17] = ':';  // a second one, a block further on
        ASSERT_EQ(promptcache::cache::escape_key_part(part), reference(part))
            << "length " << length << ", at " << at << ", " << special;
      }
    }
  }
}

TEST(Keys, escape_of_seed_collision_examples) {
  EXPECT_EQ(escape_key_part("a:b"), "a%3Ab");
  EXPECT_EQ(escape_key_part("a_b"), "a_b");
  EXPECT_EQ(escape_key_part("a%3Ab"), "a%253Ab");
  EXPECT_EQ(escape_key_part("[x]*?\\"), "%5Bx%5D%2A%3F%5C");
  EXPECT_EQ(escape_key_part("Zoë"), "Zoë");
  EXPECT_EQ(escape_key_part("用户"), "用户");
}

TEST(Keys, escaped_part_holds_no_colon_no_glob_special_and_no_brace) {
  for (const auto& id : hostile_ids()) {
    const std::string e = escape_key_part(id);
    EXPECT_EQ(e.find_first_of(":*?[]\\{}"), std::string::npos) << "id " << id;
  }
}

TEST(Keys, escape_then_unescape_round_trips_every_hostile_id) {
  for (const auto& id : hostile_ids()) {
    EXPECT_EQ(unescape_key_part(escape_key_part(id)), id) << "id " << id;
  }
}

TEST(Keys, escape_then_unescape_round_trips_every_one_and_two_byte_string) {
  for (int a = 0; a < 256; ++a) {
    const std::string one(1, static_cast<char>(a));
    ASSERT_EQ(unescape_key_part(escape_key_part(one)), one) << "byte " << a;
    for (int b = 0; b < 256; ++b) {
      const std::string two{static_cast<char>(a), static_cast<char>(b)};
      ASSERT_EQ(unescape_key_part(escape_key_part(two)), two) << "bytes " << a << "," << b;
    }
  }
}

TEST(Keys, escape_is_injective_over_every_one_and_two_byte_string) {
  std::set<std::string> seen;
  std::size_t count = 0;
  for (int a = 0; a < 256; ++a) {
    ++count;
    seen.insert(escape_key_part(std::string(1, static_cast<char>(a))));
    for (int b = 0; b < 256; ++b) {
      ++count;
      seen.insert(escape_key_part(std::string{static_cast<char>(a), static_cast<char>(b)}));
    }
  }
  EXPECT_EQ(seen.size(), count);
}

TEST(Keys, unescape_keeps_a_percent_not_followed_by_two_hex_digits) {
  EXPECT_EQ(unescape_key_part("%"), "%");
  EXPECT_EQ(unescape_key_part("%4"), "%4");
  EXPECT_EQ(unescape_key_part("%zz"), "%zz");
  EXPECT_EQ(unescape_key_part("%4g"), "%4g");
  EXPECT_EQ(unescape_key_part("100%"), "100%");
  EXPECT_EQ(unescape_key_part("a%3"), "a%3");
}

TEST(Keys, unescape_decodes_upper_and_lower_case_hex_including_at_the_end) {
  EXPECT_EQ(unescape_key_part("%3A"), ":");
  EXPECT_EQ(unescape_key_part("%3a"), ":");
  EXPECT_EQ(unescape_key_part("a%3Ab%25"), "a:b%");
  EXPECT_EQ(unescape_key_part("%00"), "\0"s);
}

// --- injectivity of whole keys (seed defect 2) ---------------------------------------------

TEST(Keys, user_a_colon_b_and_a_underscore_b_get_different_keys) {
  EXPECT_NE(analysis_key(kHash, "a:b", "default"), analysis_key(kHash, "a_b", "default"));
  EXPECT_NE(suggestions_key(kHash, "a:b", "v2"), suggestions_key(kHash, "a_b", "v2"));
  EXPECT_NE(prediction_key("m:1", kHash), prediction_key("m_1", kHash));
}

TEST(Keys, user_a_colon_b_and_user_a_percent_3a_b_get_different_keys) {
  EXPECT_NE(analysis_key(kHash, "a:b", "default"), analysis_key(kHash, "a%3Ab", "default"));
  EXPECT_NE(analysis_key(kHash, "a%3Ab", "default"), analysis_key(kHash, "a%253Ab", "default"));
}

TEST(Keys, colon_moved_between_parts_gives_different_keys) {
  // The seed's "a:b" + "c" and "a" + "b:c" both became parts joined by ':'.
  EXPECT_NE(analysis_key("h", "a:b", "c"), analysis_key("h", "a", "b:c"));
  EXPECT_NE(analysis_key("h:a", "b", "c"), analysis_key("h", "a:b", "c"));
  EXPECT_NE(build_key({"a", "b"}), build_key({"a:b"}));
}

TEST(Keys, all_distinct_hostile_analysis_triples_give_distinct_keys) {
  const auto ids = hostile_ids();
  std::set<std::tuple<std::string, std::string, std::string>> triples;
  std::set<std::string> keys;
  for (const auto& h : ids) {
    for (const auto& u : hostile_user_ids()) {
      for (const auto& t : ids) {
        triples.emplace(h, u, t);
        keys.insert(analysis_key(h, u, t));
      }
    }
  }
  EXPECT_EQ(keys.size(), triples.size());
}

TEST(Keys, all_distinct_hostile_suggestions_and_prediction_inputs_give_distinct_keys) {
  const auto ids = hostile_ids();
  std::set<std::tuple<std::string, std::string, std::string>> triples;
  std::set<std::string> suggestion_keys;
  std::set<std::pair<std::string, std::string>> pairs;
  std::set<std::string> prediction_keys;
  for (const auto& a : ids) {
    for (const auto& b : ids) {
      pairs.emplace(a, b);
      prediction_keys.insert(prediction_key(a, b));
      for (const auto& c : ids) {
        triples.emplace(a, b, c);
        suggestion_keys.insert(suggestions_key(a, b, c));
      }
    }
  }
  EXPECT_EQ(suggestion_keys.size(), triples.size());
  EXPECT_EQ(prediction_keys.size(), pairs.size());
}

TEST(Keys, key_splits_into_its_parts_and_each_part_unescapes_to_the_input) {
  const auto ids = hostile_ids();
  for (const auto& h : ids) {
    for (const auto& u : hostile_user_ids()) {
      for (std::string_view t : {"default", "a:b", "*", "Zoë", ""}) {
        const auto parts = split_on_colon(analysis_key(h, u, t));
        ASSERT_EQ(parts.size(), 5u) << "h=" << h << " u=" << u << " t=" << t;
        EXPECT_EQ(parts[0], "prompt");
        EXPECT_EQ(parts[1], "analysis");
        EXPECT_EQ(unescape_key_part(parts[2]), h);
        ASSERT_GE(parts[3].size(), 3u);
        EXPECT_EQ(parts[3].front(), '{');
        EXPECT_EQ(parts[3].back(), '}');
        EXPECT_EQ(unescape_key_part(parts[3].substr(1, parts[3].size() - 2)), u);
        EXPECT_EQ(unescape_key_part(parts[4]), t);
      }
    }
  }
}

TEST(Keys, empty_parts_are_kept_not_collapsed) {
  EXPECT_EQ(build_key({"a", "", "b"}), "a::b");
  EXPECT_NE(build_key({"a", "", "b"}), build_key({"a", "b"}));
  EXPECT_EQ(build_key({"", ""}), ":");
  EXPECT_EQ(analysis_key("", "u", ""), "prompt:analysis::{u}:");
  EXPECT_EQ(suggestions_key("h", "u", ""), "prompt:suggestions:h:u:");
  EXPECT_EQ(prediction_key("", "h"), "ml:model:prediction::h");
  EXPECT_NE(analysis_key("", "u", "t"), analysis_key("u", "t", ""));
}

TEST(Keys, analysis_suggestions_and_prediction_families_never_share_a_key) {
  const auto ids = hostile_ids();
  std::set<std::string> analysis;
  for (const auto& a : ids) {
    for (const auto& b : hostile_user_ids()) analysis.insert(analysis_key(a, b, "default"));
  }
  for (const auto& a : ids) {
    for (const auto& b : ids) {
      EXPECT_EQ(analysis.count(suggestions_key(a, b, "default")), 0u);
      EXPECT_EQ(analysis.count(prediction_key(a, b)), 0u);
    }
  }
}

// --- the Redis glob matcher itself ---------------------------------------------------------

TEST(RedisGlob, matches_the_documented_redis_examples) {
  EXPECT_TRUE(redis_glob_match("h?llo", "hello"));
  EXPECT_TRUE(redis_glob_match("h?llo", "hallo"));
  EXPECT_FALSE(redis_glob_match("h?llo", "hllo"));
  EXPECT_TRUE(redis_glob_match("h*llo", "hllo"));
  EXPECT_TRUE(redis_glob_match("h*llo", "heeeello"));
  EXPECT_TRUE(redis_glob_match("h[ae]llo", "hello"));
  EXPECT_TRUE(redis_glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(redis_glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(redis_glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(redis_glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(redis_glob_match("h[a-b]llo", "hbllo"));
  EXPECT_FALSE(redis_glob_match("h[a-b]llo", "hcllo"));
  EXPECT_TRUE(redis_glob_match("h[b-a]llo", "hallo"));  // Redis swaps a reversed range
}

TEST(RedisGlob, star_crosses_colons_and_backslash_escapes_specials) {
  EXPECT_TRUE(redis_glob_match("prompt:*", "prompt:analysis:h:u:t"));
  EXPECT_TRUE(redis_glob_match("a*b", "a:x:b"));
  EXPECT_TRUE(redis_glob_match("\\*", "*"));
  EXPECT_FALSE(redis_glob_match("\\*", "x"));
  EXPECT_TRUE(redis_glob_match("\\?", "?"));
  EXPECT_FALSE(redis_glob_match("\\?", "x"));
  EXPECT_TRUE(redis_glob_match("[\\]]", "]"));
  EXPECT_TRUE(redis_glob_match("[\\-]", "-"));
  EXPECT_TRUE(redis_glob_match("a**b", "ab"));
  EXPECT_TRUE(redis_glob_match("a*", "a"));
  EXPECT_FALSE(redis_glob_match("a*b", "a"));
  EXPECT_TRUE(redis_glob_match("[ab", "b"));  // an unterminated class ends at the pattern end
  EXPECT_FALSE(redis_glob_match("[ab", "c"));
  EXPECT_FALSE(redis_glob_match("[", "["));
  EXPECT_TRUE(redis_glob_match("%3A", "%3A"));
  EXPECT_FALSE(redis_glob_match("%3A", ":"));
}

TEST(RedisGlob, the_seeds_unescaped_pattern_for_user_star_matches_other_users_keys) {
  // Seed defect 3 as the matcher sees it — proves the matcher does treat `*`, `?` and `[`
  // as globs, so the property tests below are not vacuous.
  const std::string alice = "prompt:analysis:" + std::string(kHash) + ":alice:default";
  EXPECT_TRUE(redis_glob_match("prompt:analysis:*:*:*", alice));
  EXPECT_TRUE(redis_glob_match("prompt:analysis:*:?lice:*", alice));
  EXPECT_TRUE(redis_glob_match("prompt:analysis:*:[a]lice:*", alice));
}

// --- user_analysis_pattern (seed defects 1 and 3) ------------------------------------------

TEST(Keys, user_pattern_matches_all_of_that_users_analysis_keys_and_no_other_users) {
  const auto ids = hostile_user_ids();
  const std::vector<std::string> hashes = {
      std::string(kHash), "", "*", "a:b", "[x]", "%3A", "用户"};
  const std::vector<std::string> types = {"default", "v2", "", "*", "a:b", "?", "[x]", "\\", "Zoë"};
  for (const auto& u : ids) {
    const std::string pattern = user_analysis_pattern(u);
    for (const auto& h : hashes) {
      for (const auto& t : types) {
        ASSERT_TRUE(redis_glob_match(pattern, analysis_key(h, u, t)))
            << "pattern " << pattern << " misses own key " << analysis_key(h, u, t);
        for (const auto& v : ids) {
          if (v == u) continue;
          ASSERT_FALSE(redis_glob_match(pattern, analysis_key(h, v, t)))
              << "pattern " << pattern << " of user " << u << " matches key "
              << analysis_key(h, v, t) << " of user " << v;
        }
      }
    }
  }
}

TEST(Keys, user_pattern_matches_no_suggestions_or_prediction_key) {
  const auto ids = hostile_user_ids();
  const std::vector<std::string> others = {std::string(kHash), "",       "*", "a:b",
                                           "analysis",         "default"};
  for (const auto& u : ids) {
    const std::string pattern = user_analysis_pattern(u);
    for (const auto& a : others) {
      for (const auto& v : ids) {
        EXPECT_FALSE(redis_glob_match(pattern, suggestions_key(a, v, "v2")))
            << pattern << " vs " << suggestions_key(a, v, "v2");
        EXPECT_FALSE(redis_glob_match(pattern, suggestions_key(a, u, "default")))
            << pattern << " vs " << suggestions_key(a, u, "default");
        EXPECT_FALSE(redis_glob_match(pattern, prediction_key(v, a)))
            << pattern << " vs " << prediction_key(v, a);
        EXPECT_FALSE(redis_glob_match(pattern, prediction_key(u, a)))
            << pattern << " vs " << prediction_key(u, a);
      }
    }
  }
}

TEST(Keys, user_pattern_for_glob_special_ids_matches_only_the_literal_user) {
  const std::string key_alice = analysis_key(kHash, "alice", "default");
  for (std::string_view u : {"*", "?????", "[a]lice", "[^x]lice", "[a-z]lice", "\\alice"}) {
    EXPECT_FALSE(redis_glob_match(user_analysis_pattern(u), key_alice)) << u;
    EXPECT_TRUE(redis_glob_match(user_analysis_pattern(u), analysis_key(kHash, u, "default"))) << u;
  }
}

// --- the per-user index (issue 6: O(1) user invalidation) ---------------------------------

TEST(Keys, every_analysis_key_names_its_users_index_and_shares_its_cluster_slot) {
  const auto users = hostile_user_ids();
  for (const auto& h : hostile_ids()) {
    for (const auto& u : users) {
      for (std::string_view t : {"default", "a:b", "{x}", ""}) {
        const std::string key = analysis_key(h, u, t);
        const std::string index = user_analysis_index_key(u);
        ASSERT_EQ(analysis_index_of(key), index) << key;
        ASSERT_EQ(promptcache::cluster::key_slot(key), promptcache::cluster::key_slot(index))
            << key;
      }
    }
  }
}

TEST(Keys, distinct_users_get_distinct_indexes) {
  std::set<std::string> indexes;
  const auto users = hostile_user_ids();
  for (const auto& u : users) indexes.insert(user_analysis_index_key(u));
  EXPECT_EQ(indexes.size(), std::set<std::string>(users.begin(), users.end()).size());
}

TEST(Keys, keys_outside_the_analysis_layout_have_no_index) {
  for (const auto& a : hostile_ids()) {
    EXPECT_EQ(analysis_index_of(suggestions_key(kHash, a, "v2")), "");
    EXPECT_EQ(analysis_index_of(prediction_key(a, kHash)), "");
  }
  for (std::string_view key :
       {"prompt:analysis:h:user123:default", "prompt:analysis:h:{}:t", "prompt:analysis:h:{u}",
        "prompt:analysis:h:{u}:t:x", "prompt:analysis:{u}:t", "prompt:analysis:h:{u}x:t",
        "prompt:analysis:h:{u{v}:t", "prompt:analysis-index:{u}", "prompt:analysis:h:{u}:{t}", "",
        "prompt:analysis:"}) {
    EXPECT_EQ(analysis_index_of(key), "") << key;
  }
}

}  // namespace

namespace promptcache::cache {
namespace {

TEST(PromptHash, IsTheSha256HexOfTheUtf8Bytes) {
  EXPECT_EQ(prompt_hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(prompt_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // UTF-8 bytes as given: "é" is two bytes (c3 a9).
  EXPECT_EQ(prompt_hash("\xc3\xa9"), prompt_hash(std::string("\xc3\xa9")));
  EXPECT_EQ(prompt_hash("\xc3\xa9").size(), 64u);
  EXPECT_NE(prompt_hash("\xc3\xa9"), prompt_hash("e"));
}

}  // namespace
}  // namespace promptcache::cache
