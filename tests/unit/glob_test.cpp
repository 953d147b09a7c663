// store::glob_match against Redis's SCAN MATCH / KEYS semantics (util.c stringmatchlen). The
// expectations below were cross-checked against redis-server 7.0 (KEYS pattern).
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "promptcache/cache/keys.hpp"
#include "promptcache/store/store.hpp"

namespace promptcache::store {
namespace {

using namespace std::string_view_literals;

TEST(Glob, literal_pattern_matches_only_the_same_text) {
  EXPECT_TRUE(glob_match("abc", "abc"));
  EXPECT_FALSE(glob_match("abc", "abd"));
  EXPECT_FALSE(glob_match("abc", "ab"));
  EXPECT_FALSE(glob_match("abc", "abcd"));
  EXPECT_FALSE(glob_match("abc", "ABC"));  // case-sensitive
}

TEST(Glob, empty_pattern_matches_only_empty_text) {
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
  EXPECT_FALSE(glob_match("a", ""));
  EXPECT_FALSE(glob_match("?", ""));
  EXPECT_FALSE(glob_match("[a]", ""));
  EXPECT_FALSE(glob_match("[^a]", ""));
  EXPECT_FALSE(glob_match("\\*", ""));
}

TEST(Glob, star_alone_matches_everything_including_empty_text) {
  // SCAN MATCH * (and KEYS *) returns every key, the empty one too.
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("*", "*?[]\\:"));
}

TEST(Glob, star_matches_any_run_including_an_empty_one) {
  EXPECT_TRUE(glob_match("a*", "a"));
  EXPECT_TRUE(glob_match("a*", "abc"));
  EXPECT_FALSE(glob_match("a*", "ba"));
  EXPECT_TRUE(glob_match("*c", "abc"));
  EXPECT_TRUE(glob_match("*c", "c"));
  EXPECT_FALSE(glob_match("*c", "cb"));
  EXPECT_TRUE(glob_match("a*c", "ac"));
  EXPECT_TRUE(glob_match("a*c", "abbbc"));
  EXPECT_FALSE(glob_match("a*c", "acb"));
  EXPECT_TRUE(glob_match("a**c", "abc"));
  EXPECT_TRUE(glob_match("a*b*c", "aXbYbZc"));
  EXPECT_TRUE(glob_match("*:*", "x:y"));
  EXPECT_TRUE(glob_match("*:*", ":"));
  EXPECT_FALSE(glob_match("*:*", "xy"));
}

TEST(Glob, star_backtracks_to_later_occurrences) {
  EXPECT_TRUE(glob_match("*ab", "aab"));
  EXPECT_TRUE(glob_match("a*ab", "aaab"));
  EXPECT_TRUE(glob_match("*abc*abd", "abcabcabd"));
  EXPECT_TRUE(glob_match("*a?c", "abxabc"));
  EXPECT_FALSE(glob_match("*a?c", "abxabd"));
  EXPECT_TRUE(glob_match("x*[0-9]", "xabc7"));
  EXPECT_FALSE(glob_match("x*[0-9]", "xabc"));
}

TEST(Glob, star_matches_the_separator_too) {
  // Redis's * is not a path glob: it crosses ':' (why keys.hpp escapes ':' inside parts).
  EXPECT_TRUE(glob_match("prompt:*", "prompt:analysis:h:u:t"));
  EXPECT_TRUE(glob_match("prompt:analysis:*:u:*", "prompt:analysis:h:x:u:t"));
}

TEST(Glob, question_mark_matches_exactly_one_byte) {
  EXPECT_TRUE(glob_match("?", "a"));
  EXPECT_TRUE(glob_match("?", "*"));
  EXPECT_FALSE(glob_match("?", "ab"));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "ac"));
  EXPECT_TRUE(glob_match("??", "\xc3\xbc"));  // one non-ASCII character is two bytes
  EXPECT_FALSE(glob_match("?", "\xc3\xbc"));
}

TEST(Glob, class_matches_one_listed_byte) {
  EXPECT_TRUE(glob_match("[abc]", "a"));
  EXPECT_TRUE(glob_match("[abc]", "b"));
  EXPECT_TRUE(glob_match("[abc]", "c"));
  EXPECT_FALSE(glob_match("[abc]", "d"));
  EXPECT_FALSE(glob_match("[abc]", "ab"));
  EXPECT_TRUE(glob_match("x[abc]y", "xby"));
  EXPECT_FALSE(glob_match("x[abc]y", "xdy"));
  // Specials lose their meaning inside a class.
  EXPECT_TRUE(glob_match("[*?]", "*"));
  EXPECT_TRUE(glob_match("[*?]", "?"));
  EXPECT_FALSE(glob_match("[*?]", "a"));
}

TEST(Glob, range_matches_bytes_between_its_ends_inclusive) {
  EXPECT_TRUE(glob_match("[a-z]", "a"));
  EXPECT_TRUE(glob_match("[a-z]", "m"));
  EXPECT_TRUE(glob_match("[a-z]", "z"));
  EXPECT_FALSE(glob_match("[a-z]", "A"));
  EXPECT_FALSE(glob_match("[a-z]", "-"));
  EXPECT_FALSE(glob_match("[a-z]", "{"));
  EXPECT_TRUE(glob_match("[0-9a-f]", "7"));
  EXPECT_TRUE(glob_match("[0-9a-f]", "e"));
  EXPECT_FALSE(glob_match("[0-9a-f]", "g"));
  EXPECT_TRUE(glob_match("id[0-9][0-9]", "id42"));
  EXPECT_FALSE(glob_match("id[0-9][0-9]", "id4x"));
}

