// Unit tests for the sans-IO RESP2/RESP3 pull parser (promptcache::resp::Parser).
#include "promptcache/resp/parser.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "promptcache/error.hpp"

// Counts heap allocations so a test can prove the parser allocates nothing. Replacing the
// global operator new is program-wide; it only counts and forwards to malloc/free. noinline
// keeps GCC's -Wmismatched-new-delete from seeing free() on a pointer from operator new.
namespace {
std::atomic<std::size_t> g_allocations{0};
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

using namespace std::string_view_literals;
using promptcache::make_error_code;
using promptcache::resp::Node;
using promptcache::resp::Parser;
using promptcache::resp::ParserLimits;
using promptcache::resp::Type;
namespace resp = promptcache::resp;
using error = promptcache::error;

// An owned copy of a Node: the node's views die with the buffer they point into.
struct Rec {
  Type type = Type::null;
  std::uint32_t depth = 0;
  std::uint64_t aggregate_size = 0;
  std::string value;
  std::string format;

  bool operator==(const Rec&) const = default;
};

std::string escaped(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const Rec& r) {
  os << "{" << resp::to_string(r.type) << " depth=" << r.depth << " size=" << r.aggregate_size
     << " value=\"" << escaped(r.value) << "\"";
  if (!r.format.empty()) os << " format=\"" << r.format << "\"";
  return os << "}";
}

Rec scalar(Type type, std::uint32_t depth, std::string_view value) {
  return Rec{type, depth, 0, std::string(value), {}};
}
Rec aggregate(Type type, std::uint32_t depth, std::uint64_t size) {
  return Rec{type, depth, size, {}, {}};
}
Rec null_node(std::uint32_t depth) {
  return Rec{Type::null, depth, 0, {}, {}};
}
Rec verbatim(std::uint32_t depth, std::string_view format, std::string_view value) {
  return Rec{Type::verbatim_string, depth, 0, std::string(value), std::string(format)};
}

Rec to_rec(const Node& n) {
  return Rec{n.type, n.depth, n.aggregate_size, std::string(n.value), std::string(n.format)};
}

bool within(std::string_view inner, std::string_view outer) {
  if (inner.empty()) return true;
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

struct Outcome {
  std::vector<Rec> nodes;
  std::vector<bool> done_after;  // parser.done() right after each node was returned
  boost::system::error_code ec;
  bool failed = false;
  std::size_t unconsumed = 0;  // bytes left in the buffer at the end
};

// Feeds `chunks` one after another into an accumulating buffer, drops consumed bytes and
// pulls nodes until the parser needs more; stops at the first error.
Outcome feed_chunks(Parser& parser, const std::vector<std::string_view>& chunks) {
  Outcome out;
  std::string buffer;
  for (std::string_view chunk : chunks) {
    buffer.append(chunk);
    for (;;) {
      std::size_t used = 12345;
      std::optional<Node> node = parser.next(buffer, used, out.ec);
      EXPECT_LE(used, buffer.size());
      if (!node) {
        // An error may leave `used` set (see failing_call_consumes_nothing_...); only a
        // call that needs more bytes is checked here.
        if (!out.ec) {
          EXPECT_EQ(used, 0u) << "nullopt without error must not consume";
        }
        break;
      }
      EXPECT_GT(used, 0u) << "a node must consume bytes";
      EXPECT_TRUE(within(node->value, std::string_view(buffer).substr(0, used)));
      EXPECT_TRUE(within(node->format, std::string_view(buffer).substr(0, used)));
      out.nodes.push_back(to_rec(*node));
      out.done_after.push_back(parser.done());
      buffer.erase(0, used);
    }
    if (out.ec) break;
  }
  out.failed = parser.failed();
  out.unconsumed = buffer.size();
  return out;
}

Outcome feed_whole(std::string_view input, ParserLimits limits = {}) {
  Parser parser(limits);
  return feed_chunks(parser, {input});
}

Outcome feed_bytewise(std::string_view input, ParserLimits limits = {}) {
  std::vector<std::string_view> chunks;
  for (std::size_t i = 0; i < input.size(); ++i) chunks.push_back(input.substr(i, 1));
  Parser parser(limits);
  return feed_chunks(parser, chunks);
}

Outcome feed_split(std::string_view input, std::size_t at, ParserLimits limits = {}) {
  Parser parser(limits);
  return feed_chunks(parser, {input.substr(0, at), input.substr(at)});
}

// Asserts that `input` parses completely, with no error, into exactly `expected`.
void expect_nodes(std::string_view input, const std::vector<Rec>& expected) {
  SCOPED_TRACE("input: \"" + escaped(input) + "\"");
  const Outcome out = feed_whole(input);
  EXPECT_FALSE(out.ec) << out.ec.message();
  EXPECT_FALSE(out.failed);
  EXPECT_EQ(out.unconsumed, 0u);
  EXPECT_EQ(out.nodes, expected);
}

// Asserts that `input` fails with `e`, fed whole and byte by byte, and that the parser then
// stays failed on later calls, even with valid input.
void expect_failure(std::string_view input, error e, ParserLimits limits = {}) {
  SCOPED_TRACE("input: \"" + escaped(input) + "\"");
  {
    Parser parser(limits);
    const Outcome out = feed_chunks(parser, {input});
    EXPECT_EQ(out.ec, make_error_code(e)) << out.ec.message();
    EXPECT_TRUE(parser.failed());
    if (!parser.failed()) return;  // the checks below would only repeat the failure
    EXPECT_FALSE(parser.done());
    for (int i = 0; i < 3; ++i) {
      boost::system::error_code again;
      std::size_t used = 99;
      EXPECT_FALSE(parser.next("+OK\r\n", used, again).has_value());
      EXPECT_TRUE(again) << "a failed parser must keep failing";
      EXPECT_EQ(used, 0u);
      EXPECT_TRUE(parser.failed());
    }
  }
  {
    SCOPED_TRACE("fed byte by byte");
    const Outcome out = feed_bytewise(input, limits);
    EXPECT_EQ(out.ec, make_error_code(e)) << out.ec.message();
    EXPECT_TRUE(out.failed);
  }
}

// ---------------------------------------------------------------------------------------
// Every type
// ---------------------------------------------------------------------------------------

TEST(RespParser, simple_string_yields_its_text_without_type_byte_or_crlf) {
  expect_nodes("+OK\r\n", {scalar(Type::simple_string, 0, "OK")});
  expect_nodes("+\r\n", {scalar(Type::simple_string, 0, "")});
  expect_nodes("+hello world\r\n", {scalar(Type::simple_string, 0, "hello world")});
}

TEST(RespParser, simple_error_yields_its_message) {
  expect_nodes("-ERR unknown command 'foo'\r\n",
               {scalar(Type::simple_error, 0, "ERR unknown command 'foo'")});
  expect_nodes("-WRONGTYPE Operation against a key\r\n",
               {scalar(Type::simple_error, 0, "WRONGTYPE Operation against a key")});
}

TEST(RespParser, integer_accepts_zero_negative_plus_sign_and_int64_bounds) {
  struct Case {
    std::string_view wire;
    std::string_view text;
    std::int64_t value;
  };
  const Case cases[] = {
      {":0\r\n", "0", 0},
      {":1000\r\n", "1000", 1000},
      {":-42\r\n", "-42", -42},
      {":+7\r\n", "+7", 7},
      {":9223372036854775807\r\n", "9223372036854775807", std::numeric_limits<std::int64_t>::max()},
      {":-9223372036854775808\r\n", "-9223372036854775808",
       std::numeric_limits<std::int64_t>::min()},
  };
  for (const Case& c : cases) {
    expect_nodes(c.wire, {scalar(Type::number, 0, c.text)});
    EXPECT_EQ(resp::to_int64(c.text), c.value) << c.text;
  }
}

TEST(RespParser, blob_string_yields_exactly_the_announced_bytes) {
  expect_nodes("$5\r\nhello\r\n", {scalar(Type::blob_string, 0, "hello")});
}

TEST(RespParser, empty_blob_string_is_an_empty_blob_not_null) {
  expect_nodes("$0\r\n\r\n", {scalar(Type::blob_string, 0, "")});
}

TEST(RespParser, blob_string_keeps_binary_bytes_including_nul_and_crlf) {
  const std::string_view body = "a\r\nb\0\xff\r\n"sv;  // 8 bytes, ends in CRLF itself
  ASSERT_EQ(body.size(), 8u);
  const std::string wire = "$8\r\n" + std::string(body) + "\r\n";
  expect_nodes(wire, {scalar(Type::blob_string, 0, body)});
  const std::string only_crlf = "$2\r\n\r\n\r\n";
  expect_nodes(only_crlf, {scalar(Type::blob_string, 0, "\r\n")});
}

TEST(RespParser, resp2_null_bulk_string_is_null) {
  expect_nodes("$-1\r\n", {null_node(0)});
}

TEST(RespParser, resp2_null_array_is_null) {
  expect_nodes("*-1\r\n", {null_node(0)});
}

TEST(RespParser, resp3_null_is_null_with_empty_value) {
  expect_nodes("_\r\n", {null_node(0)});
}

TEST(RespParser, double_accepts_decimal_exponent_inf_and_nan) {
  expect_nodes(",3.14\r\n", {scalar(Type::double_type, 0, "3.14")});
  expect_nodes(",10\r\n", {scalar(Type::double_type, 0, "10")});
  expect_nodes(",-1.5e-3\r\n", {scalar(Type::double_type, 0, "-1.5e-3")});
  expect_nodes(",1E10\r\n", {scalar(Type::double_type, 0, "1E10")});
  expect_nodes(",inf\r\n", {scalar(Type::double_type, 0, "inf")});
  expect_nodes(",-inf\r\n", {scalar(Type::double_type, 0, "-inf")});
  expect_nodes(",nan\r\n", {scalar(Type::double_type, 0, "nan")});

  EXPECT_DOUBLE_EQ(*resp::to_double("3.14"), 3.14);
  EXPECT_DOUBLE_EQ(*resp::to_double("-1.5e-3"), -1.5e-3);
  EXPECT_DOUBLE_EQ(*resp::to_double("1E10"), 1e10);
  const double inf = *resp::to_double("inf");
  EXPECT_TRUE(std::isinf(inf) && inf > 0);
  const double ninf = *resp::to_double("-inf");
  EXPECT_TRUE(std::isinf(ninf) && ninf < 0);
  EXPECT_TRUE(std::isnan(*resp::to_double("nan")));
}

TEST(RespParser, boolean_true_and_false) {
  expect_nodes("#t\r\n", {scalar(Type::boolean, 0, "t")});
  expect_nodes("#f\r\n", {scalar(Type::boolean, 0, "f")});
}

TEST(RespParser, blob_error_yields_its_message) {
  expect_nodes("!21\r\nSYNTAX invalid syntax\r\n",
               {scalar(Type::blob_error, 0, "SYNTAX invalid syntax")});
  expect_nodes("!0\r\n\r\n", {scalar(Type::blob_error, 0, "")});
}

TEST(RespParser, verbatim_string_value_excludes_format_prefix_and_format_is_three_letters) {
  expect_nodes("=15\r\ntxt:Some string\r\n", {verbatim(0, "txt", "Some string")});
  expect_nodes("=4\r\nmkd:\r\n", {verbatim(0, "mkd", "")});
  expect_nodes("=10\r\ntxt:a\r\nb\r\n\r\n", {verbatim(0, "txt", "a\r\nb\r\n")});
}

TEST(RespParser, big_number_accepts_arbitrary_digits_and_sign) {
  expect_nodes("(3492890328409238509324850943850943825024385\r\n",
               {scalar(Type::big_number, 0, "3492890328409238509324850943850943825024385")});
  expect_nodes("(-123\r\n", {scalar(Type::big_number, 0, "-123")});
  expect_nodes("(+9\r\n", {scalar(Type::big_number, 0, "+9")});
}

TEST(RespParser, array_yields_header_then_children_at_depth_one) {
  expect_nodes("*3\r\n:1\r\n:2\r\n:3\r\n",
               {aggregate(Type::array, 0, 3), scalar(Type::number, 1, "1"),
                scalar(Type::number, 1, "2"), scalar(Type::number, 1, "3")});
}

TEST(RespParser, array_may_mix_element_types_including_nulls) {
  expect_nodes("*4\r\n$3\r\nfoo\r\n$-1\r\n_\r\n+bar\r\n",
               {aggregate(Type::array, 0, 4), scalar(Type::blob_string, 1, "foo"), null_node(1),
                null_node(1), scalar(Type::simple_string, 1, "bar")});
}

TEST(RespParser, map_aggregate_size_counts_pairs_and_holds_twice_as_many_children) {
  const std::string_view wire = "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n";
  expect_nodes(wire, {aggregate(Type::map, 0, 2), scalar(Type::simple_string, 1, "first"),
                      scalar(Type::number, 1, "1"), scalar(Type::simple_string, 1, "second"),
                      scalar(Type::number, 1, "2")});
  const Outcome out = feed_whole(wire);
  EXPECT_EQ(out.done_after, (std::vector<bool>{false, false, false, false, true}));
}

TEST(RespParser, set_yields_its_members) {
  expect_nodes("~2\r\n+a\r\n+b\r\n",
               {aggregate(Type::set, 0, 2), scalar(Type::simple_string, 1, "a"),
                scalar(Type::simple_string, 1, "b")});
}

TEST(RespParser, push_yields_its_members) {
  expect_nodes(">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n",
               {aggregate(Type::push, 0, 3), scalar(Type::blob_string, 1, "message"),
                scalar(Type::blob_string, 1, "chan"), scalar(Type::blob_string, 1, "hello")});
}

TEST(RespParser, root_attribute_precedes_the_reply_and_reply_is_again_at_depth_zero) {
  // The example from the RESP3 specification.
  const std::string_view wire =
      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
      "*2\r\n:2039123\r\n:9543892\r\n";
  expect_nodes(wire,
               {aggregate(Type::attribute, 0, 1), scalar(Type::simple_string, 1, "key-popularity"),
                aggregate(Type::map, 1, 2), scalar(Type::blob_string, 2, "a"),
                scalar(Type::double_type, 2, "0.1923"), scalar(Type::blob_string, 2, "b"),
                scalar(Type::double_type, 2, "0.0012"), aggregate(Type::array, 0, 2),
                scalar(Type::number, 1, "2039123"), scalar(Type::number, 1, "9543892")});
}

TEST(RespParser, done_stays_false_after_a_root_attribute_until_the_reply_it_annotates) {
  // An attribute is not a reply: done() waits for the value that follows it.
  const Outcome out = feed_whole("|1\r\n+ttl\r\n:3600\r\n+OK\r\n");
  ASSERT_FALSE(out.ec);
  EXPECT_EQ(out.done_after, (std::vector<bool>{false, false, false, true}));
  const Outcome empty = feed_whole("|0\r\n+OK\r\n");
  ASSERT_FALSE(empty.ec);
  EXPECT_EQ(empty.nodes, (std::vector<Rec>{aggregate(Type::attribute, 0, 0),
                                           scalar(Type::simple_string, 0, "OK")}));
  EXPECT_EQ(empty.done_after, (std::vector<bool>{false, true}));
  const Outcome array = feed_whole("|0\r\n*1\r\n:1\r\n");
  ASSERT_FALSE(array.ec);
  EXPECT_EQ(array.done_after, (std::vector<bool>{false, false, true}));
}

TEST(RespParser, attribute_nested_in_array_is_not_counted_as_an_element_of_the_array) {
  const std::string_view wire = "*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n+next\r\n";
  expect_nodes(wire, {aggregate(Type::array, 0, 2), scalar(Type::number, 1, "1"),
                      aggregate(Type::attribute, 1, 1), scalar(Type::simple_string, 2, "ttl"),
                      scalar(Type::number, 2, "3600"), scalar(Type::number, 1, "2"),
                      scalar(Type::simple_string, 0, "next")});
  const Outcome out = feed_whole(wire);
  EXPECT_EQ(out.done_after, (std::vector<bool>{false, false, false, false, false, true, true}));
}

TEST(RespParser, attribute_as_first_element_of_array_is_not_counted) {
  expect_nodes("*1\r\n|1\r\n+a\r\n+b\r\n:7\r\n",
               {aggregate(Type::array, 0, 1), aggregate(Type::attribute, 1, 1),
                scalar(Type::simple_string, 2, "a"), scalar(Type::simple_string, 2, "b"),
                scalar(Type::number, 1, "7")});
}

TEST(RespParser, empty_nested_attribute_is_not_counted_as_an_element) {
  const std::string_view wire = "*1\r\n|0\r\n:7\r\n";
  expect_nodes(wire, {aggregate(Type::array, 0, 1), aggregate(Type::attribute, 1, 0),
                      scalar(Type::number, 1, "7")});
  EXPECT_EQ(feed_whole(wire).done_after, (std::vector<bool>{false, false, true}));
}

TEST(RespParser, empty_aggregates_complete_immediately) {
  for (auto [wire, type] : {std::pair{"*0\r\n"sv, Type::array}, std::pair{"%0\r\n"sv, Type::map},
                            std::pair{"~0\r\n"sv, Type::set}, std::pair{">0\r\n"sv, Type::push}}) {
    expect_nodes(wire, {aggregate(type, 0, 0)});
    EXPECT_EQ(feed_whole(wire).done_after, std::vector<bool>{true}) << wire;
  }
  const std::string_view nested = "*3\r\n*0\r\n%0\r\n~0\r\n+after\r\n";
  expect_nodes(nested, {aggregate(Type::array, 0, 3), aggregate(Type::array, 1, 0),
                        aggregate(Type::map, 1, 0), aggregate(Type::set, 1, 0),
                        scalar(Type::simple_string, 0, "after")});
  EXPECT_EQ(feed_whole(nested).done_after, (std::vector<bool>{false, false, false, true, true}));
}

TEST(RespParser, nested_aggregates_report_the_depth_of_every_node) {
  const std::string_view wire =
      "*2\r\n*2\r\n:1\r\n*1\r\n+deep\r\n%1\r\n+k\r\n~2\r\n#t\r\n>1\r\n_\r\n";
  expect_nodes(wire, {aggregate(Type::array, 0, 2), aggregate(Type::array, 1, 2),
                      scalar(Type::number, 2, "1"), aggregate(Type::array, 2, 1),
                      scalar(Type::simple_string, 3, "deep"), aggregate(Type::map, 1, 1),
                      scalar(Type::simple_string, 2, "k"), aggregate(Type::set, 2, 2),
                      scalar(Type::boolean, 3, "t"), aggregate(Type::push, 3, 1), null_node(4)});
  const Outcome out = feed_whole(wire);
  std::vector<bool> expected(out.nodes.size(), false);
  expected.back() = true;
  EXPECT_EQ(out.done_after, expected);
}

TEST(RespParser, consumed_counts_exactly_the_bytes_of_one_element) {
  Parser parser;
  boost::system::error_code ec;
  std::size_t used = 0;
  const std::string_view wire = "*2\r\n$3\r\nfoo\r\n:12\r\n";
  ASSERT_TRUE(parser.next(wire, used, ec));
  EXPECT_EQ(used, 4u);
  ASSERT_TRUE(parser.next(wire.substr(4), used, ec));
  EXPECT_EQ(used, 9u);
  ASSERT_TRUE(parser.next(wire.substr(13), used, ec));
  EXPECT_EQ(used, 5u);
  EXPECT_FALSE(ec);
  EXPECT_TRUE(parser.done());
}

TEST(RespParser, empty_input_returns_nullopt_without_error) {
  Parser parser;
  boost::system::error_code ec;
  std::size_t used = 7;
  EXPECT_FALSE(parser.next({}, used, ec));
  EXPECT_FALSE(ec);
  EXPECT_EQ(used, 0u);
  EXPECT_FALSE(parser.failed());
}

TEST(RespParser, incomplete_element_returns_nullopt_and_consumes_nothing) {
  for (std::string_view partial : {"+OK"sv, "+OK\r"sv, "$5\r\nhel"sv, "$5\r\nhello"sv,
                                   "$5\r\nhello\r"sv, "*2"sv, ":12"sv, "$"sv}) {
    Parser parser;
    boost::system::error_code ec;
    std::size_t used = 7;
    EXPECT_FALSE(parser.next(partial, used, ec)) << escaped(partial);
    EXPECT_FALSE(ec) << escaped(partial);
    EXPECT_EQ(used, 0u);
    EXPECT_FALSE(parser.failed());
  }
}

// ---------------------------------------------------------------------------------------
// Every split point
// ---------------------------------------------------------------------------------------

std::vector<std::string> samples() {
  std::vector<std::string> s = {
      "+OK\r\n",
      "-ERR bad\r\n",
      ":-9223372036854775808\r\n",
      "$5\r\nhello\r\n",
      "$0\r\n\r\n",
      std::string("$8\r\na\r\nb\0\xff\r\n\r\n"sv),
      "$-1\r\n",
      "*-1\r\n",
      "_\r\n",
      ",-1.5e-3\r\n",
      ",inf\r\n",
      "#t\r\n",
      "!21\r\nSYNTAX invalid syntax\r\n",
      "=15\r\ntxt:Some string\r\n",
      "(3492890328409238509324850943850943825024385\r\n",
      "*3\r\n:1\r\n$2\r\n\r\n\r\n_\r\n",
      "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
      "~2\r\n+a\r\n+b\r\n",
      ">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n",
      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
      "*2\r\n:2039123\r\n:9543892\r\n",
      "*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n",
      "*3\r\n*0\r\n%0\r\n~0\r\n",
      "*2\r\n*2\r\n:1\r\n*1\r\n+deep\r\n%1\r\n+k\r\n~2\r\n#t\r\n>1\r\n_\r\n",
      "$300\r\n" + std::string(300, 'x') + "\r\n",
  };
  std::string all;
  for (const std::string& m : s) all += m;
  s.push_back(all);  // every message back to back in one buffer
  return s;
}

TEST(RespParser, every_sample_parses_completely_when_fed_whole) {
  for (const std::string& wire : samples()) {
    SCOPED_TRACE("input: \"" + escaped(wire) + "\"");
    const Outcome out = feed_whole(wire);
    EXPECT_FALSE(out.ec);
    EXPECT_FALSE(out.failed);
    EXPECT_EQ(out.unconsumed, 0u);
    ASSERT_FALSE(out.nodes.empty());
    EXPECT_TRUE(out.done_after.back());
  }
}

TEST(RespParser, every_sample_fed_byte_by_byte_yields_same_nodes_as_fed_whole) {
  for (const std::string& wire : samples()) {
    SCOPED_TRACE("input: \"" + escaped(wire) + "\"");
    const Outcome whole = feed_whole(wire);
    const Outcome bytes = feed_bytewise(wire);
    EXPECT_FALSE(bytes.ec);
    EXPECT_EQ(bytes.unconsumed, 0u);
    EXPECT_EQ(bytes.nodes, whole.nodes);
    EXPECT_EQ(bytes.done_after, whole.done_after);
  }
}

TEST(RespParser, every_sample_split_at_every_index_yields_same_nodes_as_fed_whole) {
  for (const std::string& wire : samples()) {
    const Outcome whole = feed_whole(wire);
    for (std::size_t i = 0; i <= wire.size(); ++i) {
      SCOPED_TRACE("split at " + std::to_string(i) + " of \"" + escaped(wire) + "\"");
      const Outcome split = feed_split(wire, i);
      EXPECT_FALSE(split.ec);
      EXPECT_EQ(split.unconsumed, 0u);
      EXPECT_EQ(split.nodes, whole.nodes);
      EXPECT_EQ(split.done_after, whole.done_after);
      if (::testing::Test::HasFailure()) return;  // one split's report is enough
    }
  }
}

TEST(RespParser, messages_back_to_back_in_one_buffer_are_parsed_in_order) {
  const std::string_view wire = "+OK\r\n:5\r\n*2\r\n$1\r\na\r\n#f\r\n_\r\n";
  expect_nodes(wire, {scalar(Type::simple_string, 0, "OK"), scalar(Type::number, 0, "5"),
                      aggregate(Type::array, 0, 2), scalar(Type::blob_string, 1, "a"),
                      scalar(Type::boolean, 1, "f"), null_node(0)});
  EXPECT_EQ(feed_whole(wire).done_after, (std::vector<bool>{true, true, false, false, true, true}));
}

// ---------------------------------------------------------------------------------------
// done()
// ---------------------------------------------------------------------------------------

TEST(RespParser, done_is_true_on_a_fresh_parser) {
  Parser parser;
  EXPECT_TRUE(parser.done());
  EXPECT_FALSE(parser.failed());
}

TEST(RespParser, done_is_true_exactly_after_each_complete_top_level_value) {
  // Every sample except those with a root attribute (see the attribute test above), each
  // alone and all back to back.
  std::vector<std::string> wires;
  std::string all;
  const std::vector<std::string> list = samples();
  for (std::size_t i = 0; i + 1 < list.size(); ++i) {
    if (list[i].front() == '|') continue;
    wires.push_back(list[i]);
    all += list[i];
  }
  wires.push_back(all);
  for (const std::string& wire : wires) {
    SCOPED_TRACE("input: \"" + escaped(wire) + "\"");
    const Outcome out = feed_whole(wire);
    ASSERT_FALSE(out.ec);
    // Recompute independently: a node ends a message when, after it, no aggregate is open.
    struct Open {
      std::uint64_t remaining;
      bool attribute;
    };
    std::vector<Open> open;
    std::vector<bool> expected;
    for (const Rec& r : out.nodes) {
      const bool attribute = r.type == Type::attribute;
      ASSERT_FALSE(attribute && r.depth == 0) << "sample must not have a root attribute";
      ASSERT_EQ(r.depth, open.size()) << r;
      const bool pairs = r.type == Type::map || attribute;
      const std::uint64_t children = pairs ? 2 * r.aggregate_size : r.aggregate_size;
      if (resp::is_aggregate(r.type) && children > 0) {
        open.push_back({children, attribute});
        expected.push_back(false);
        continue;
      }
      if (!attribute) {  // an empty nested attribute is not an element of its parent
        while (!open.empty()) {
          if (--open.back().remaining > 0) break;
          const bool was_attribute = open.back().attribute;
          open.pop_back();
          if (was_attribute) break;  // nor is a complete one
        }
      }
      expected.push_back(open.empty());
    }
    EXPECT_EQ(out.done_after, expected);
    EXPECT_TRUE(open.empty());
  }
}

TEST(RespParser, done_is_false_while_an_aggregate_is_incomplete) {
  Parser parser;
  const Outcome out = feed_chunks(parser, {"*2\r\n:1\r\n"});
  ASSERT_EQ(out.nodes.size(), 2u);
  EXPECT_FALSE(parser.done());
  const Outcome rest = feed_chunks(parser, {":2\r\n"});
  ASSERT_EQ(rest.nodes.size(), 1u);
  EXPECT_TRUE(parser.done());
}

TEST(RespParser, done_is_false_once_the_parser_has_failed) {
  Parser parser;
  const Outcome out = feed_chunks(parser, {"?\r\n"});
  ASSERT_TRUE(out.ec);
  EXPECT_FALSE(parser.done());
}

// ---------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------

TEST(RespParser, unknown_type_byte_is_protocol_error) {
  for (std::string_view wire : {"?foo\r\n"sv, "X\r\n"sv, "@1\r\n"sv, " +OK\r\n"sv, "a\r\n"sv,
                                ";4\r\nHell\r\n"sv, "\0\r\n"sv, "\xff\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, bad_integer_is_protocol_error) {
  for (std::string_view wire :
       {":\r\n"sv, ":abc\r\n"sv, ":12a\r\n"sv, ": 1\r\n"sv, ":1 \r\n"sv, ":1.5\r\n"sv, ":-\r\n"sv,
        ":+\r\n"sv, ":--1\r\n"sv, ":++1\r\n"sv, ":0x10\r\n"sv, ":1e3\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, integer_with_plus_followed_by_minus_sign_is_protocol_error) {
  // "+-5" is not an integer; to_int64 strips the '+' and then from_chars accepts "-5".
  expect_failure(":+-5\r\n", error::protocol_error);
}

TEST(RespParser, integer_overflow_is_protocol_error) {
  for (std::string_view wire : {":9223372036854775808\r\n"sv, ":-9223372036854775809\r\n"sv,
                                ":99999999999999999999999\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, negative_length_other_than_resp2_null_is_protocol_error) {
  for (std::string_view wire :
       {"$-2\r\n"sv, "$-0\r\n"sv, "$-10\r\nabc\r\n"sv, "!-1\r\n"sv, "=-1\r\n"sv, "*-2\r\n"sv,
        "%-1\r\n"sv, "~-1\r\n"sv, ">-1\r\n"sv, "|-1\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, blob_body_not_followed_by_crlf_is_protocol_error) {
  for (std::string_view wire :
       {"$3\r\nabcd\r\n"sv, "$3\r\nab\r\n\r\n"sv, "$3\r\nabc\rx"sv, "$3\r\nabc\n\r"sv, "$0\r\nxx"sv,
        "!3\r\nabcXY"sv, "=5\r\ntxt:xYY"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, carriage_return_not_followed_by_line_feed_is_protocol_error) {
  for (std::string_view wire :
       {"+OK\rX\r\n"sv, ":1\r:2\r\n"sv, "$3\rabc\r\n"sv, "*1\r*\r\n"sv, "+\r\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, bare_line_feed_inside_a_line_is_protocol_error) {
  for (std::string_view wire : {"+O\nK\r\n"sv, ":1\n\r\n"sv, "$\n3\r\nabc\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, streamed_strings_and_aggregates_are_unsupported_protocol_error) {
  for (std::string_view wire :
       {"$?\r\n;4\r\nHell\r\n;0\r\n"sv, "!?\r\n"sv, "=?\r\n"sv, "*?\r\n:1\r\n.\r\n"sv, "%?\r\n"sv,
        "~?\r\n"sv, ">?\r\n"sv, "|?\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, boolean_other_than_t_or_f_is_protocol_error) {
  for (std::string_view wire :
       {"#x\r\n"sv, "#T\r\n"sv, "#F\r\n"sv, "#\r\n"sv, "#tt\r\n"sv, "#1\r\n"sv, "#true\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, null_with_payload_is_protocol_error) {
  for (std::string_view wire : {"_x\r\n"sv, "_ \r\n"sv, "_0\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, verbatim_string_without_three_letter_format_prefix_is_protocol_error) {
  for (std::string_view wire : {"=0\r\n\r\n"sv, "=3\r\ntxt\r\n"sv, "=5\r\nhello\r\n"sv,
                                "=4\r\ntx:a\r\n"sv, "=4\r\ntxt;\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, double_garbage_is_protocol_error) {
  for (std::string_view wire : {",\r\n"sv, ",abc\r\n"sv, ",1.5x\r\n"sv, ",1..2\r\n"sv, ", 1\r\n"sv,
                                ",1 \r\n"sv, ",--1\r\n"sv, ",1e\r\n"sv, ",-\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, double_with_plus_followed_by_minus_sign_is_protocol_error) {
  // "+-1.5" is not a double; to_double strips the '+' and then from_chars accepts "-1.5".
  expect_failure(",+-1.5\r\n", error::protocol_error);
}

TEST(RespParser, big_number_garbage_is_protocol_error) {
  for (std::string_view wire : {"(\r\n"sv, "(-\r\n"sv, "(+\r\n"sv, "(12a\r\n"sv, "(1.5\r\n"sv,
                                "(+-1\r\n"sv, "( 1\r\n"sv, "(1 \r\n"sv, "(--1\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, lengths_with_leading_plus_or_spaces_or_no_digits_are_protocol_error) {
  for (std::string_view wire :
       {"$+3\r\nabc\r\n"sv, "$ 3\r\nabc\r\n"sv, "$3 \r\nabc\r\n"sv, "$\r\n\r\n"sv, "$x\r\n"sv,
        "$3x\r\nabc\r\n"sv, "*+1\r\n:1\r\n"sv, "* 1\r\n:1\r\n"sv, "*1 \r\n:1\r\n"sv, "*\r\n"sv,
        "%+1\r\n"sv, "~ 1\r\n"sv, ">+1\r\n"sv, "|+1\r\n"sv, "!+3\r\nabc\r\n"sv,
        "=+8\r\ntxt:abcd\r\n"sv}) {
    expect_failure(wire, error::protocol_error);
  }
}

TEST(RespParser, malformed_element_inside_aggregate_fails_after_delivering_earlier_nodes) {
  Parser parser;
  const Outcome out = feed_chunks(parser, {"*3\r\n:1\r\n?x\r\n:3\r\n"});
  EXPECT_EQ(out.nodes,
            (std::vector<Rec>{aggregate(Type::array, 0, 3), scalar(Type::number, 1, "1")}));
  EXPECT_EQ(out.ec, make_error_code(error::protocol_error));
  EXPECT_TRUE(parser.failed());
  expect_failure("*3\r\n:1\r\n?x\r\n:3\r\n", error::protocol_error);
}

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

// A type byte, `n` copies of `fill` and optionally CRLF. (Built with append: GCC 12 at -O3
// reports a false -Wrestrict for "+" + std::string(...).)
std::string line_of(char type, std::size_t n, bool crlf, char fill = 'a') {
  std::string s(1, type);
  s.append(n, fill);
  if (crlf) s.append("\r\n");
  return s;
}

std::string nested_arrays(std::size_t levels) {
  std::string s;
  for (std::size_t i = 0; i < levels; ++i) s += "*1\r\n";
  return s + ":1\r\n";
}

TEST(RespParser, nesting_up_to_max_depth_is_accepted) {
  ParserLimits limits;
  limits.max_depth = 2;
  const Outcome out = feed_whole(nested_arrays(2), limits);
  EXPECT_FALSE(out.ec);
  ASSERT_EQ(out.nodes.size(), 3u);
  EXPECT_EQ(out.nodes.back(), scalar(Type::number, 2, "1"));
}

TEST(RespParser, nesting_deeper_than_max_depth_is_limit_exceeded) {
  ParserLimits limits;
  limits.max_depth = 2;
  expect_failure(nested_arrays(3), error::limit_exceeded, limits);
  expect_failure("%1\r\n+k\r\n~1\r\n>1\r\n:1\r\n", error::limit_exceeded, limits);
  expect_failure("*1\r\n*1\r\n|1\r\n+k\r\n+v\r\n:1\r\n", error::limit_exceeded, limits);
}

TEST(RespParser, default_max_depth_accepts_16_levels_and_rejects_17) {
  const Outcome ok = feed_whole(nested_arrays(16));
  EXPECT_FALSE(ok.ec);
  EXPECT_EQ(ok.nodes.back(), scalar(Type::number, 16, "1"));
  expect_failure(nested_arrays(17), error::limit_exceeded);
}

TEST(RespParser, max_depth_above_hard_maximum_is_clamped_to_it) {
  ParserLimits limits;
  limits.max_depth = 1000;
  const Outcome ok = feed_whole(nested_arrays(Parser::hard_max_depth), limits);
  EXPECT_FALSE(ok.ec);
  EXPECT_EQ(ok.nodes.back(), scalar(Type::number, Parser::hard_max_depth, "1"));
  expect_failure(nested_arrays(Parser::hard_max_depth + 1), error::limit_exceeded, limits);
}

TEST(RespParser, blob_length_over_max_bulk_is_limit_exceeded_without_the_body) {
  ParserLimits limits;
  limits.max_bulk = 10;
  EXPECT_FALSE(feed_whole("$10\r\n0123456789\r\n", limits).ec);
  for (std::string_view header : {"$11\r\n"sv, "!11\r\n"sv, "=11\r\n"sv, "$999999999\r\n"sv}) {
    Parser parser(limits);
    boost::system::error_code ec;
    std::size_t used = 0;
    EXPECT_FALSE(parser.next(header, used, ec)) << header;
    EXPECT_EQ(ec, make_error_code(error::limit_exceeded)) << header;
    EXPECT_TRUE(parser.failed());
    expect_failure(header, error::limit_exceeded, limits);
  }
}

TEST(RespParser, aggregate_count_over_max_aggregate_is_limit_exceeded) {
  ParserLimits limits;
  limits.max_aggregate = 3;
  EXPECT_FALSE(feed_whole("*3\r\n:1\r\n:2\r\n:3\r\n", limits).ec);
  for (std::string_view header : {"*4\r\n"sv, "%4\r\n"sv, "~4\r\n"sv, ">4\r\n"sv, "|4\r\n"sv}) {
    expect_failure(header, error::limit_exceeded, limits);
  }
}

TEST(RespParser, default_max_aggregate_accepts_64mi_and_rejects_one_more) {
  const Outcome ok = feed_whole("*67108864\r\n");
  EXPECT_FALSE(ok.ec);
  EXPECT_EQ(ok.nodes, std::vector<Rec>{aggregate(Type::array, 0, 67108864)});
  expect_failure("*67108865\r\n", error::limit_exceeded);
}

TEST(RespParser, huge_map_count_does_not_overflow_into_an_empty_map_with_unlimited_aggregate) {
  // With max_aggregate at its maximum, 2^63 pairs is 2^64 children: the parser must not
  // wrap that to 0 and report the map as complete.
  ParserLimits limits;
  limits.max_aggregate = std::numeric_limits<std::uint64_t>::max();
  Parser parser(limits);
  boost::system::error_code ec;
  std::size_t used = 0;
  const auto node = parser.next("%9223372036854775808\r\n", used, ec);
  EXPECT_TRUE(!node || !parser.done())
      << "a map announcing 2^63 pairs was reported complete with no children";
}

TEST(RespParser, line_of_exactly_max_line_bytes_is_accepted) {
  ParserLimits limits;
  limits.max_line = 8;
  const std::string wire = line_of('+', 8, true);
  const Outcome out = feed_whole(wire, limits);
  EXPECT_FALSE(out.ec);
  EXPECT_EQ(out.nodes, std::vector<Rec>{scalar(Type::simple_string, 0, std::string(8, 'a'))});
  EXPECT_EQ(feed_bytewise(wire, limits).nodes, out.nodes);
}

TEST(RespParser, unterminated_line_one_byte_over_max_line_is_limit_exceeded) {
  ParserLimits limits;
  limits.max_line = 8;
  Parser parser(limits);
  boost::system::error_code ec;
  std::size_t used = 0;
  const std::string wire = line_of('+', 9, false);  // no CRLF yet
  EXPECT_FALSE(parser.next(wire, used, ec));
  EXPECT_EQ(ec, make_error_code(error::limit_exceeded));
}

TEST(RespParser, terminated_line_one_byte_over_max_line_is_limit_exceeded) {
  ParserLimits limits;
  limits.max_line = 8;
  expect_failure(line_of('+', 9, true), error::limit_exceeded, limits);
}

TEST(RespParser, unterminated_line_far_over_max_line_is_limit_exceeded) {
  ParserLimits limits;
  limits.max_line = 8;
  for (char type : {'+', '-', ':', ',', '(', '$', '*'}) {
    const std::string wire = line_of(type, 20, false, '1');
    Parser parser(limits);
    boost::system::error_code ec;
    std::size_t used = 0;
    EXPECT_FALSE(parser.next(wire, used, ec));
    EXPECT_EQ(ec, make_error_code(error::limit_exceeded)) << type;
    EXPECT_TRUE(parser.failed());
  }
  expect_failure(line_of('+', 20, false), error::limit_exceeded, limits);
  expect_failure(line_of('+', 20, true), error::limit_exceeded, limits);
}

TEST(RespParser, unterminated_line_over_default_max_line_is_limit_exceeded) {
  const std::string wire = line_of('+', 64 * 1024 + 100, false);
  Parser parser;
  boost::system::error_code ec;
  std::size_t used = 0;
  EXPECT_FALSE(parser.next(wire, used, ec));
  EXPECT_EQ(ec, make_error_code(error::limit_exceeded));
}

TEST(RespParser, huge_announced_bulk_with_default_limits_waits_for_more_and_does_not_allocate) {
  const std::string wire = "$536870911\r\n" + std::string(1000, 'x');
  Parser parser;
  boost::system::error_code ec;
  std::size_t used = 99;
  const std::size_t before = g_allocations.load();
  const auto first = parser.next(wire, used, ec);
  const auto second = parser.next(std::string_view(wire).substr(0, 20), used, ec);
  const std::size_t after = g_allocations.load();
  EXPECT_FALSE(first.has_value());
  EXPECT_FALSE(second.has_value());
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(used, 0u);
  EXPECT_FALSE(parser.failed());
  EXPECT_EQ(after, before) << "the parser allocated";
}

TEST(RespParser, bulk_of_exactly_default_max_bulk_waits_and_one_more_is_limit_exceeded) {
  Parser parser;
  boost::system::error_code ec;
  std::size_t used = 0;
  EXPECT_FALSE(parser.next("$536870912\r\nabc", used, ec));
  EXPECT_FALSE(ec);
  expect_failure("$536870913\r\n", error::limit_exceeded);
}

TEST(RespParser, parsing_a_whole_message_does_not_allocate) {
  const std::string wire = samples().back();
  Parser parser;
  boost::system::error_code ec;
  std::size_t pos = 0;
  std::size_t used = 0;
  std::size_t nodes = 0;
  const std::size_t before = g_allocations.load();
  while (parser.next(std::string_view(wire).substr(pos), used, ec)) {
    pos += used;
    ++nodes;
  }
  const std::size_t after = g_allocations.load();
  EXPECT_FALSE(ec);
  EXPECT_EQ(pos, wire.size());
  EXPECT_GT(nodes, 50u);
  EXPECT_EQ(after, before);
}

TEST(RespParser, failing_call_consumes_nothing_for_any_error_including_depth_limit) {
  ParserLimits limits;
  limits.max_depth = 1;
  limits.max_bulk = 4;
  limits.max_aggregate = 4;
  limits.max_line = 8;
  for (std::string_view wire : {"?\r\n"sv, ":x\r\n"sv, "$5\r\n"sv, "*5\r\n"sv, "*1\r\n"sv,
                                "%1\r\n"sv, "|1\r\n"sv, "+aaaaaaaaaaaaaaaa"sv}) {
    Parser parser(limits);
    boost::system::error_code ec;
    std::size_t used = 0;
    if (wire == "*1\r\n" || wire == "%1\r\n" || wire == "|1\r\n") {
      // Open one aggregate first so the second header hits the depth limit.
      ASSERT_TRUE(parser.next(wire, used, ec));
      ASSERT_FALSE(ec);
    }
    used = 12345;
    EXPECT_FALSE(parser.next(wire, used, ec)) << escaped(wire);
    EXPECT_TRUE(ec) << escaped(wire);
    EXPECT_EQ(used, 0u) << "a failed call reported consumed bytes for \"" << escaped(wire) << "\"";
  }
}

// ---------------------------------------------------------------------------------------
// reset()
// ---------------------------------------------------------------------------------------

TEST(RespParser, reset_makes_a_failed_parser_usable_again) {
  for (std::string_view bad : {"?\r\n"sv, "$-5\r\n"sv, "*2\r\n:1\r\n#x\r\n"sv}) {
    Parser parser;
    ASSERT_TRUE(feed_chunks(parser, {bad}).ec) << escaped(bad);
    ASSERT_TRUE(parser.failed());
    parser.reset();
    EXPECT_FALSE(parser.failed());
    EXPECT_TRUE(parser.done());
    const Outcome out = feed_chunks(parser, {"*2\r\n+OK\r\n:1\r\n"});
    EXPECT_FALSE(out.ec);
    EXPECT_EQ(out.nodes,
              (std::vector<Rec>{aggregate(Type::array, 0, 2), scalar(Type::simple_string, 1, "OK"),
                                scalar(Type::number, 1, "1")}));
    EXPECT_TRUE(parser.done());
  }
}

TEST(RespParser, reset_after_limit_exceeded_makes_parser_usable_again) {
  ParserLimits limits;
  limits.max_depth = 1;
  Parser parser(limits);
  ASSERT_EQ(feed_chunks(parser, {"*1\r\n*1\r\n:1\r\n"}).ec, make_error_code(error::limit_exceeded));
  parser.reset();
  const Outcome out = feed_chunks(parser, {"*1\r\n:1\r\n"});
  EXPECT_FALSE(out.ec);
  EXPECT_EQ(out.nodes.size(), 2u);
  EXPECT_TRUE(parser.done());
}

TEST(RespParser, reset_in_the_middle_of_an_aggregate_starts_a_new_message_at_depth_zero) {
  Parser parser;
  ASSERT_EQ(feed_chunks(parser, {"*3\r\n*2\r\n:1\r\n"}).nodes.size(), 3u);
  EXPECT_FALSE(parser.done());
  parser.reset();
  EXPECT_TRUE(parser.done());
  const Outcome out = feed_chunks(parser, {"+OK\r\n"});
  EXPECT_EQ(out.nodes, std::vector<Rec>{scalar(Type::simple_string, 0, "OK")});
  EXPECT_TRUE(parser.done());
}

// A GET-like reply, classified once for every reader of such replies (the client's get, the
// store's get_into).
TEST(RespNode, value_reply_tells_values_none_errors_and_the_rest_apart) {
  using resp::ValueReply;
  EXPECT_EQ(resp::value_reply(Type::blob_string), ValueReply::value);
  EXPECT_EQ(resp::value_reply(Type::simple_string), ValueReply::value);
  EXPECT_EQ(resp::value_reply(Type::verbatim_string), ValueReply::value);
  EXPECT_EQ(resp::value_reply(Type::null), ValueReply::none);
  EXPECT_EQ(resp::value_reply(Type::simple_error), ValueReply::error);
  EXPECT_EQ(resp::value_reply(Type::blob_error), ValueReply::error);
  for (Type t : {Type::number, Type::double_type, Type::boolean, Type::big_number, Type::array,
                 Type::map, Type::set, Type::push, Type::attribute}) {
    EXPECT_EQ(resp::value_reply(t), ValueReply::unexpected) << resp::to_string(t);
  }
}

}  // namespace
