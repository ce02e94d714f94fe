/// @file store/change_subscribers.hpp
/// The change subscribers of a store: what every store's subscribe_changes() and
/// unsubscribe_changes() need, with the guarantee store.hpp promises, in one class a store
/// holds and forwards to.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "punctual/config.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// A thread-safe list of change callbacks.
///
/// - notify() calls every callback subscribed when it starts and still subscribed when its turn
///   comes, on the calling thread, with no lock of this class held: a callback may subscribe,
///   unsubscribe (itself or another) and notify. notify() may run on several threads at once;
///   one callback may then run on several threads at once too.
/// - After unsubscribe(h) returns, the callback of `h` is not running and is never called
///   again, so its owner may destroy what the callback uses. It therefore waits for calls in
///   progress on other threads: do not call it while holding a lock such a callback takes.
///   Called from inside the callback of `h` itself it does not wait for that call (it would wait
///   for itself): the call runs to its end, and no further call starts.
/// - A callback that throws does not stop the others; notify(on_error) hands the exception to
///   `on_error`, notify() drops it (callbacks should not throw).
///
/// @code
/// class my_store : public punctual::store {
///   std::uint64_t subscribe_changes(std::function<void()> f) override {
///     return changes_.subscribe(std::move(f));
///   }
///   void unsubscribe_changes(std::uint64_t h) override { changes_.unsubscribe(h); }
///   // after each commit that may make something due sooner: changes_.notify();
///   punctual::change_subscribers changes_;
/// };
/// @endcode
class change_subscribers {
 public:
  change_subscribers() = default;
  change_subscribers(const change_subscribers&) = delete;
  change_subscribers& operator=(const change_subscribers&) = delete;

  /// Adds `on_change`; returns its handle (never 0, never reused).
  std::uint64_t subscribe(std::function<void()> on_change) {
    std::lock_guard lock(mutex_);
    subscribers_.push_back(std::make_shared<subscriber>(++last_handle_, std::move(on_change)));
    return last_handle_;
  }

  /// Removes the callback of `handle` and waits for its calls in progress on other threads (see
  /// the class comment). An unknown or already removed handle is ignored.
  void unsubscribe(std::uint64_t handle) {
    std::unique_lock lock(mutex_);
    const auto it = find(handle);
    if (it == subscribers_.end() || (*it)->handle != handle) return;
    const std::shared_ptr<subscriber> gone = std::move(*it);
    subscribers_.erase(it);
    std::size_t own = 0;  // calls of it that this thread is inside (they cannot end while it waits)
    for (const call_frame* f = innermost_call(); f; f = f->outer) own += f->callee == gone.get();
    ++gone->waiters;
    ended_.wait(lock, [&] { return gone->calls == own; });
    --gone->waiters;
  }

  /// Calls every subscribed callback (see the class comment); exceptions are dropped.
  void notify() {
    notify([](std::exception_ptr) {});
  }

  /// Calls every subscribed callback; an exception one throws is passed to on_error(exception_ptr)
  /// on this thread (which must not throw), and the remaining callbacks are still called.
  template <class OnError>
  void notify(OnError&& on_error) {
    std::unique_lock lock(mutex_);
    // Handles grow with each subscribe and the list stays in handle order, so "the first one
    // after the last called" finds each callback once, however the list changes meanwhile.
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      const std::shared_ptr<subscriber> s = *it;  // keeps it alive if unsubscribed during the call
      ++s->calls;
      lock.unlock();
      std::exception_ptr error;
      {
        call_frame frame{s.get(), innermost_call()};
        innermost_call() = &frame;
        try {
          s->on_change();
        } catch (...) {
          error = std::current_exception();
        }
        innermost_call() = frame.outer;
      }
      if (error) {
        try {
          on_error(std::move(error));
        } catch (...) {  // on_error must not throw: what it throws is dropped
        }
      }
      lock.lock();
      --s->calls;
      if (s->waiters != 0) ended_.notify_all();
      it = find(s->handle + 1);
    }
  }

  /// True when nobody is subscribed.
  bool empty() const {
    std::lock_guard lock(mutex_);
    return subscribers_.empty();
  }

 private:
  struct subscriber {
    subscriber(std::uint64_t h, std::function<void()> f) : handle(h), on_change(std::move(f)) {}
    const std::uint64_t handle;
    const std::function<void()> on_change;
    std::size_t calls = 0;    // calls in progress, on any thread (guarded by mutex_)
    std::size_t waiters = 0;  // unsubscribe() calls waiting for them to end (guarded by mutex_)
  };
  // The callbacks a thread is inside, innermost first (a callback may notify again).
  struct call_frame {
    const subscriber* callee;
    const call_frame* outer;
  };
  static const call_frame*& innermost_call() {
    thread_local const call_frame* innermost = nullptr;
    return innermost;
  }

  // The first subscriber whose handle is at least `handle` (mutex_ held).
  std::vector<std::shared_ptr<subscriber>>::iterator find(std::uint64_t handle) {
    return std::lower_bound(
        subscribers_.begin(), subscribers_.end(), handle,
        [](const std::shared_ptr<subscriber>& s, std::uint64_t h) { return s->handle < h; });
  }

  mutable std::mutex mutex_;
  std::condition_variable ended_;                         // a call ended that someone waits for
  std::vector<std::shared_ptr<subscriber>> subscribers_;  // in handle order
  std::uint64_t last_handle_ = 0;
};

PUNCTUAL_END_NAMESPACE
