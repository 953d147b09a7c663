#include "db/migrations.hpp"

namespace promptcache::db {
namespace {

// Version 1: the source-of-truth table (docs/database.md). Lengths are checked by the API in
// characters; PostgreSQL checks them again.
// Version 2: versions. Every change of a key (prompt_hash, user_id, analysis_type), deletes
// included, moves its version on, in the change's transaction. The version lives in a table of
// its own, one row per key ever written, so that it survives the key's deletion: a cache fill
// that read an older state can always be told from a newer one. Every change locks the key's
// version row first, so changes of one key are ordered the same way in both tables (and never
// deadlock). Existing rows start at version 1.
// (A table of SQL text, not logic: it is as long as the schema, and stays whole so that each
// version reads as one script.)
constexpr Migration all[] = {
    {1,
     R"sql(
CREATE TABLE prompt_analysis_results (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  prompt_text TEXT NOT NULL,
  prompt_hash TEXT NOT NULL,
  analysis_type TEXT NOT NULL DEFAULT 'default',
  quality_scores TEXT NOT NULL,
  improvement_suggestions TEXT NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  processing_time_ms INTEGER,
  model_version TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (prompt_hash, user_id, analysis_type)
);
CREATE INDEX prompt_analysis_results_user ON prompt_analysis_results (user_id, id);
)sql",
     R"sql(
CREATE TABLE prompt_analysis_results (
  id BIGSERIAL PRIMARY KEY,
  user_id TEXT NOT NULL,
  prompt_text TEXT NOT NULL CHECK (char_length(prompt_text) BETWEEN 1 AND 10000),
  prompt_hash CHAR(64) NOT NULL,
  analysis_type VARCHAR(50) NOT NULL DEFAULT 'default',
  quality_scores JSONB NOT NULL,
  improvement_suggestions JSONB NOT NULL,
  metadata JSONB NOT NULL DEFAULT '{}',
  processing_time_ms BIGINT,
  model_version TEXT,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  UNIQUE (prompt_hash, user_id, analysis_type)
);
CREATE INDEX prompt_analysis_results_user ON prompt_analysis_results (user_id, id);
)sql"},
    {2,
     R"sql(
ALTER TABLE prompt_analysis_results ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
CREATE TABLE prompt_analysis_versions (
  prompt_hash TEXT NOT NULL,
  user_id TEXT NOT NULL,
  analysis_type TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (prompt_hash, user_id, analysis_type)
);
INSERT INTO prompt_analysis_versions (prompt_hash, user_id, analysis_type, version)
  SELECT prompt_hash, user_id, analysis_type, version FROM prompt_analysis_results;
)sql",
     R"sql(
ALTER TABLE prompt_analysis_results ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE TABLE prompt_analysis_versions (
  prompt_hash CHAR(64) NOT NULL,
  user_id TEXT NOT NULL,
  analysis_type VARCHAR(50) NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (prompt_hash, user_id, analysis_type)
);
INSERT INTO prompt_analysis_versions (prompt_hash, user_id, analysis_type, version)
  SELECT prompt_hash, user_id, analysis_type, version FROM prompt_analysis_results;
-- A delete as one call: the version row locked first (as every upsert locks it), the row
-- deleted, the version moved on only if a row went.
CREATE FUNCTION promptcache_remove_analysis(h TEXT, u TEXT, t TEXT,
                                            OUT removed BOOLEAN, OUT new_version BIGINT) AS $$
BEGIN
  SELECT v.version INTO new_version FROM prompt_analysis_versions v
    WHERE v.prompt_hash = h AND v.user_id = u AND v.analysis_type = t FOR UPDATE;
  DELETE FROM prompt_analysis_results r
    WHERE r.prompt_hash = h AND r.user_id = u AND r.analysis_type = t;
  removed := FOUND;
  IF removed THEN
    UPDATE prompt_analysis_versions v SET version = v.version + 1
      WHERE v.prompt_hash = h AND v.user_id = u AND v.analysis_type = t
      RETURNING v.version INTO new_version;
  END IF;
  new_version := COALESCE(new_version, 0);
END
$$ LANGUAGE plpgsql;
)sql"},
};

}  // namespace

std::span<const Migration> migrations() {
  return all;
}

}  // namespace promptcache::db
