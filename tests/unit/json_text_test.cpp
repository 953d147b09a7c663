// Unit tests for promptcache::json_text (Boost.JSON's text with shortest round-trip doubles),
// find_unrepresentable_number (numbers a double cannot hold) and parse_exact (correctly rounded).
#include "promptcache/json_text.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace json = boost::json;
using promptcache::find_unrepresentable_number;
using promptcache::json_text;
using promptcache::json_text_append;
using promptcache::NumberProblem;
using promptcache::parse_exact;

// The double std::from_chars reads from all of `text`; a test failure if it reads less.
double read_double(std::string_view text) {
  double d = std::numeric_limits<double>::quiet_NaN();
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  EXPECT_TRUE(ec == std::errc()) << text;
  EXPECT_EQ(ptr, text.data() + text.size()) << text;
  return d;
}

// ---- doubles ----

TEST(JsonText, point_eight_is_written_as_0_8) {
  EXPECT_EQ(json::serialize(json::value(0.8)), "8E-1");  // what this replaces
  EXPECT_EQ(json_text(json::value(0.8)), "0.8");
  EXPECT_EQ(json_text(json::value(99.9)), "99.9");
}

TEST(JsonText, exponent_has_no_leading_zeros) {
  EXPECT_EQ(json_text(json::value(1e-7)), "1e-7");
  EXPECT_EQ(json_text(json::value(-1.5e-10)), "-1.5e-10");
  EXPECT_EQ(json_text(json::value(1e-100)), "1e-100");
  EXPECT_EQ(json_text(json::value(5e-324)), "5e-324");
}

TEST(JsonText, positive_exponent_keeps_its_plus_sign) {
  EXPECT_EQ(json_text(json::value(1e22)), "1e+22");
  EXPECT_EQ(json_text(json::value(1e+100)), "1e+100");
  EXPECT_EQ(json_text(json::value(std::numeric_limits<double>::max())), "1.7976931348623157e+308");
}

TEST(JsonText, integral_double_is_written_as_to_chars_gives_it) {
  EXPECT_EQ(json_text(json::value(3.0)), "3");
  EXPECT_EQ(json_text(json::value(-42.0)), "-42");
  EXPECT_EQ(json_text(json::value(0.0)), "0");
}

// to_chars would write 123456789012345683968: an integer literal past uint64, which Boost reads
// inexactly and find_unrepresentable_number refuses.
TEST(JsonText, integral_double_past_int64_and_uint64_is_written_in_scientific_form) {
  EXPECT_EQ(json_text(json::value(1.2345678901234568e20)), "1.2345678901234568e+20");
  EXPECT_EQ(json_text(json::value(0x1p64)), "1.8446744073709552e+19");
  EXPECT_EQ(json_text(json::value(-0x1p64)), "-1.8446744073709552e+19");
  EXPECT_EQ(json_text(json::value(-14643154117325182976.0)), "-1.4643154117325183e+19");
  EXPECT_EQ(json_text(json::value(0x1p63)), "9223372036854775808");    // uint64 holds it
  EXPECT_EQ(json_text(json::value(-0x1p63)), "-9223372036854775808");  // int64 holds it
  EXPECT_EQ(json_text(json::value(3e19)), "3e+19");
}

TEST(JsonText, its_own_text_is_never_refused_by_the_number_check) {
  std::mt19937_64 rng(5);
  int checked = 0;
  while (checked < 100000) {
    const double d = std::bit_cast<double>(rng());
    if (!std::isfinite(d)) continue;
    ++checked;
    const std::string text = json_text(json::value(d));
    ASSERT_FALSE(find_unrepresentable_number(text).has_value()) << text;
  }
}

TEST(JsonText, negative_zero_is_written_as_minus_0_and_reads_back_negative) {
  const std::string text = json_text(json::value(-0.0));
  EXPECT_EQ(text, "-0");
  const double back = read_double(text);
  EXPECT_EQ(back, 0.0);
  EXPECT_TRUE(std::signbit(back));
}