TEST(Glob, reversed_range_is_the_same_range) {
  EXPECT_TRUE(glob_match("[z-a]", "a"));
  EXPECT_TRUE(glob_match("[z-a]", "m"));
  EXPECT_TRUE(glob_match("[z-a]", "z"));
  EXPECT_FALSE(glob_match("[z-a]", "A"));
  EXPECT_FALSE(glob_match("[z-a]", "{"));
}

TEST(Glob, negated_class_matches_one_byte_not_listed) {
  EXPECT_TRUE(glob_match("[^a]", "b"));
  EXPECT_FALSE(glob_match("[^a]", "a"));
  EXPECT_FALSE(glob_match("[^a]", "bc"));
  EXPECT_TRUE(glob_match("[^a-c]", "d"));
  EXPECT_FALSE(glob_match("[^a-c]", "b"));
  EXPECT_TRUE(glob_match("x[^:]y", "x_y"));
  EXPECT_FALSE(glob_match("x[^:]y", "x:y"));
  // '^' anywhere but first is an ordinary member.
  EXPECT_TRUE(glob_match("[a^]", "^"));
}

TEST(Glob, backslash_escapes_make_specials_literal) {
  EXPECT_TRUE(glob_match("\\*", "*"));
  EXPECT_FALSE(glob_match("\\*", "a"));
  EXPECT_FALSE(glob_match("\\*", "ab"));
  EXPECT_TRUE(glob_match("\\?", "?"));
  EXPECT_FALSE(glob_match("\\?", "a"));
  EXPECT_TRUE(glob_match("a\\[b", "a[b"));
  EXPECT_FALSE(glob_match("a\\[b", "ab"));
  EXPECT_TRUE(glob_match("\\\\", "\\"));
  EXPECT_FALSE(glob_match("\\\\", "\\\\"));
  EXPECT_TRUE(glob_match("\\a", "a"));  // an escaped ordinary byte is itself
  EXPECT_TRUE(glob_match("*\\*", "abc*"));
  EXPECT_FALSE(glob_match("*\\*", "abc"));
}

TEST(Glob, backslash_escapes_inside_a_class) {
  EXPECT_TRUE(glob_match("[\\]]", "]"));
  EXPECT_FALSE(glob_match("[\\]]", "\\"));
  EXPECT_TRUE(glob_match("[a\\-z]", "-"));  // escaped '-' is a member, not a range
  EXPECT_TRUE(glob_match("[a\\-z]", "a"));
  EXPECT_TRUE(glob_match("[a\\-z]", "z"));
  EXPECT_FALSE(glob_match("[a\\-z]", "m"));
  EXPECT_TRUE(glob_match("[\\^a]", "^"));  // escaped '^' does not negate
  EXPECT_FALSE(glob_match("[\\^a]", "b"));
}

TEST(Glob, trailing_backslash_is_a_literal_backslash) {
  EXPECT_TRUE(glob_match("a\\", "a\\"));
  EXPECT_FALSE(glob_match("a\\", "a"));
}

TEST(Glob, unterminated_class_runs_to_the_end_of_the_pattern) {
  EXPECT_TRUE(glob_match("[ab", "a"));
  EXPECT_TRUE(glob_match("[ab", "b"));
  EXPECT_FALSE(glob_match("[ab", "c"));
  EXPECT_FALSE(glob_match("[ab", "ab"));
}

TEST(Glob, binary_and_non_ascii_bytes_are_matched_exactly) {
  EXPECT_TRUE(glob_match("\xc3\xbc*",
                         "\xc3\xbc"
                         "ber"));
  EXPECT_FALSE(glob_match("\xc3\xbc*", "uber"));
  EXPECT_TRUE(glob_match("a?c"sv, "a\0c"sv));
  EXPECT_TRUE(glob_match("a\0*"sv, "a\0bc"sv));
  EXPECT_FALSE(glob_match("a\0*"sv, "a"sv));
  EXPECT_FALSE(glob_match("a\0*"sv, "ab"sv));  // the pattern does not end at its NUL
  EXPECT_TRUE(glob_match("*\r\n", "line\r\n"));
}

TEST(Glob, many_stars_against_a_long_non_matching_text_finish) {
  const std::string as(10000, 'a');
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*b", as));
  EXPECT_TRUE(glob_match("*a*a*a*a*a*a*a*a", as));
  EXPECT_FALSE(glob_match("*?*?*?*?*?*?*?*b", as));
  EXPECT_FALSE(glob_match("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c", as));
  const std::string pattern_of_stars = std::string(5000, '*') + "b";
  EXPECT_FALSE(glob_match(pattern_of_stars, as));
}

TEST(Glob, user_analysis_pattern_matches_only_that_users_analysis_keys) {
  const auto pattern = cache::user_analysis_pattern("a:b");
  EXPECT_TRUE(glob_match(pattern, cache::analysis_key("hash", "a:b", "sentiment")));
  EXPECT_FALSE(glob_match(pattern, cache::analysis_key("hash", "a_b", "sentiment")));
  EXPECT_FALSE(glob_match(pattern, cache::analysis_key("hash", "a", "b")));
  EXPECT_FALSE(glob_match(pattern, cache::suggestions_key("hash", "a:b", "v1")));
  const auto star = cache::user_analysis_pattern("*");
  EXPECT_TRUE(glob_match(star, cache::analysis_key("hash", "*", "t")));
  EXPECT_FALSE(glob_match(star, cache::analysis_key("hash", "anyone", "t")));
  const auto brace = cache::user_analysis_pattern("{");
  EXPECT_TRUE(glob_match(brace, cache::analysis_key("hash", "{", "t")));
  EXPECT_FALSE(glob_match(brace, cache::analysis_key("hash", "{}", "t")));
}

}  // namespace
}  // namespace promptcache::store
