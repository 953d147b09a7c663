// Unit tests for resp::Request (command encoding) and resp::ReplyCollector (building Reply
// trees from the nodes resp::Parser yields).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "promptcache/resp/parser.hpp"
#include "promptcache/resp/reply.hpp"
#include "promptcache/resp/request.hpp"

namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;
namespace resp = promptcache::resp;
using resp::Reply;
using resp::ReplyCollector;
using resp::Request;
using resp::Type;

// ---------------------------------------------------------------------------------------------
// Request

TEST(RespRequest, set_with_expiry_encodes_exact_bytes) {
  Request r;
  r.push("SET", "k", "v", "EX", 60);
  EXPECT_EQ(r.payload(), "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nEX\r\n$2\r\n60\r\n"sv);
  EXPECT_EQ(r.commands(), 1u);
  EXPECT_FALSE(r.empty());
}

TEST(RespRequest, command_without_arguments_is_one_element_array) {
  Request r;
  r.push("PING");
  EXPECT_EQ(r.payload(), "*1\r\n$4\r\nPING\r\n"sv);
}

TEST(RespRequest, integers_encode_as_decimal_bulk_strings) {
  Request r;
  r.push("X", 0, -1, -42, 7u, std::int64_t{1234567890123});
  EXPECT_EQ(r.payload(),
            "*6\r\n$1\r\nX\r\n$1\r\n0\r\n$2\r\n-1\r\n$3\r\n-42\r\n$1\r\n7\r\n"
            "$13\r\n1234567890123\r\n"sv);
}

