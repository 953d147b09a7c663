// The lists of the near cache's regions (window, probation, protected, placeholders).
#pragma once

#include <cstddef>

namespace promptcache::cache::near {

// An intrusive doubly linked list, oldest first, with the count and weight of its nodes. A
// Node has `Node* prev`, `Node* next` (null while it is in no list) and `std::size_t bytes`
// (its weight, fixed while it is in a list). Not thread-safe: its owner's lock guards it.
template <class Node>
class IntrusiveList {
 public:
  [[nodiscard]] Node* front() const noexcept { return head_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

  void push_back(Node* n) noexcept {
    n->prev = tail_;
    n->next = nullptr;
    (tail_ != nullptr ? tail_->next : head_) = n;
    tail_ = n;
    ++size_;
    bytes_ += n->bytes;
  }
  void remove(Node* n) noexcept {
    (n->prev != nullptr ? n->prev->next : head_) = n->next;
    (n->next != nullptr ? n->next->prev : tail_) = n->prev;
    n->prev = n->next = nullptr;
    --size_;
    bytes_ -= n->bytes;
  }
  void move_to_back(Node* n) noexcept {
    if (n == tail_) return;
    remove(n);
    push_back(n);
  }
  void clear() noexcept {
    head_ = tail_ = nullptr;
    size_ = bytes_ = 0;
  }

 private:
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
  std::size_t size_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace promptcache::cache::near
