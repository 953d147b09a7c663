#include <chrono>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "db/backends.hpp"
#include "promptcache/json_text.hpp"

namespace promptcache::db {

namespace json = boost::json;

json::object to_json(const AnalysisRecord& r) {
  json::object o;
  o["id"] = r.id;
  o["user_id"] = r.user_id;
  o["prompt_text"] = r.prompt_text;
  o["prompt_hash"] = r.prompt_hash;
  o["analysis_type"] = r.analysis_type;
  o["quality_scores"] = r.quality_scores;
  o["improvement_suggestions"] = r.improvement_suggestions;
  o["metadata"] = r.metadata;
  o["processing_time_ms"] =
      r.processing_time_ms ? json::value(*r.processing_time_ms) : json::value(nullptr);
  o["model_version"] = r.model_version ? json::value(*r.model_version) : json::value(nullptr);
  o["version"] = r.version;
  o["created_at"] = r.created_at;
  o["updated_at"] = r.updated_at;
  return o;
}

std::string utc_now_iso() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const auto seconds = std::chrono::floor<std::chrono::seconds>(now);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", seconds, ms.count() % 1000);
}

namespace {

// The column's value, or nullopt with `r.corrupt` saying why (the first problem is kept).
std::optional<json::value> parse_column(AnalysisRecord& r, std::string_view text,
                                        std::string_view what, json::kind expected) {
  auto fail = [&](std::string why) -> std::optional<json::value> {
    if (r.corrupt.empty()) r.corrupt = fmt::format("{} {}", what, why);
    return std::nullopt;
  };
  if (auto bad = find_unrepresentable_number(text)) {
    return fail(fmt::format("holds the number {} ({})", bad->literal, bad->reason));
  }
  boost::system::error_code ec;
  json::value v = parse_exact(text, ec);
  if (ec) return fail("is not JSON");
  if (v.kind() != expected) {
    return fail(expected == json::kind::object ? "is not a JSON object" : "is not a JSON array");
  }
  return v;
}

}  // namespace

void decode_columns(AnalysisRecord& r, std::string_view quality_scores,
                    std::string_view improvement_suggestions, std::string_view metadata) {
  if (auto v = parse_column(r, quality_scores, "quality_scores", json::kind::object)) {
    r.quality_scores = std::move(v->as_object());
  }
  if (auto v =
          parse_column(r, improvement_suggestions, "improvement_suggestions", json::kind::array)) {
    r.improvement_suggestions = std::move(v->as_array());
  }
  if (auto v = parse_column(r, metadata, "metadata", json::kind::object)) {
    r.metadata = std::move(v->as_object());
  }
}

std::string redact_url(std::string_view url) {
  const auto scheme = url.find("://");
  const auto at = url.rfind('@');
  if (scheme == std::string_view::npos || at == std::string_view::npos || at < scheme) {
    return std::string(url);
  }
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return fmt::format("{}:***{}", url.substr(0, colon), url.substr(at));
}

std::unique_ptr<Database> open_database(std::string_view url, std::size_t connections) {
  auto starts_with = [&](std::string_view prefix) {
    return url.substr(0, prefix.size()) == prefix;
  };
  if (starts_with("postgresql://") || starts_with("postgres://")) {
    return open_postgres(std::string(url), connections);
  }
  if (starts_with("sqlite://")) return open_sqlite(std::string(url.substr(9)), connections);
  if (url.find("://") != std::string_view::npos) {
    throw DbError(
        fmt::format("unsupported database URL {:?}: use sqlite:///path or "
                    "postgresql://user:password@host:port/db",
                    redact_url(url)));
  }
  if (url.empty()) throw DbError("the database URL is empty");
  return open_sqlite(std::string(url), connections);
}

}  // namespace promptcache::db
