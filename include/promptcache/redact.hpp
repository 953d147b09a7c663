// One redaction for every credential promptcache handles: Redis and Sentinel passwords, the
// database URL's password, the HTTP API key (and, for library users, any secret of their own).
//
// Two layers, both used by everything that prints:
//   - redact_url() shows a URL without its secrets, by its structure: the password of the
//     userinfo and every query value become "***"; text that is not a URL is not shown at all.
//   - register_secret() records a secret's value when the program reads it (the configuration
//     parsers do this for every credential they take); redact() then replaces every registered
//     value in any text by "***" — the backstop for messages that quote what they were given
//     (a libpq error echoing a connection URI, an exception naming a value). The command's
//     loggers pass every line, at every level, through redact().
//
// Secrets shorter than 4 bytes are not registered: replacing every "ab" in every log line
// would make the logs unreadable and protect nothing a guesser would not find at once.
#pragma once

#include <string>
#include <string_view>

namespace promptcache {

inline constexpr std::string_view redacted_mark = "***";

// `scheme://user:***@host:port/path?***`; "(not a URL)" when `url` has no "scheme://".
[[nodiscard]] std::string redact_url(std::string_view url);

// Records a secret's value (and its percent-encoded form, as it would appear in a URL) for
// redact(). Thread-safe; idempotent; values shorter than 4 bytes are ignored.
void register_secret(std::string_view secret);
// The password (userinfo or a `password`-like query parameter) of a URL, registered.
void register_url_secrets(std::string_view url);

// `text` with every registered secret replaced by "***". Thread-safe, lock-free on the read
// side; returns `text` unchanged (one copy) when it holds none.
[[nodiscard]] std::string redact(std::string_view text);
// Whether `text` holds a registered secret (the cheap test before a copy).
[[nodiscard]] bool holds_secret(std::string_view text) noexcept;

}  // namespace promptcache