TEST(JsonText, point_one_plus_point_two_reads_back_as_the_same_double) {
  const double sum = 0.1 + 0.2;
  const std::string text = json_text(json::value(sum));
  EXPECT_EQ(text, "0.30000000000000004");
  EXPECT_EQ(std::bit_cast<std::uint64_t>(read_double(text)), std::bit_cast<std::uint64_t>(sum));
  boost::system::error_code ec;
  const json::value back = parse_exact(text, ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(back.as_double(), sum);
}

TEST(JsonText, non_finite_double_is_written_as_null) {
  const json::array a{std::numeric_limits<double>::infinity(),
                      -std::numeric_limits<double>::infinity(),
                      std::numeric_limits<double>::quiet_NaN()};
  EXPECT_EQ(json_text(a), "[null,null,null]");
}

TEST(JsonText, doubles_inside_containers_use_the_short_form) {
  const json::value v = json::parse(R"({"a":[0.8,1e-7,{"b":-1.5e-10}],"c":1E22,"d":2.5})");
  EXPECT_EQ(json_text(v), R"({"a":[0.8,1e-7,{"b":-1.5e-10}],"c":1e+22,"d":2.5})");
}

// Random bit patterns cover subnormals, huge and tiny exponents and 17-digit mantissas.
TEST(JsonText, random_finite_doubles_read_back_bit_for_bit) {
  std::mt19937_64 rng(20240611);
  int checked = 0;
  while (checked < 100000) {
    const double d = std::bit_cast<double>(rng());
    if (!std::isfinite(d)) continue;
    ++checked;
    const std::string text = json_text(json::value(d));
    ASSERT_EQ(std::bit_cast<std::uint64_t>(read_double(text)), std::bit_cast<std::uint64_t>(d))
        << text;
    // Valid JSON, and parse_exact gives the same number (an integral one may come back as an
    // integer, and -0 as the integer 0).
    boost::system::error_code ec;
    const json::value back = parse_exact(text, ec);
    ASSERT_FALSE(ec) << text;
    ASSERT_EQ(back.to_number<double>(), d) << text;
  }
}

// ---- integers, literals, structure ----

TEST(JsonText, integers_at_their_limits) {
  constexpr auto int64_min = std::numeric_limits<std::int64_t>::min();
  constexpr auto int64_max = std::numeric_limits<std::int64_t>::max();
  constexpr auto uint64_max = std::numeric_limits<std::uint64_t>::max();
  const json::array a{int64_min, int64_max, uint64_max, std::int64_t{0}, std::int64_t{-1}};
  EXPECT_EQ(json_text(a), "[-9223372036854775808,9223372036854775807,18446744073709551615,0,-1]");
  EXPECT_EQ(json_text(a), json::serialize(a));
}

TEST(JsonText, literals_and_empty_containers_match_boost) {
  const json::value v = json::parse(R"([null,true,false,[],{},"",[[]],{"":{}}])");
  EXPECT_EQ(json_text(v), json::serialize(v));
  EXPECT_EQ(json_text(json::object{}), "{}");
  EXPECT_EQ(json_text(json::array{}), "[]");
}

std::vector<std::string> tricky_strings() {
  std::vector<std::string> out = {
      "",
      "plain",
      "\"",
      "\\",
      "say \"hi\" \\ bye",
      "/slash/",
      std::string("\x7f"),
      "caf\xc3\xa9",                                   // é
      "\xe6\x97\xa5\xe6\x9c\xac",                      // 日本
      "\xf0\x9f\x98\x80 emoji",                        // 😀
      "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9",  // a ZWJ sequence
      "\xff\xfe not UTF-8",                            // Boost passes invalid bytes through too
      "\xe2\x80\xa8 line separator",                   // U+2028, not escaped by Boost
  };
  std::string all_controls;
  for (int c = 0; c < 0x20; ++c) {
    out.emplace_back(1, static_cast<char>(c));
    out.push_back("a" + std::string(1, static_cast<char>(c)) + "b");
    all_controls.push_back(static_cast<char>(c));
  }
  out.push_back(all_controls);
  out.push_back(all_controls + "\"\\\x7f" + all_controls);
  return out;
}

TEST(JsonText, string_escaping_matches_boost_serialize) {
  for (const std::string& s : tricky_strings()) {
    const json::value v(s);
    EXPECT_EQ(json_text(v), json::serialize(v)) << json::serialize(v);
  }
}

// Plain text is skipped 8 bytes at a time: every byte value at every offset of a longer string,
// next to its neighbours, must still be caught (or passed) as Boost does.
TEST(JsonText, every_byte_at_every_offset_of_a_long_string_matches_boost) {
  for (int byte = 0; byte < 256; ++byte) {
    for (std::size_t at = 0; at < 24; ++at) {
      std::string s(24, 'a');
      s[at] = static_cast<char>(byte);
      if (at + 1 < s.size()) s[at + 1] = static_cast<char>(byte ^ 1);
      const json::value v(s);
      ASSERT_EQ(json_text(v), json::serialize(v)) << "byte " << byte << " at " << at;
    }
  }
}

TEST(JsonText, control_characters_use_short_escapes_or_lower_case_hex) {
  EXPECT_EQ(json_text(json::value(std::string("\b\f\n\r\t", 5))), R"("\b\f\n\r\t")");
  EXPECT_EQ(json_text(json::value(std::string("\0\x1f\x0b", 3))), R"("\u0000\u001f\u000b")");
}

TEST(JsonText, keys_are_escaped_like_strings) {
  json::object o;
  for (const std::string& s : tricky_strings()) o[s] = s;
  EXPECT_EQ(json_text(o), json::serialize(o));
}

json::value random_value(std::mt19937_64& rng, int depth) {
  const int kind = static_cast<int>(rng() % (depth > 4 ? 6 : 8));
  auto random_string = [&] {
    std::string s(rng() % 40, ' ');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    return s;
  };
  switch (kind) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return static_cast<std::int64_t>(rng());
    case 3:
      return rng();
    case 4:
      return static_cast<std::int64_t>(rng() % 2000) - 1000;
    case 5:
      return json::string(random_string());
    case 6: {
      json::array a;
      for (std::size_t n = rng() % 6; n > 0; --n) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      json::object o;
      for (std::size_t n = rng() % 6; n > 0; --n) o[random_string()] = random_value(rng, depth + 1);
      return o;
    }
  }
}