TEST(RespRequest, extreme_integers_encode_fully) {
  Request r;
  r.push("X", std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(r.payload(),
            "*3\r\n$1\r\nX\r\n$20\r\n-9223372036854775808\r\n$20\r\n18446744073709551615\r\n"sv);
}

TEST(RespRequest, empty_string_argument_is_zero_length_bulk) {
  Request r;
  r.push("SET", "k", "");
  EXPECT_EQ(r.payload(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"sv);
}

TEST(RespRequest, binary_argument_with_crlf_and_nul_is_length_prefixed_verbatim) {
  const std::string value = "a\r\nb\0c"s;
  ASSERT_EQ(value.size(), 6u);
  Request r;
  r.push("SET", "k", value);
  EXPECT_EQ(r.payload(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na\r\nb\0c\r\n"sv);
}

TEST(RespRequest, string_like_argument_types_are_accepted) {
  const std::string s = "str";
  const std::string_view sv = "view";
  const char* cs = "cstr";
  Request r;
  r.push("X", s, sv, cs);
  EXPECT_EQ(r.payload(), "*4\r\n$1\r\nX\r\n$3\r\nstr\r\n$4\r\nview\r\n$4\r\ncstr\r\n"sv);
}

TEST(RespRequest, push_range_over_vector_of_strings) {
  const std::vector<std::string> keys{"k1", "key2", ""};
  Request r;
  r.push_range("DEL", keys);
  EXPECT_EQ(r.payload(), "*4\r\n$3\r\nDEL\r\n$2\r\nk1\r\n$4\r\nkey2\r\n$0\r\n\r\n"sv);
  EXPECT_EQ(r.commands(), 1u);
}

TEST(RespRequest, push_range_over_empty_vector_sends_command_alone) {
  const std::vector<std::string> none;
  Request r;
  r.push_range("DEL", none);
  EXPECT_EQ(r.payload(), "*1\r\n$3\r\nDEL\r\n"sv);
  EXPECT_EQ(r.commands(), 1u);
}

TEST(RespRequest, push_range_matches_equivalent_push) {
  const std::vector<std::string> args{"k", "v", "EX", "60"};
  Request a;
  a.push_range("SET", args);
  Request b;
  b.push("SET", "k", "v", "EX", 60);
  EXPECT_EQ(a.payload(), b.payload());
}

TEST(RespRequest, commands_counts_each_push_and_payload_concatenates) {
  Request r;
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.commands(), 0u);
  EXPECT_EQ(r.payload(), ""sv);
  r.push("GET", "a").push("GET", "b");
  r.push_range("MGET", std::vector<std::string>{"a", "b"});
  EXPECT_EQ(r.commands(), 3u);
  EXPECT_EQ(r.payload(),
            "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
            "*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"
            "*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n"sv);
}

TEST(RespRequest, clear_empties_and_request_is_reusable) {
  Request r;
  r.reserve(256);
  r.push("SET", "k", "v");
  r.push("GET", "k");
  r.clear();
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.commands(), 0u);
  EXPECT_EQ(r.payload(), ""sv);

  r.push("GET", "k");
  Request fresh;
  fresh.push("GET", "k");
  EXPECT_EQ(r.payload(), fresh.payload());
  EXPECT_EQ(r.commands(), 1u);
  EXPECT_FALSE(r.empty());
}

TEST(RespRequest, idempotent_flag_defaults_false_and_is_settable) {
  Request r;
  EXPECT_FALSE(r.idempotent());
  Request& self = r.set_idempotent(true);
  EXPECT_EQ(&self, &r);
  EXPECT_TRUE(r.idempotent());
  r.set_idempotent(false);
  EXPECT_FALSE(r.idempotent());
}

TEST(RespRequest, idempotent_flag_does_not_change_payload) {
  Request a;
  a.push("GET", "k");
  Request b;
  b.set_idempotent(true).push("GET", "k");
  EXPECT_EQ(a.payload(), b.payload());
}

// ---------------------------------------------------------------------------------------------
// ReplyCollector, fed by the parser

// Parses all of `bytes` and feeds every node to a fresh collector; fails the test on a parse
// error or leftover bytes.
std::vector<Reply> collect(std::string_view bytes) {
  resp::Parser parser;
  ReplyCollector collector;
  std::size_t pos = 0;
  boost::system::error_code ec;
  for (;;) {
    std::size_t used = 0;
    std::optional<resp::Node> node = parser.next(bytes.substr(pos), used, ec);
    if (!node) break;
    collector.on_node(*node);
    pos += used;
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(pos, bytes.size()) << "unparsed bytes left";
  EXPECT_TRUE(parser.done());
  return std::move(collector.replies());
}

// Exactly one reply from `bytes`.
Reply collect_one(std::string_view bytes) {
  std::vector<Reply> replies = collect(bytes);
  EXPECT_EQ(replies.size(), 1u);
  if (replies.empty()) return {};
  return std::move(replies.front());
}

TEST(ReplyCollector, simple_string_reply) {
  const Reply r = collect_one("+OK\r\n");
  EXPECT_EQ(r.type, Type::simple_string);
  EXPECT_EQ(r.value, "OK");
  EXPECT_TRUE(r.elements.empty());
  EXPECT_FALSE(r.is_error());
  EXPECT_FALSE(r.is_null());
}

TEST(ReplyCollector, blob_string_with_crlf_inside_is_kept_whole) {
  const Reply r = collect_one("$6\r\na\r\nb\0c\r\n"sv);
  EXPECT_EQ(r.type, Type::blob_string);
  EXPECT_EQ(r.value, "a\r\nb\0c"s);
}

TEST(ReplyCollector, number_double_and_boolean_scalars) {
  const std::vector<Reply> rs = collect(":-17\r\n,3.5\r\n#t\r\n");
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].type, Type::number);
  EXPECT_EQ(rs[0].value, "-17");
  EXPECT_EQ(rs[1].type, Type::double_type);
  EXPECT_EQ(rs[1].value, "3.5");
  EXPECT_EQ(rs[2].type, Type::boolean);
  EXPECT_EQ(rs[2].value, "t");
}

TEST(ReplyCollector, simple_error_is_error) {
  const Reply r = collect_one("-ERR unknown command\r\n");
  EXPECT_EQ(r.type, Type::simple_error);
  EXPECT_TRUE(r.is_error());
  EXPECT_EQ(r.value, "ERR unknown command");
}

TEST(ReplyCollector, blob_error_is_error) {
  const Reply r = collect_one("!9\r\nERR oops!\r\n");
  EXPECT_EQ(r.type, Type::blob_error);
  EXPECT_TRUE(r.is_error());
  EXPECT_EQ(r.value, "ERR oops!");
}

TEST(ReplyCollector, resp3_and_resp2_nulls_are_null) {
  const std::vector<Reply> rs = collect("_\r\n$-1\r\n*-1\r\n");
  ASSERT_EQ(rs.size(), 3u);
  for (const Reply& r : rs) {
    EXPECT_TRUE(r.is_null());
    EXPECT_FALSE(r.is_error());
    EXPECT_TRUE(r.elements.empty());
  }
}

TEST(ReplyCollector, flat_array_of_scalars) {
  const Reply r = collect_one("*3\r\n$1\r\na\r\n:2\r\n+c\r\n");
  EXPECT_EQ(r.type, Type::array);
  ASSERT_EQ(r.elements.size(), 3u);
  EXPECT_EQ(r.elements[0].type, Type::blob_string);
  EXPECT_EQ(r.elements[0].value, "a");
  EXPECT_EQ(r.elements[1].type, Type::number);
  EXPECT_EQ(r.elements[1].value, "2");
  EXPECT_EQ(r.elements[2].value, "c");
}

TEST(ReplyCollector, empty_array_has_no_elements) {
  const Reply r = collect_one("*0\r\n");
  EXPECT_EQ(r.type, Type::array);
  EXPECT_TRUE(r.elements.empty());
}

TEST(ReplyCollector, nested_arrays_build_a_tree) {
  // [1, [2, [3, 4], []], 5]
  const Reply r = collect_one("*3\r\n:1\r\n*3\r\n:2\r\n*2\r\n:3\r\n:4\r\n*0\r\n:5\r\n");
  ASSERT_EQ(r.type, Type::array);
  ASSERT_EQ(r.elements.size(), 3u);
  EXPECT_EQ(r.elements[0].value, "1");
  const Reply& mid = r.elements[1];
  ASSERT_EQ(mid.type, Type::array);
  ASSERT_EQ(mid.elements.size(), 3u);
  EXPECT_EQ(mid.elements[0].value, "2");
  ASSERT_EQ(mid.elements[1].elements.size(), 2u);
  EXPECT_EQ(mid.elements[1].elements[0].value, "3");
  EXPECT_EQ(mid.elements[1].elements[1].value, "4");
  EXPECT_EQ(mid.elements[2].type, Type::array);
  EXPECT_TRUE(mid.elements[2].elements.empty());
  EXPECT_EQ(r.elements[2].value, "5");
}

TEST(ReplyCollector, large_array_of_nested_arrays_is_complete) {
  // More elements than the collector reserves up front, each itself an aggregate.
  std::string bytes = "*100\r\n";
  for (int i = 0; i < 100; ++i) bytes += "*2\r\n:" + std::to_string(i) + "\r\n+x\r\n";
  const Reply r = collect_one(bytes);
  ASSERT_EQ(r.elements.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(r.elements[i].elements.size(), 2u) << i;
    EXPECT_EQ(r.elements[i].elements[0].as_int(), i);
    EXPECT_EQ(r.elements[i].elements[1].value, "x");
  }
}

TEST(ReplyCollector, map_is_flattened_to_key_value_pairs_and_find_works) {
  const Reply r = collect_one("%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n");
  EXPECT_EQ(r.type, Type::map);
  ASSERT_EQ(r.elements.size(), 4u);
  EXPECT_EQ(r.elements[0].value, "server");
  EXPECT_EQ(r.elements[1].value, "redis");
  EXPECT_EQ(r.elements[2].value, "proto");
  EXPECT_EQ(r.elements[3].value, "3");

  const Reply* server = r.find("server");
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->value, "redis");
  const Reply* proto = r.find("proto");
  ASSERT_NE(proto, nullptr);
  EXPECT_EQ(proto->as_int(), 3);
  EXPECT_EQ(r.find("missing"), nullptr);
  EXPECT_EQ(r.find("redis"), nullptr) << "values are not keys";
}

TEST(ReplyCollector, map_with_aggregate_values) {
  const Reply r = collect_one("%2\r\n+a\r\n*2\r\n:1\r\n:2\r\n+b\r\n%1\r\n+c\r\n+d\r\n");
  ASSERT_EQ(r.elements.size(), 4u);
  const Reply* a = r.find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->elements.size(), 2u);
  EXPECT_EQ(a->elements[1].value, "2");
  const Reply* b = r.find("b");
  ASSERT_NE(b, nullptr);
  const Reply* c = b->find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->value, "d");
}

