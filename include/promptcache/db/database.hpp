// The source of truth behind the cache: the table prompt_analysis_results (docs/database.md) in
// SQLite (the embedded default) or PostgreSQL. Calls block; the HTTP service runs them on a
// thread pool of their own. Every implementation is safe to call from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace promptcache::db {

// A failure of the database itself (unreachable, refused, corrupt). The message is for logs:
// it may name tables and servers, so it never goes to an HTTP client as it is.
class DbError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a client sends to store: the row without its id and times.
struct AnalysisInput {
  std::string user_id;
  std::string prompt_text;
  std::string prompt_hash;  // sha256 hex of prompt_text's UTF-8 bytes, lower case
  std::string analysis_type = "default";
  boost::json::object quality_scores;
  boost::json::array improvement_suggestions;
  boost::json::object metadata;
  std::optional<std::int64_t> processing_time_ms;
  std::optional<std::string> model_version;
};

// A stored row.
struct AnalysisRecord : AnalysisInput {
  std::int64_t id = 0;
  // Grows with every change of this (prompt_hash, user_id, analysis_type), deletes included;
  // assigned by the database in the change's own transaction (see Database::upsert).
  std::int64_t version = 0;
  std::string created_at;  // UTC, ISO 8601 with milliseconds: 2026-11-23T23:51:43.123Z
  std::string updated_at;
  // Why a JSON column of this row could not be decoded (not JSON, the wrong kind, a number out
  // of range); empty when the row is sound. Such a row is reported, never served or cached.
  std::string corrupt;
};

// A key's state: its row, or none, at the key's current version (0: never written).
struct Lookup {
  std::optional<AnalysisRecord> row;
  std::int64_t version = 0;
};

// What a delete did: whether a row went, and the key's version after it (a delete that removed
// a row moves the version on; one that found none leaves it).
struct Removal {
  bool removed = false;
  std::int64_t version = 0;
};

// The row as the API and the cache carry it.
[[nodiscard]] boost::json::object to_json(const AnalysisRecord& record);

class Database {
 public:
  virtual ~Database() = default;

  // "sqlite" or "postgresql".
  [[nodiscard]] virtual std::string_view kind() const noexcept = 0;
  // Inserts, or updates the row with the same (prompt_hash, user_id, analysis_type), keeping
  // its id and created_at; its version moves on in the same transaction. Durable when it
  // returns.
  [[nodiscard]] virtual AnalysisRecord upsert(const AnalysisInput& input) = 0;
  // The key's row and version, read together (one snapshot): what a cache fill may carry.
  [[nodiscard]] virtual Lookup lookup(std::string_view prompt_hash, std::string_view user_id,
                                      std::string_view analysis_type) = 0;
  [[nodiscard]] std::optional<AnalysisRecord> find(std::string_view prompt_hash,
                                                   std::string_view user_id,
                                                   std::string_view analysis_type) {
    return lookup(prompt_hash, user_id, analysis_type).row;
  }
  // Deletes the key's row; a delete that removed one moves the key's version on in the same
  // transaction (the version of the tombstone the cache keeps).
  [[nodiscard]] virtual Removal remove(std::string_view prompt_hash, std::string_view user_id,
                                       std::string_view analysis_type) = 0;
  // Up to `limit` rows with an id above `after_id`, in id order (one user's, if given): for
  // walking the whole table in pages.
  [[nodiscard]] virtual std::vector<AnalysisRecord> page(
      std::int64_t after_id, std::size_t limit, const std::optional<std::string>& user_id) = 0;
  // How many rows (one user's, if given).
  [[nodiscard]] virtual std::uint64_t count(const std::optional<std::string>& user_id) = 0;
  // Throws DbError unless the database answers.
  virtual void ping() = 0;
  // The highest migration applied.
  [[nodiscard]] virtual int schema_version() = 0;
};

// Opens the database a URL names and applies any migration it lacks:
//   sqlite:///absolute/path.db or sqlite://relative/path.db (no parameters): SQLite (WAL,
//   synchronous=FULL), the file and its directory created when missing;
//   postgresql://user:password@host:port/dbname (or postgres://): PostgreSQL through libpq.
// `connections` bounds the connections kept open (one per concurrent caller). Throws DbError.
[[nodiscard]] std::unique_ptr<Database> open_database(std::string_view url,
                                                      std::size_t connections = 4);

// The URL with any password replaced by "***", for logs.
[[nodiscard]] std::string redact_url(std::string_view url);
// "cannot open the database URL: why", the URL redacted and named once (an error that names it
// already is not prefixed with it again).
[[nodiscard]] std::string open_failure(std::string_view url, const DbError& e);

}  // namespace promptcache::db