TEST(JsonText, nested_values_without_doubles_match_boost_serialize) {
  const json::value doc = json::parse(
      R"({"user":{"id":"u\u00001","tags":["a","b\n",[1,-2,18446744073709551615]],"e":{}},)"
      R"("list":[{"k":null},{"k":true,"z":"\"q\""}],"n":-9223372036854775808})");
  EXPECT_EQ(json_text(doc), json::serialize(doc));

  std::mt19937_64 rng(7);
  for (int i = 0; i < 3000; ++i) {
    const json::value v = random_value(rng, 0);
    ASSERT_EQ(json_text(v), json::serialize(v));
  }
}

TEST(JsonText, object_and_array_overloads_agree_with_the_value_one) {
  const json::value v = json::parse(R"({"a":[1,0.5,"x"],"b":{"c":null}})");
  EXPECT_EQ(json_text(v.as_object()), json_text(v));
  EXPECT_EQ(json_text(v.as_object().at("a").as_array()), "[1,0.5,\"x\"]");
}

TEST(JsonText, append_adds_to_what_the_buffer_holds) {
  std::string out = "prefix:";
  json_text_append(out, json::value(0.8));
  out += ',';
  json_text_append(out, json::parse(R"({"a":[1e-7]})"));
  EXPECT_EQ(out, R"(prefix:0.8,{"a":[1e-7]})");
}

