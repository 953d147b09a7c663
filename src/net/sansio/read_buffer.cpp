#include "promptcache/net/sansio/read_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace promptcache::net::sansio {

std::span<char> ReadBuffer::prepare() {
  if (begin_ == end_) {
    begin_ = end_ = 0;
    if (storage_.size() > max_idle) {
      storage_.resize(initial);
      storage_.shrink_to_fit();
    }
  }
  if (storage_.size() - end_ < min_space && begin_ > 0) {
    std::memmove(storage_.data(), storage_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (storage_.size() - end_ < min_space) storage_.resize(std::max(storage_.size() * 2, initial));
  return {storage_.data() + end_, storage_.size() - end_};
}

}  // namespace promptcache::net::sansio
