// The schema, as numbered migrations applied in order at start-up; a database records the ones
// it has in schema_migrations. A migration is never edited once released: changes are new ones.
#pragma once

#include <span>

namespace promptcache::db {

struct Migration {
  int version;
  const char* sqlite;    // one or more statements
  const char* postgres;  // one or more statements
};

[[nodiscard]] std::span<const Migration> migrations();

}  // namespace promptcache::db
