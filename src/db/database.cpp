#include <chrono>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "db/backends.hpp"

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

json::value parse_column(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) throw DbError(fmt::format("corrupt row: {} is not JSON", what));
  return v;
}

}  // namespace

json::object object_column(std::string_view text, std::string_view what) {
  json::value v = parse_column(text, what);
  if (!v.is_object()) throw DbError(fmt::format("corrupt row: {} is not a JSON object", what));
  return std::move(v.as_object());
}

json::array array_column(std::string_view text, std::string_view what) {
  json::value v = parse_column(text, what);
  if (!v.is_array()) throw DbError(fmt::format("corrupt row: {} is not a JSON array", what));
  return std::move(v.as_array());
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
