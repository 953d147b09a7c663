// A pipeline of Redis commands encoded as RESP arrays of bulk strings: a value, independent
// of any connection, that may be reused (clear() keeps the buffer).
#pragma once

#include <charconv>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

namespace promptcache::resp {

class Request {
 public:
  Request() = default;

  // Appends one command: push("SET", key, value, "EX", 60). Arguments are string-like or
  // integers.
  template <class... Args>
  Request& push(std::string_view command, const Args&... args) {
    // Room for the whole command at once: appended piece by piece, a GET grew the text three
    // times (an allocation and a copy each).
    payload_.reserve(payload_.size() + header_room + room(command) + (room(args) + ... + 0));
    add_header(1 + sizeof...(Args));
    add_bulk(command);
    (add_arg(args), ...);
    ++commands_;
    return *this;
  }

  // Appends one command whose arguments are a range of string-like values.
  template <class Range>
  Request& push_range(std::string_view command, const Range& args) {
    std::size_t n = 0;
    for (const auto& a : args) {
      (void)a;
      ++n;
    }
    std::size_t bytes = header_room + room(command);
    for (const auto& a : args) bytes += room(a);
    payload_.reserve(payload_.size() + bytes);
    add_header(1 + n);
    add_bulk(command);
    for (const auto& a : args) add_arg(a);
    ++commands_;
    return *this;
  }

  [[nodiscard]] std::string_view payload() const noexcept { return payload_; }
  [[nodiscard]] std::size_t commands() const noexcept { return commands_; }
  [[nodiscard]] bool empty() const noexcept { return commands_ == 0; }

  // Idempotent requests may be sent again after a timeout (REDIS_RETRY_ON_TIMEOUT).
  [[nodiscard]] bool idempotent() const noexcept { return idempotent_; }
  Request& set_idempotent(bool v) noexcept {
    idempotent_ = v;
    return *this;
  }

  // When the caller gives up on the replies (a caller's budget): unset, the connection's
  // command timeout applies, and a timed-out idempotent request may be sent once more; set,
  // the earlier of the two ends the wait and nothing is sent again.
  [[nodiscard]] std::chrono::steady_clock::time_point deadline() const noexcept {
    return deadline_;
  }
  Request& set_deadline(std::chrono::steady_clock::time_point t) noexcept {
    deadline_ = t;
    return *this;
  }

  // Appends the commands of `other` (a pipeline made of single commands).
  Request& append(const Request& other) {
    payload_.append(other.payload_);
    commands_ += other.commands_;
    return *this;
  }

  void reserve(std::size_t bytes) { payload_.reserve(bytes); }
  void clear() noexcept {
    payload_.clear();
    commands_ = 0;
  }

 private:
  // The most an argument's framing adds ($, up to 20 digits, two CRLFs), and a header's.
  static constexpr std::size_t framing_room = 25;
  static constexpr std::size_t header_room = 23;
  template <std::integral T>
  static constexpr std::size_t room(T) {
    return framing_room + 20;
  }
  template <class T>
  requires std::convertible_to<const T&, std::string_view>
  static std::size_t room(const T& v) { return framing_room + std::string_view(v).size(); }

  void add_header(std::size_t n) {
    payload_.push_back('*');
    add_decimal(n);
  }
  void add_bulk(std::string_view s) {
    payload_.push_back('$');
    add_decimal(s.size());
    payload_.append(s);
    payload_.append("\r\n", 2);
  }
  template <std::integral T>
  void add_arg(T v) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
    (void)ec;
    add_bulk(std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  template <class T>
  requires std::convertible_to<const T&, std::string_view>
  void add_arg(const T& v) { add_bulk(std::string_view(v)); }
  template <class T>
  void add_decimal(T n) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    (void)ec;
    // Bounded for g++ 12 at -O3, which cannot tell that `end` stays inside `digits` and warns
    // of a copy past the maximum object size (stringop-overflow).
    const auto length = static_cast<std::size_t>(end - digits);
    payload_.append(digits, length <= sizeof digits ? length : 0);
    payload_.append("\r\n", 2);
  }

  std::string payload_;
  std::size_t commands_ = 0;
  bool idempotent_ = false;
  std::chrono::steady_clock::time_point deadline_{};
};

}  // namespace promptcache::resp