// ---- find_unrepresentable_number ----

TEST(NumberCheck, overflow_inside_a_nested_object_names_the_top_level_field) {
  const auto p = find_unrepresentable_number(R"({"quality_scores":{"a":1e400}})");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->field, "quality_scores");
  EXPECT_EQ(p->literal, "1e400");
  EXPECT_EQ(p->reason, "outside the range of a double");
}

TEST(NumberCheck, negative_overflow_is_refused) {
  const auto p = find_unrepresentable_number(R"({"score":-1e400})");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->field, "score");
  EXPECT_EQ(p->literal, "-1e400");
  EXPECT_EQ(p->reason, "outside the range of a double");
}

TEST(NumberCheck, underflow_to_zero_is_refused) {
  const auto p = find_unrepresentable_number(R"({"tiny":1e-400})");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->field, "tiny");
  EXPECT_EQ(p->literal, "1e-400");
  EXPECT_EQ(p->reason, "too small for a double (would read as 0)");
  EXPECT_TRUE(find_unrepresentable_number("[-0.0000001e-320]").has_value());
  // Below half the smallest subnormal: from_chars reads 0.
  EXPECT_TRUE(find_unrepresentable_number("[2e-324]").has_value());
}

TEST(NumberCheck, four_hundred_digit_integer_is_refused_and_its_literal_cut_to_40) {
  const std::string digits = "1" + std::string(399, '7');
  const auto p = find_unrepresentable_number(R"({"big":)" + digits + "}");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->field, "big");
  EXPECT_EQ(p->literal, digits.substr(0, 40) + "\u2026");
  EXPECT_EQ(p->reason, "integer too large to keep exactly");
}

TEST(NumberCheck, long_integer_deep_in_metadata_names_metadata) {
  const auto p =
      find_unrepresentable_number(R"({"metadata":{"x":[1,2,123456789012345678901234567890]}})");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->field, "metadata");
  EXPECT_EQ(p->literal, "123456789012345678901234567890");
  EXPECT_EQ(p->reason, "integer too large to keep exactly");
}

TEST(NumberCheck, zeros_in_any_spelling_are_fine) {
  for (const char* text : {"0.0", "0e5", "-0.0", "0", "-0", "0.000e-400", "0e308", "[0.0,0e5]"}) {
    EXPECT_FALSE(find_unrepresentable_number(text).has_value()) << text;
  }
}

TEST(NumberCheck, zero_with_an_exponent_past_308_is_refused_because_boost_reads_nan) {
  EXPECT_TRUE(std::isnan(json::parse("0e309").as_double()));
  EXPECT_EQ(json::serialize(json::parse("0e309")), "NaN");  // not JSON
  for (const char* text : {"0e309", "0E+999", "-0.0e400"}) {
    const auto p = find_unrepresentable_number(text);
    ASSERT_TRUE(p.has_value()) << text;
    EXPECT_EQ(p->literal, text);
    EXPECT_EQ(p->reason, "zero with an exponent too large to read (write 0)");
  }
}

TEST(NumberCheck, small_and_large_doubles_within_range_are_fine) {
  for (const char* text : {"1e-300", "-1e-300", "4.9e-324", "2.2250738585072014e-308",
                           "1.7976931348623157e308", "-1.7976931348623157e308", "1e308", "0.8"}) {
    EXPECT_FALSE(find_unrepresentable_number(text).has_value()) << text;
  }
}

TEST(NumberCheck, just_past_the_largest_double_is_refused) {
  const auto p = find_unrepresentable_number("1.7976931348623159e308");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->reason, "outside the range of a double");
}

