// The near cache's shard lock.
#pragma once

#include <atomic>
#include <thread>

#include "thread_annotations.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace promptcache::cache::near {

// Tells the CPU this thread is spinning on a lock: x86's PAUSE, ARM's YIELD; elsewhere
// nothing (the spin is short and then yields the thread anyway).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#endif
}

// A test-and-test-and-set lock: the critical sections are a lookup and a few pointer moves,
// where an uncontended std::mutex (a call and two atomic operations through glibc) cost more
// than the rest of a hit. A waiter that spins long yields, so an oversubscribed machine does
// not burn a core on it.
class PC_CAPABILITY("mutex") SpinLock {
 public:
  void lock() noexcept PC_ACQUIRE() {
    for (int spins = 0;; ++spins) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) {
          std::this_thread::yield();
        } else {
          cpu_relax();
        }
      }
    }
  }
  void unlock() noexcept PC_RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// Holds a SpinLock for its scope (std::lock_guard, as the thread-safety analysis sees it).
class PC_SCOPED_CAPABILITY SpinGuard {
 public:
  explicit SpinGuard(SpinLock& lock) noexcept PC_ACQUIRE(lock) : lock_(lock) { lock_.lock(); }
  ~SpinGuard() PC_RELEASE() { lock_.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& lock_;
};

}  // namespace promptcache::cache::near
