// A log sink that gathers lines and writes them to a file descriptor in one write, when 64 KiB
// are pending or when flushed (serve flushes every second and at exit). The access log writes a
// line per request: a write(2) each would cost the HTTP service a system call per request.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <mutex>

#include <spdlog/sinks/base_sink.h>

namespace promptcache::app {

class BufferedFdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit BufferedFdSink(int fd) : fd_(fd) {}
  ~BufferedFdSink() override { write_out(); }
  BufferedFdSink(const BufferedFdSink&) = delete;
  BufferedFdSink& operator=(const BufferedFdSink&) = delete;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    formatter_->format(msg, buffer_);
    if (buffer_.size() >= flush_at) write_out();
  }
  void flush_() override { write_out(); }

 private:
  static constexpr std::size_t flush_at = 64 * 1024;

  void write_out() {
    const char* p = buffer_.data();
    std::size_t left = buffer_.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // nowhere to log to: the lines are dropped, the service goes on
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  int fd_;
  spdlog::memory_buf_t buffer_;
};

}  // namespace promptcache::app