TEST(ReplyCollector, resp2_flat_key_value_array_supports_find) {
  const Reply r =
      collect_one("*4\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n");
  EXPECT_EQ(r.type, Type::array);
  const Reply* v = r.find("version");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->value, "7.2.4");
  EXPECT_EQ(r.find("redis"), nullptr) << "values are not keys";
  EXPECT_EQ(r.find("nope"), nullptr);
}

TEST(ReplyCollector, find_on_odd_length_array_ignores_dangling_key) {
  const Reply r = collect_one("*3\r\n+a\r\n+1\r\n+b\r\n");
  ASSERT_NE(r.find("a"), nullptr);
  EXPECT_EQ(r.find("b"), nullptr);
}

TEST(ReplyCollector, find_on_scalar_is_null) {
  EXPECT_EQ(collect_one("+a\r\n").find("a"), nullptr);
}

TEST(ReplyCollector, multiple_replies_in_sequence) {
  const std::vector<Reply> rs = collect("+OK\r\n*2\r\n:1\r\n:2\r\n-ERR x\r\n$3\r\nfoo\r\n_\r\n");
  ASSERT_EQ(rs.size(), 5u);
  EXPECT_EQ(rs[0].value, "OK");
  EXPECT_EQ(rs[1].type, Type::array);
  EXPECT_EQ(rs[1].elements.size(), 2u);
  EXPECT_TRUE(rs[2].is_error());
  EXPECT_EQ(rs[3].value, "foo");
  EXPECT_TRUE(rs[4].is_null());
}

TEST(ReplyCollector, root_level_attribute_is_skipped) {
  const std::vector<Reply> rs = collect("|1\r\n+a\r\n:1\r\n+OK\r\n");
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].type, Type::simple_string);
  EXPECT_EQ(rs[0].value, "OK");
}

