// json_log_formatter (promptcache/log.hpp): each line one JSON object — time, level, logger,
// message, the message's key=value fields, and the trace of a LogTraceScope.
#include <gtest/gtest.h>

#include <spdlog/details/log_msg.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "promptcache/log.hpp"

namespace promptcache {
namespace {

namespace json = boost::json;

json::object formatted(std::string_view message,
                       spdlog::level::level_enum level = spdlog::level::info) {
  const auto formatter = json_log_formatter();
  const spdlog::details::log_msg msg(spdlog::source_loc{}, "access", level,
                                     spdlog::string_view_t(message.data(), message.size()));
  spdlog::memory_buf_t out;
  formatter->format(msg, out);
  const std::string line(out.data(), out.size());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line
  return json::parse(line).as_object();
}

TEST(JsonLog, a_line_has_time_level_logger_message_and_its_fields) {
  const json::object o =
      formatted(R"(method=GET path="/v1/a b \"q\"" status=404 duration_us=12 cache=-)");
  EXPECT_EQ(o.at("level"), "info");
  EXPECT_EQ(o.at("logger"), "access");
  EXPECT_EQ(o.at("message"),
            R"(method=GET path="/v1/a b \"q\"" status=404 duration_us=12 cache=-)");
  const std::string time(o.at("time").as_string());
  EXPECT_EQ(time.size(), 27u) << time;  // 2026-12-02T18:05:01.123456Z
  EXPECT_EQ(time[10], 'T');
  EXPECT_EQ(time.back(), 'Z');
  const auto& f = o.at("fields").as_object();
  EXPECT_EQ(f.at("method"), "GET");
  EXPECT_EQ(f.at("path"), "/v1/a b \"q\"");
  EXPECT_EQ(f.at("status"), "404");
  EXPECT_EQ(f.at("cache"), "-");
  EXPECT_FALSE(o.contains("trace_id"));
}

TEST(JsonLog, words_that_are_not_pairs_are_only_in_the_message) {
  const json::object o =
      formatted("redis master 10.0.0.1:6379 was demoted; x==y =z a= b=1", spdlog::level::warn);
  EXPECT_EQ(o.at("level"), "warning");
  const auto& f = o.at("fields").as_object();
  EXPECT_EQ(f.size(), 3u) << json::serialize(f);  // not "master", "10.0.0.1:6379", "=z"
  EXPECT_EQ(f.at("x"), "=y");                     // a value runs to the next space
  EXPECT_EQ(f.at("a"), "");
  EXPECT_EQ(f.at("b"), "1");
}

TEST(JsonLog, lines_inside_a_trace_scope_carry_its_ids_and_scopes_nest) {
  {
    LogTraceScope outer("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    EXPECT_EQ(formatted("x=1").at("trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    {
      LogTraceScope inner("11111111111111111111111111111111", "2222222222222222");
      EXPECT_EQ(formatted("x=1").at("span_id"), "2222222222222222");
    }
    EXPECT_EQ(formatted("x=1").at("span_id"), "00f067aa0ba902b7");
  }
  EXPECT_FALSE(formatted("x=1").contains("trace_id"));
}

TEST(JsonLog, control_characters_and_bytes_that_are_not_utf8_stay_valid_json) {
  const json::object o = formatted("key=\x01\xff\xc3( tail=\"\n\"");
  EXPECT_EQ(o.at("message"), "key=\x01\xEF\xBF\xBD\xEF\xBF\xBD( tail=\"\n\"");
  EXPECT_EQ(o.at("fields").at("key"), "\x01\xEF\xBF\xBD\xEF\xBF\xBD(");
}

}  // namespace
}  // namespace promptcache
