// A pool of objects that one thread uses at a time (a Redis connection, an HTTP client): a
// handler thread leases one, uses it alone, and gives it back when the lease ends, so a
// service with many handler threads keeps a few warm connections instead of opening one per
// request or serializing every request on one.
//
// Objects are made on demand (there are never more than the threads leasing at once) and kept
// for the next lease. An object whose use went wrong is still returned: what it holds (a
// hiredis context, a kept-alive socket) reconnects by itself.
//
// Thread-safety: acquire() and the return of a lease are safe from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace qsim {

template <class T>
class Pool {
public:
  explicit Pool(std::function<std::unique_ptr<T>()> make) : make_(std::move(make)) {}
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  class Lease {
  public:
    Lease(Pool& pool, std::unique_ptr<T> item) : pool_(&pool), item_(std::move(item)) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), item_(std::move(o.item_)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (item_) pool_->give_back(std::move(item_));
    }
    T& operator*() const { return *item_; }
    T* operator->() const { return item_.get(); }

  private:
    Pool* pool_;
    std::unique_ptr<T> item_;
  };

  Lease acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto item = std::move(idle_.back());
        idle_.pop_back();
        return Lease(*this, std::move(item));
      }
    }
    return Lease(*this, make_());  // made outside the lock: connecting may take a while
  }

  // Objects made so far and now idle; for tests.
  std::size_t idle() const {
    std::lock_guard lock(mu_);
    return idle_.size();
  }

private:
  void give_back(std::unique_ptr<T> item) {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(item));
  }

  std::function<std::unique_ptr<T>()> make_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<T>> idle_;
};

}  // namespace qsim
