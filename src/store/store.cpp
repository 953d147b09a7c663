#include "promptcache/store/store.hpp"

#include <cstring>

namespace promptcache::store {

std::uint64_t stored_version(std::string_view stored) noexcept {
  // "\0PC", format 2; the version after the two times (the layout of cache/envelope.hpp).
  constexpr std::size_t at = 22;
  if (stored.size() < at + 8 || std::memcmp(stored.data(), "\0PC\2", 4) != 0) return 0;
  std::uint64_t v = 0;
  for (std::size_t i = at + 8; i > at; --i)
    v = (v << 8) | static_cast<unsigned char>(stored[i - 1]);
  return v;
}

boost::asio::awaitable<boost::system::error_code> Store::set(std::string_view key,
                                                             std::string_view value,
                                                             std::chrono::seconds ttl, SetMode mode,
                                                             std::string_view index) {
  Write w;
  w.key = key;
  w.value = value;
  w.ttl = ttl;
  w.mode = mode;
  w.index = index;
  auto done = co_await write(w);
  co_return done ? boost::system::error_code{} : done.error();
}

boost::asio::awaitable<boost::system::error_code> Store::get_into(std::string_view key,
                                                                  Deadline deadline,
                                                                  ValueVisitor& visitor) {
  auto stored = co_await get(key, deadline);
  if (!stored) co_return stored.error();
  if (*stored) visitor.on_value(**stored);
  co_return boost::system::error_code{};
}

boost::asio::awaitable<boost::system::error_code> Store::connect() {
  co_return boost::system::error_code{};
}

}  // namespace promptcache::store
