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

// The row's JSON columns read back. A column that is not JSON, of the wrong kind, or holding a
// number no double can keep leaves `r.corrupt` saying so (the row is reported, not thrown).
void decode_columns(AnalysisRecord& r, std::string_view quality_scores,
                    std::string_view improvement_suggestions, std::string_view metadata);

}  // namespace promptcache::db
