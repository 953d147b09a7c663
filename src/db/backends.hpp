// What the two backends share, and how open_database reaches them.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "promptcache/db/database.hpp"

namespace promptcache::db {

[[nodiscard]] std::unique_ptr<Database> open_sqlite(const std::string& path,
                                                    std::size_t connections);
[[nodiscard]] std::unique_ptr<Database> open_postgres(const std::string& url,
                                                      std::size_t connections);

// Now, as stored: UTC, ISO 8601, milliseconds.
[[nodiscard]] std::string utc_now_iso();

// A JSON column read back; a value of the wrong kind is a corrupt row (DbError naming `what`).
[[nodiscard]] boost::json::object object_column(std::string_view text, std::string_view what);
[[nodiscard]] boost::json::array array_column(std::string_view text, std::string_view what);

}  // namespace promptcache::db
