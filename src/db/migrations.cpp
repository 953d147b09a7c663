#include "db/migrations.hpp"

namespace promptcache::db {
namespace {

// Version 1: the source-of-truth table of DESIGN.md §5. Lengths are checked by the API in
// characters; PostgreSQL checks them again.
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
};

}  // namespace

std::span<const Migration> migrations() {
  return all;
}

}  // namespace promptcache::db
