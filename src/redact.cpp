#include "promptcache/redact.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <fmt/format.h>

namespace promptcache {

namespace {

constexpr std::size_t kShortest = 4;

// The registered values, longest first (so a secret that contains another is replaced whole).
// Copied on write: readers (every log line) load a snapshot without a lock.
using Secrets = std::vector<std::string>;

std::atomic<std::shared_ptr<const Secrets>>& secrets() {
  static std::atomic<std::shared_ptr<const Secrets>> s{std::make_shared<const Secrets>()};
  return s;
}
std::mutex& writer() {
  static std::mutex m;
  return m;
}

// Bumped after each registration. A reader (a log line) compares it with the generation of its
// thread's cached snapshot and reloads only when they differ: secrets are registered at
// start-up, so a log line costs one load, not a shared_ptr copy (a lock bit and two atomic
// count changes) per line.
std::atomic<std::uint64_t> generation{0};

const Secrets& snapshot() noexcept {
  thread_local std::shared_ptr<const Secrets> cached;
  thread_local std::uint64_t cached_generation = ~std::uint64_t{0};
  const std::uint64_t now = generation.load(std::memory_order_acquire);
  if (now != cached_generation) {
    cached = secrets().load();
    cached_generation = now;
  }
  return *cached;
}

std::string percent_encoded(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool is_password_parameter(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("pass") != std::string::npos || lower.find("secret") != std::string::npos ||
         lower.find("token") != std::string::npos || lower.find("key") != std::string::npos;
}

}  // namespace

std::string redact_url(std::string_view url) {
  const auto scheme = url.find("://");
  // Not a URL: it could be anything, a connection string with a password included.
  if (scheme == std::string_view::npos) return "(not a URL)";
  // Parameters may carry secrets (?password=, ?sslpassword=): no value is shown.
  std::string shown(url.substr(0, url.find_first_of("?#")));
  if (shown.size() < url.size()) shown += "?***";
  const auto authority_end = std::min(shown.find('/', scheme + 3), shown.size());
  const auto at = shown.rfind('@', authority_end);
  if (at == std::string::npos || at < scheme) return shown;
  const auto colon = shown.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return shown;
  return fmt::format("{}:***{}", shown.substr(0, colon), shown.substr(at));
}

void register_secret(std::string_view secret) {
  if (secret.size() < kShortest) return;
  std::lock_guard lock(writer());
  auto next = std::make_shared<Secrets>(*secrets().load());
  for (std::string form : {std::string(secret), percent_encoded(secret)}) {
    if (std::find(next->begin(), next->end(), form) == next->end())
      next->push_back(std::move(form));
  }
  std::sort(next->begin(), next->end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  secrets().store(std::move(next));
  generation.fetch_add(1, std::memory_order_release);
}

void register_url_secrets(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) {
    // A connection string ("host=h password=pw"): its password= value, if any.
    for (std::size_t at = url.find("password="); at != std::string_view::npos;
         at = url.find("password=", at + 1)) {
      const auto start = at + 9;
      register_secret(url.substr(start, url.find_first_of(" \t", start) - start));
    }
    return;
  }
  const std::string_view rest = url.substr(scheme + 3);
  const auto authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    const auto colon = userinfo.find(':');
    // "redis://secret@host" is a password alone; "user:secret@" a user and a password.
    const std::string_view password =
        colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
    register_secret(password);
    register_secret(percent_decoded(password));
  }
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    query = query.substr(0, query.find('#'));
    while (!query.empty()) {
      const std::string_view pair = query.substr(0, query.find('&'));
      if (const auto eq = pair.find('=');
          eq != std::string_view::npos && is_password_parameter(pair.substr(0, eq))) {
        register_secret(pair.substr(eq + 1));
        register_secret(percent_decoded(pair.substr(eq + 1)));
      }
      query = pair.size() < query.size() ? query.substr(pair.size() + 1) : std::string_view();
    }
  }
}

bool holds_secret(std::string_view text) noexcept {
  const Secrets& all = snapshot();
  return std::any_of(all.begin(), all.end(),
                     [&](const std::string& s) { return text.find(s) != std::string_view::npos; });
}

std::string redact(std::string_view text) {
  std::string out(text);
  for (const std::string& s : snapshot()) {
    for (auto at = out.find(s); at != std::string::npos;
         at = out.find(s, at + redacted_mark.size())) {
      out.replace(at, s.size(), redacted_mark);
    }
  }
  return out;
}

}  // namespace promptcache