TEST(NumberCheck, integers_at_the_int64_and_uint64_limits_are_fine) {
  EXPECT_FALSE(find_unrepresentable_number("-9223372036854775808").has_value());
  EXPECT_FALSE(find_unrepresentable_number("9223372036854775807").has_value());
  EXPECT_FALSE(find_unrepresentable_number("18446744073709551615").has_value());
  EXPECT_FALSE(find_unrepresentable_number(R"({"n":[18446744073709551615]})").has_value());
}

TEST(NumberCheck, integers_one_past_the_limits_are_refused) {
  const auto above = find_unrepresentable_number(R"({"n":18446744073709551616})");
  ASSERT_TRUE(above.has_value());
  EXPECT_EQ(above->literal, "18446744073709551616");
  EXPECT_EQ(above->reason, "integer too large to keep exactly");
  const auto below = find_unrepresentable_number("-9223372036854775809");
  ASSERT_TRUE(below.has_value());
  EXPECT_EQ(below->literal, "-9223372036854775809");
}

TEST(NumberCheck, a_large_number_written_as_a_double_is_fine) {
  EXPECT_FALSE(find_unrepresentable_number("1.8446744073709552e19").has_value());
  EXPECT_FALSE(find_unrepresentable_number("123456789012345678901234567890.0").has_value());
}

TEST(NumberCheck, number_at_top_level_has_no_field) {
  const auto p = find_unrepresentable_number("1e400");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->field, "");
  EXPECT_EQ(p->literal, "1e400");
}

TEST(NumberCheck, number_in_a_top_level_array_has_no_field) {
  const auto p = find_unrepresentable_number(R"([{"a":1e400}])");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->field, "");
}

TEST(NumberCheck, first_problem_wins_and_field_is_the_unescaped_key) {
  const auto p =
      find_unrepresentable_number(R"({"ok":{"a":1},"q\"uote\u00e9":[1e-999],"later":1e999})");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->field, "q\"uote\xc3\xa9");
  EXPECT_EQ(p->literal, "1e-999");
}

TEST(NumberCheck, valid_documents_without_problems_give_nullopt) {
  for (const char* text : {"{}", "[]", "null", R"({"a":[1,2.5,-3e10,"1e400"],"1e400":true})",
                           R"({"s":"123456789012345678901234567890"})"}) {
    EXPECT_FALSE(find_unrepresentable_number(text).has_value()) << text;
  }
}

TEST(NumberCheck, malformed_text_gives_nullopt_even_around_a_bad_number) {
  for (const char* text : {"", "{", R"({"a":1e400)", "[1e400]]", "1e400 x", R"({"a":1e400,})",
                           "[01]", "[1e400,]", "nul"}) {
    EXPECT_FALSE(find_unrepresentable_number(text).has_value()) << text;
  }
}

TEST(NumberCheck, an_exponent_boost_cannot_hold_is_a_parse_error_not_ours) {
  const std::string text = "[1e99999999999]";
  boost::system::error_code ec;
  (void)json::parse(text, ec);
  EXPECT_TRUE(ec);
  EXPECT_FALSE(find_unrepresentable_number(text).has_value());
}

// ---- parse_exact ----

TEST(ParseExact, boost_parse_misrounds_8_77e89_and_parse_exact_does_not) {
  const double exact = read_double("8.77e89");
  EXPECT_NE(json::parse("8.77e89").as_double(), exact);
  boost::system::error_code ec;
  EXPECT_EQ(parse_exact("8.77e89", ec).as_double(), exact);
  EXPECT_FALSE(ec);
}

