// The one key builder: hierarchical `:`-separated keys, namespace first, each part escaped so
// that different parts never make the same key (docs/cache.md: Keys, seed defects 1–3).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace promptcache::cache {

// Percent-encodes `%`, `:`, the glob specials `*?[]\` and the hash-tag braces `{}`; leaves
// every other byte. Ordinary ids ("user123", a sha256 hex digest) come out unchanged.
[[nodiscard]] std::string escape_key_part(std::string_view part);
// The inverse of escape_key_part (a '%' not followed by two hex digits is kept as it is).
[[nodiscard]] std::string unescape_key_part(std::string_view part);

// Joins escaped parts with ':'. Empty parts are kept (the seed dropped them, which made
// "a::b" and "a:b" the same key).
[[nodiscard]] std::string build_key(std::initializer_list<std::string_view> parts);

// A prompt's prompt_hash: the SHA-256 of its UTF-8 bytes as 64 lower-case hex digits, as the
// seed computes it (hashlib.sha256(prompt.encode()).hexdigest()) and `serve` stores it.
[[nodiscard]] std::string prompt_hash(std::string_view prompt);

// prompt:analysis:<prompt_hash>:{<user_id>}:<analysis_type>. The seed's layout with the user
// id in braces: a Redis Cluster hash tag, so that one user's entries and their index (below)
// share a slot and invalidate_user_analysis_cache is one script on one node (docs/cache.md, Keys).
// Throws std::invalid_argument for an empty user id (its tag would hash the whole key).
[[nodiscard]] std::string analysis_key(std::string_view prompt_hash, std::string_view user_id,
                                       std::string_view analysis_type);
// prompt:analysis-index:{<user_id>}: the sorted set of that user's analysis keys (scored by
// expiry), kept by every write of an analysis key. Throws as analysis_key.
[[nodiscard]] std::string user_analysis_index_key(std::string_view user_id);
// The index an analysis key belongs to (user_analysis_index_key of its user); empty for a key
// not in the analysis layout.
[[nodiscard]] std::string analysis_index_of(std::string_view key);
// prompt:suggestions:<prompt_hash>:<user_id>:<version>
[[nodiscard]] std::string suggestions_key(std::string_view prompt_hash, std::string_view user_id,
                                          std::string_view version);
// ml:model:prediction:<model_version>:<prompt_hash>
[[nodiscard]] std::string prediction_key(std::string_view model_version,
                                         std::string_view prompt_hash);

// SCAN MATCH pattern for every analysis entry of one user: prompt:analysis:*:{<user>}:*. The
// escaped id holds no glob special, no ':' and no brace, so it matches that user's keys and no
// other's. Throws as analysis_key.
[[nodiscard]] std::string user_analysis_pattern(std::string_view user_id);

}  // namespace promptcache::cache
