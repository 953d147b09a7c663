// The bytes read from a connection and not parsed yet: a sans-IO buffer the runner reads into
// (prepare, then commit what arrived) and the parsers take from (data, then consume).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace promptcache::net::sansio {

class ReadBuffer {
 public:
  static constexpr std::size_t min_space = 16 * 1024;   // free room offered to a read
  static constexpr std::size_t initial = 64 * 1024;     // first allocation
  static constexpr std::size_t max_idle = 1024 * 1024;  // kept when empty; larger shrinks

  // Room for the next read, at least min_space: unparsed bytes move to the front, the buffer
  // doubles if that is not enough, and an empty buffer grown past max_idle shrinks back.
  [[nodiscard]] std::span<char> prepare();
  // `n` bytes arrived in the room prepare() gave.
  void commit(std::size_t n) noexcept { end_ += n; }
  [[nodiscard]] std::string_view data() const noexcept {
    return {storage_.data() + begin_, end_ - begin_};
  }
  // The first `n` bytes of data() are parsed.
  void consume(std::size_t n) noexcept { begin_ += n; }
  void clear() noexcept { begin_ = end_ = 0; }
  [[nodiscard]] std::size_t capacity() const noexcept { return storage_.size(); }

 private:
  std::string storage_;
  std::size_t begin_ = 0;  // [begin_, end_) read, not parsed
  std::size_t end_ = 0;
};

}  // namespace promptcache::net::sansio
