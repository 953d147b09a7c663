#include <chrono>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "db/backends.hpp"
#include "promptcache/json_text.hpp"
#include "promptcache/redact.hpp"

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
  if (url.find("://") == std::string_view::npos) return "(not a database URL)";
  return promptcache::redact_url(url);
}

std::string open_failure(std::string_view url, const DbError& e) {
  const std::string shown = redact_url(url);
  const std::string why = redact(e.what());
  if (why.find(shown) != std::string::npos) return fmt::format("cannot open the database: {}", why);
  return fmt::format("cannot open the database {}: {}", shown, why);
}

std::unique_ptr<Database> open_database(std::string_view url, std::size_t connections) {
  auto starts_with = [&](std::string_view prefix) {
    return url.substr(0, prefix.size()) == prefix;
  };
  // Whatever the URL holds, its password never reaches a log line or an error message.
  register_url_secrets(url);
  if (starts_with("postgresql://") || starts_with("postgres://")) {
    return open_postgres(std::string(url), connections);
  }
  if (starts_with("sqlite://")) {
    std::string_view path = url.substr(9);
    // No parameter is understood: one would otherwise become part of the file's name (and a
    // `?password=` in it would be written to disk and to the logs). Named, never echoed.
    if (const auto query = path.find('?'); query != std::string_view::npos) {
      std::string_view name = path.substr(query + 1);
      name = name.substr(0, name.find_first_of("=&"));
      throw DbError(
          fmt::format("a sqlite:// URL takes no parameters ({:?} is not one)", name.substr(0, 40)));
    }
    if (path.empty()) throw DbError("the sqlite:// URL names no file");
    return open_sqlite(std::string(path), connections);
  }
  if (url.empty()) throw DbError("the database URL is empty");
  // Not a URL of a known scheme: never taken as a file name (a libpq connection string such as
  // "host=h password=pw" would become a SQLite file, and its password a log line).
  const auto scheme = url.find("://");
  throw DbError(
      fmt::format("unsupported database URL{}: use sqlite:///abs/path.db, sqlite://rel/path.db or "
                  "postgresql://user:password@host:port/db",
                  scheme == std::string_view::npos || scheme > 32
                      ? std::string()
                      : fmt::format(" (scheme {:?})", url.substr(0, scheme))));
}

}  // namespace promptcache::db