TEST(ParseExact, random_decimal_literals_read_as_from_chars_reads_them) {
  std::mt19937_64 rng(99);
  std::string text = "[";
  std::vector<std::string> literals;
  for (int i = 0; i < 20000; ++i) {
    std::string lit = rng() % 2 ? "-" : "";
    lit += static_cast<char>('1' + rng() % 9);
    const int digits = static_cast<int>(rng() % 17);
    if (digits > 0) lit += '.';
    for (int d = 0; d < digits; ++d) lit += static_cast<char>('0' + rng() % 10);
    lit += 'e' + std::to_string(static_cast<int>(rng() % 600) - 300);
    text += (i > 0 ? "," : "") + std::string(i % 2 ? R"({"k":)" : "") + lit + (i % 2 ? "}" : "");
    literals.push_back(std::move(lit));
  }
  text += "]";
  boost::system::error_code ec;
  const json::value v = parse_exact(text, ec);
  ASSERT_FALSE(ec);
  const json::array& a = v.as_array();
  ASSERT_EQ(a.size(), literals.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const json::value& n = i % 2 ? a[i].as_object().at("k") : a[i];
    ASSERT_EQ(std::bit_cast<std::uint64_t>(n.as_double()),
              std::bit_cast<std::uint64_t>(read_double(literals[i])))
        << literals[i];
  }
}

TEST(ParseExact, same_value_as_boost_parse_when_no_doubles_are_involved) {
  const std::string text =
      R"({"a":[1,-2,18446744073709551615,-9223372036854775808,true,null,"s\u0000\"\\"],)"
      R"("b":{"c":{},"d":[]},"\u00e9":"x"})";
  boost::system::error_code ec;
  const json::value v = parse_exact(text, ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(v, json::parse(text));
}

TEST(ParseExact, integer_overflow_becomes_the_nearest_double) {
  boost::system::error_code ec;
  const json::value v = parse_exact("123456789012345678901234567890", ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(v.as_double(), 1.2345678901234568e29);
}

TEST(ParseExact, out_of_range_literals_read_as_infinity_or_zero) {
  boost::system::error_code ec;
  const json::value v = parse_exact("[1e400,-1e400,1e-400,-1e-400]", ec);
  ASSERT_FALSE(ec);
  const json::array& a = v.as_array();
  EXPECT_EQ(a[0].as_double(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(a[1].as_double(), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(a[2].as_double(), 0.0);
  EXPECT_EQ(a[3].as_double(), 0.0);
  EXPECT_TRUE(std::signbit(a[3].as_double()));
}

TEST(ParseExact, zero_with_a_large_exponent_reads_as_zero_not_nan) {
  boost::system::error_code ec;
  const json::value v = parse_exact("[0e309,-0E+999]", ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(v.as_array()[0].as_double(), 0.0);
  EXPECT_TRUE(std::signbit(v.as_array()[1].as_double()));
  EXPECT_EQ(json_text(v), "[0,-0]");
}

TEST(ParseExact, errors_are_the_ones_boost_parse_reports) {
  for (const char* text :
       {"", "[1,2", "[1] x", R"({"a":})", "nul", "[01]", "[1e99999999999]", "\"\x01\""}) {
    boost::system::error_code exact_ec;
    const json::value v = parse_exact(text, exact_ec);
    boost::system::error_code boost_ec;
    (void)json::parse(text, boost_ec);
    EXPECT_TRUE(exact_ec) << text;
    EXPECT_EQ(exact_ec, boost_ec) << text;
    EXPECT_TRUE(v.is_null()) << text;
  }
}

TEST(ParseExact, error_code_is_cleared_on_success) {
  boost::system::error_code ec = json::error::syntax;
  const json::value v = parse_exact("[0.8]", ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(json_text(v), "[0.8]");
}

TEST(ParseExact, value_lives_in_the_given_storage) {
  const json::storage_ptr sp = json::make_shared_resource<json::monotonic_resource>();
  boost::system::error_code ec;
  const json::value v = parse_exact(R"({"a":[0.1,"long enough to allocate a string"]})", ec, sp);
  ASSERT_FALSE(ec);
  EXPECT_EQ(v.storage(), sp);
  EXPECT_EQ(v.as_object().at("a").as_array()[1].as_string().storage(), sp);
}

}  // namespace