TEST(ReplyCollector, root_attribute_with_aggregate_value_is_skipped) {
  const std::vector<Reply> rs =
      collect("|2\r\n+k\r\n*2\r\n:1\r\n%1\r\n+x\r\n+y\r\n+k2\r\n*0\r\n:42\r\n");
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].type, Type::number);
  EXPECT_EQ(rs[0].as_int(), 42);
}

TEST(ReplyCollector, attribute_nested_inside_array_is_skipped) {
  const Reply r = collect_one("*2\r\n|1\r\n+key-popularity\r\n*1\r\n,0.19\r\n:1\r\n:2\r\n");
  ASSERT_EQ(r.type, Type::array);
  ASSERT_EQ(r.elements.size(), 2u);
  EXPECT_EQ(r.elements[0].as_int(), 1);
  EXPECT_EQ(r.elements[1].as_int(), 2);
}

TEST(ReplyCollector, attribute_before_last_element_of_array_is_skipped) {
  const std::vector<Reply> rs = collect("*2\r\n:1\r\n|1\r\n+a\r\n+b\r\n:2\r\n+after\r\n");
  ASSERT_EQ(rs.size(), 2u);
  ASSERT_EQ(rs[0].elements.size(), 2u);
  EXPECT_EQ(rs[0].elements[1].value, "2");
  EXPECT_EQ(rs[1].value, "after");
}

TEST(ReplyCollector, empty_attribute_is_skipped) {
  const std::vector<Reply> rs = collect("|0\r\n+OK\r\n");
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].value, "OK");
}

TEST(ReplyCollector, clear_and_reset_forget_collected_replies) {
  resp::Parser parser;
  ReplyCollector collector;
  boost::system::error_code ec;
  std::size_t used = 0;
  auto node = parser.next("+OK\r\n", used, ec);
  ASSERT_TRUE(node.has_value());
  collector.on_node(*node);
  EXPECT_EQ(collector.replies().size(), 1u);
  collector.reset();
  EXPECT_TRUE(collector.replies().empty());
  node = parser.next(":5\r\n", used, ec);
  ASSERT_TRUE(node.has_value());
  collector.on_node(*node);
  ASSERT_EQ(collector.replies().size(), 1u);
  EXPECT_EQ(collector.replies()[0].as_int(), 5);
}

TEST(ReplyCollector, request_payload_parses_back_to_its_arguments) {
  Request req;
  req.push("SET", "k", "a\r\nb"s, "", -3);
  const Reply r = collect_one(req.payload());
  ASSERT_EQ(r.type, Type::array);
  ASSERT_EQ(r.elements.size(), 5u);
  EXPECT_EQ(r.elements[0].value, "SET");
  EXPECT_EQ(r.elements[1].value, "k");
  EXPECT_EQ(r.elements[2].value, "a\r\nb");
  EXPECT_EQ(r.elements[3].value, "");
  EXPECT_EQ(r.elements[4].as_int(), -3);
}

// ---------------------------------------------------------------------------------------------
// Reply::as_int

TEST(ReplyAsInt, number_converts) {
  EXPECT_EQ(collect_one(":42\r\n").as_int(), 42);
  EXPECT_EQ(collect_one(":-7\r\n").as_int(), -7);
  EXPECT_EQ(collect_one(":0\r\n").as_int(), 0);
  EXPECT_EQ(collect_one(":9223372036854775807\r\n").as_int(),
            std::numeric_limits<std::int64_t>::max());
}

TEST(ReplyAsInt, numeric_strings_convert) {
  EXPECT_EQ(collect_one("$2\r\n17\r\n").as_int(), 17);
  EXPECT_EQ(collect_one("+-5\r\n").as_int(), -5);
}

TEST(ReplyAsInt, non_numbers_give_nullopt) {
  EXPECT_EQ(collect_one("+OK\r\n").as_int(), std::nullopt);
  EXPECT_EQ(collect_one("$3\r\n1.5\r\n").as_int(), std::nullopt);
  EXPECT_EQ(collect_one("$0\r\n\r\n").as_int(), std::nullopt);
  EXPECT_EQ(collect_one(",1.5\r\n").as_int(), std::nullopt);
  EXPECT_EQ(collect_one("-42\r\n").as_int(), std::nullopt) << "an error is not a number";
  EXPECT_EQ(collect_one("_\r\n").as_int(), std::nullopt);
  EXPECT_EQ(collect_one("*1\r\n:1\r\n").as_int(), std::nullopt);
}

TEST(ReplyAsInt, default_reply_is_null_with_no_int) {
  const Reply r;
  EXPECT_TRUE(r.is_null());
  EXPECT_EQ(r.as_int(), std::nullopt);
  EXPECT_EQ(r.find("x"), nullptr);
}

}  // namespace
