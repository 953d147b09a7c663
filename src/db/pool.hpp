// A bounded set of open database connections shared by threads: a caller leases one, uses it
// alone, and gives it back; a connection found broken is dropped and a new one made on demand.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace promptcache::db {

template <class Conn>
class Pool {
 public:
  using Factory = std::function<std::unique_ptr<Conn>()>;

  Pool(std::size_t max, Factory make) : max_(max == 0 ? 1 : max), make_(std::move(make)) {}

  class Lease {
   public:
    Lease(Pool& pool, std::unique_ptr<Conn> conn) : pool_(&pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), conn_(std::move(other.conn_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->give_back(std::move(conn_));
    }
    Conn& operator*() const noexcept { return *conn_; }
    Conn* operator->() const noexcept { return conn_.get(); }
    // The connection is unusable: it is closed instead of going back.
    void discard() noexcept { conn_.reset(); }

   private:
    Pool* pool_;
    std::unique_ptr<Conn> conn_;
  };

  // Blocks while every connection is leased. Throws what the factory throws.
  Lease acquire() {
    std::unique_lock lock(mutex_);
    freed_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(conn));
    }
    ++open_;
    lock.unlock();
    try {
      return Lease(*this, make_());
    } catch (...) {
      give_back(nullptr);
      throw;
    }
  }

 private:
  void give_back(std::unique_ptr<Conn> conn) {
    {
      std::lock_guard lock(mutex_);
      if (conn) {
        idle_.push_back(std::move(conn));
      } else {
        --open_;
      }
    }
    freed_.notify_one();
  }

  const std::size_t max_;
  Factory make_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::size_t open_ = 0;  // leased + idle
};

}  // namespace promptcache::db
