/// @file detail/sleeper.hpp
/// Clock-aware waits and wakes for the scheduler's loops.
///
/// Every wait is on the scheduler's clock (which may be a manual clock in tests), bounded by
/// max_wait of real time so that clock steps and suspends cannot make a loop sleep past due
/// work, and ended early by a wake. All members are strand-only: construct and use a sleeper
/// on one strand.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// Timers that coroutines are waiting on, which another party cancels to wake them all (the
/// sleeper's waits, the guard's backoffs, async_stop's waiters). Strand-only.
class timer_list {
 public:
  /// Keeps a timer in the list for its own lifetime (a coroutine's wait).
  class entry {
   public:
    entry(timer_list& list, asio::steady_timer& t) : list_(list), timer_(&t) {
      list_.timers_.push_back(timer_);
    }
    entry(const entry&) = delete;
    entry& operator=(const entry&) = delete;
    ~entry() { std::erase(list_.timers_, timer_); }

   private:
    timer_list& list_;
    asio::steady_timer* timer_;
  };

  /// Cancels every timer in the list: their waits end (with operation_aborted).
  void cancel_all() {
    for (auto* t : timers_) t->cancel();
  }

 private:
  std::vector<asio::steady_timer*> timers_;
};

class sleeper {
 public:
  using strand_type = asio::strand<asio::any_io_executor>;

  /// One loop's wake-up: a timer it sleeps on and a flag for a wake that came while it was
  /// awake (so the wake is not lost). Register it with add() before use.
  struct waker {
    explicit waker(strand_type& s) : timer(s) {}
    asio::steady_timer timer;
    bool pending = false;
  };

  sleeper(strand_type& strand, clock& c, duration max_wait)
      : strand_(strand), clock_(c), max_wait_(max_wait) {}

  clock& clk() const noexcept { return clock_; }
  time_point now() const { return clock_.now(); }
  duration max_wait() const noexcept { return max_wait_; }

  /// Set when the scheduler is stopping: waits that asked to end on stop return.
  bool stopping = false;

  /// Makes `w` one of the wakers wake_all() wakes.
  void add(waker& w) { wakers_.push_back(&w); }

  /// Wakes the loop sleeping on `w` (or its next sleep, if it is awake). Only the first wake
  /// after the sleeper last woke cancels its timer: a cancel takes the reactor's lock, and the
  /// flush loop is woken once per finished run.
  void wake(waker& w) {
    if (std::exchange(w.pending, true)) return;
    w.timer.cancel();
  }

  /// Wakes every registered waker and every wait_until() in progress (they re-read the clock).
  void wake_all() {
    for (waker* w : wakers_) wake(*w);
    waits_.cancel_all();
  }

  /// How long to sleep in real time for `d` of scheduler-clock time: at most max_wait; on a
  /// clock that does not advance by itself, max_wait (its jumps wake the sleeper).
  duration real_wait(duration d) const {
    return clock_.advances_by_itself() ? std::min<duration>(d, max_wait_) : max_wait_;
  }

  /// Sleeps until `until` on the scheduler clock, at most max_wait at a time, or until woken
  /// through `w`. Returns at once if a wake is pending.
  asio::awaitable<void> sleep(waker& w, time_point until) {
    if (w.pending) {
      w.pending = false;
      co_return;
    }
    const auto t = now();
    if (until <= t) co_return;
    w.timer.expires_after(real_wait(until - t));
    asio::error_code ec;
    co_await w.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    w.pending = false;
  }

  /// Waits until `until` on the scheduler clock (re-checked at least every max_wait and on
  /// every wake_all()). Returns early when the awaiting coroutine is cancelled, and with
  /// `end_on_stop` when `stopping` is set.
  asio::awaitable<void> wait_until(time_point until, bool end_on_stop = false) {
    return wait_reading([this] { return now(); }, until, end_on_stop);
  }

  /// The clock's steady reading (clock::elapsed()).
  duration elapsed() const { return clock_.elapsed(); }

  /// Waits until `d` has elapsed on the clock's steady reading (clock::elapsed()), which steps
  /// of the wall clock do not move: for timeouts and backoffs. Otherwise as wait_until().
  asio::awaitable<void> wait_elapsed(duration d, bool end_on_stop = false) {
    const auto until = clock_.elapsed() + d;
    return wait_reading([this] { return clock_.elapsed(); }, until, end_on_stop);
  }

 private:
  // Waits until read() >= until, as wait_until() describes.
  template <class Read, class Point>
  asio::awaitable<void> wait_reading(Read read, Point until, bool end_on_stop) {
    asio::steady_timer timer(strand_);
    const timer_list::entry registered(waits_, timer);
    for (;;) {
      const auto t = read();
      if (t >= until || (end_on_stop && stopping)) co_return;
      timer.expires_after(real_wait(until - t));
      asio::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      auto cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none) co_return;  // the awaiter lost interest
    }
  }

  strand_type& strand_;
  clock& clock_;
  duration max_wait_;
  std::vector<waker*> wakers_;
  timer_list waits_;  // the wait_until()/wait_elapsed() in progress
};

}  // namespace detail
PUNCTUAL_END_NAMESPACE
