// Where reply nodes go: the ReplySink interface, and Reply, an owned tree for commands off
// the hot path (INFO, SCAN, HELLO).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "promptcache/resp/node.hpp"

namespace promptcache::resp {

// Receives, in order, every node of every reply of one request. Node views are only valid
// during the call: a sink copies what it keeps.
class ReplySink {
 public:
  virtual void on_node(const Node& node) = 0;
  // Forget every node seen so far: the request is being sent again.
  virtual void reset() noexcept = 0;

 protected:
  ~ReplySink() = default;
};

struct Reply {
  Type type = Type::null;
  std::string value;            // scalars
  std::vector<Reply> elements;  // aggregates; a map holds key, value, key, value…

  [[nodiscard]] bool is_error() const noexcept { return resp::is_error(type); }
  [[nodiscard]] bool is_null() const noexcept { return type == Type::null; }
  [[nodiscard]] std::optional<std::int64_t> as_int() const noexcept;
  // The value for `key` in a map reply (or a RESP2 flat key/value array); nullptr if absent.
  [[nodiscard]] const Reply* find(std::string_view key) const noexcept;
};

// Counts error replies and sums integer replies at the top level: the sink for writes
// (SET, UNLINK) whose replies carry nothing else.
class StatusTally final : public ReplySink {
 public:
  void on_node(const Node& node) override;
  void reset() noexcept override {
    errors = 0;
    sum = 0;
  }
  std::size_t errors = 0;
  std::uint64_t sum = 0;
};

// Builds one Reply per command. Attributes are skipped; an aggregate's announced size is
// never trusted for allocation beyond a small reserve.
class ReplyCollector final : public ReplySink {
 public:
  void on_node(const Node& node) override;
  void reset() noexcept override { clear(); }

  [[nodiscard]] std::vector<Reply>& replies() noexcept { return replies_; }
  [[nodiscard]] const std::vector<Reply>& replies() const noexcept { return replies_; }
  void clear() noexcept {
    replies_.clear();
    stack_.clear();
  }

 private:
  struct Frame {
    Reply* reply;  // nullptr inside a skipped attribute
    std::uint64_t remaining;
    bool attribute;
  };
  void element_done() noexcept;

  std::vector<Reply> replies_;
  std::vector<Frame> stack_;
};

}  // namespace promptcache::resp
