/// @file detail/store_guard.hpp
/// The one guard every store call of the scheduler's loops goes through: a timeout, retries
/// with an exponential, capped, jittered backoff (cut short once another call succeeds), each
/// loop's store status, and the store_error / store_recovered events.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/detail/fire_plan.hpp"
#include "punctual/detail/sleeper.hpp"
#include "punctual/events.hpp"
#include "punctual/store/store.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// Thrown inside loops when the scheduler is stopping; never escapes the scheduler.
struct stop_requested {};

/// What the guard does once the scheduler is stopping.
enum class guard_mode {
  normal,    ///< gives up (stop_requested) at once
  critical,  ///< keeps retrying until the flush deadline (writing finished runs back)
};

/// Who makes a guarded call: the start-up recovery (boot) or one of the scheduler's loops.
/// Each loop makes one call at a time.
enum class guard_loop : std::uint8_t { boot, schedule, job, flush, lease };
inline constexpr std::size_t guard_loop_count = 5;

/// "boot", "schedule", "job", "flush", "lease".
inline std::string_view to_string(guard_loop l) {
  static constexpr std::string_view names[guard_loop_count] = {"boot", "schedule", "job", "flush", "lease"};
  return names[static_cast<std::size_t>(l)];
}

/// The guard's settings (taken from scheduler_options).
struct guard_settings {
  duration store_timeout = std::chrono::seconds{30};
  duration backoff_initial = std::chrono::milliseconds{100};
  duration backoff_max = std::chrono::seconds{30};
  /// A backoff ends early once another call succeeded, but not before this has passed since
  /// the failure (the scheduler's max_wait).
  duration early_retry = std::chrono::seconds{1};
};

/// One loop's store calls as the guard saw them last.
struct loop_store_status {
  bool failing = false;             ///< its current call failed and has not succeeded since
  std::uint64_t error_streak = 0;   ///< failed attempts of that call (0 when not failing)
  std::optional<time_point> since;  ///< when it began failing
  std::string last_error;           ///< its last error (kept after recovery)
  std::string last_error_op;
};

/// The state of the store as the guard saw it last; readable from any thread. An outage lasts
/// from the first failed call while no loop was failing until no loop is failing any more.
struct store_status {
  std::uint64_t error_streak = 0;  ///< failed calls in the current outage (0: no loop is failing)
  std::string last_error;          ///< kept after recovery
  std::string last_error_op;
  std::array<loop_store_status, guard_loop_count> loops{};  ///< indexed by guard_loop
};

/// Strand-only, except status() and errors(), which any thread may call.
///
/// The store is back as soon as any call succeeds: that ends the backoff of every other loop
/// (after at least early_retry since its failure), so no loop sleeps out a backoff that grew
/// while the store was down. A loop whose own call keeps failing while other calls work (a
/// full disk: reads work, inserts fail) is then retried at most once per early_retry.
class store_guard {
 public:
  store_guard(store& db, sleeper& sleep, event_bus& events, std::mt19937_64& rng, guard_settings settings)
      : db_(db), sleep_(sleep), events_(events), rng_(rng), settings_(settings) {}

  /// After this instant a critical call gives up while stopping (strand-only).
  time_point flush_deadline = time_point::max();
  /// While stopping, a failed critical call is retried at least this often.
  static constexpr duration stopping_retry = std::chrono::seconds{1};

  /// Runs a store operation with store_timeout measured as steady time (clock::elapsed(): a
  /// step of the wall clock neither fires nor delays it). (Asio's `||` waits for the first
  /// branch that completes *without* an exception, so the operation's exception is carried out
  /// as a value: a failing call fails at once with its own error, not after store_timeout.) On
  /// a timeout the operation's coroutine is cancelled and destroyed; see store.hpp for what a
  /// store must guarantee then. Stores that never block (may_block() false) are awaited directly.
  template <class T>
  asio::awaitable<T> with_timeout(asio::awaitable<T> op) {
    using namespace asio::experimental::awaitable_operators;
    if (!db_.may_block()) co_return co_await std::move(op);  // nothing to time out
    using value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
    using outcome = std::pair<std::optional<value>, std::exception_ptr>;
    auto caught = [](asio::awaitable<T> o) -> asio::awaitable<outcome> {
      try {
        if constexpr (std::is_void_v<T>) {
          co_await std::move(o);
          co_return outcome{value{}, nullptr};
        } else {
          co_return outcome{co_await std::move(o), nullptr};
        }
      } catch (...) {
        co_return outcome{std::nullopt, std::current_exception()};
      }
    };
    auto r = co_await (caught(std::move(op)) || sleep_.wait_elapsed(settings_.store_timeout));
    if (r.index() == 1)
      throw std::runtime_error("timed out after " + format_duration(settings_.store_timeout));
    auto& [v, error] = std::get<0>(r);
    if (error) std::rethrow_exception(error);
    if constexpr (std::is_void_v<T>)
      co_return;
    else
      co_return std::move(*v);
  }

  /// Calls `make()` (which starts the store operation, e.g. `[&] { return db.next_due(); }`)
  /// for `loop` until it succeeds: each failure (an exception, or store_timeout) is reported as
  /// a store_error event and followed by a backoff of d = min(backoff_max, backoff_initial *
  /// 2^(attempt-1)), drawn uniformly in [d/2, d], which ends early once another call succeeds
  /// (not before early_retry). The success that leaves no loop failing emits store_recovered.
  /// `make` is called again for each attempt, so it may read the clock anew. Throws
  /// stop_requested once the scheduler is stopping (see guard_mode).
  template <class MakeOp>
  auto guarded(std::string_view op, MakeOp make, guard_mode mode = guard_mode::normal,
               guard_loop loop = guard_loop::boot) -> decltype(make()) {
    using T = typename std::invoke_result_t<MakeOp>::value_type;
    for (std::uint32_t attempt = 1;; ++attempt) {
      if (sleep_.stopping && (mode == guard_mode::normal || sleep_.now() > flush_deadline))
        throw stop_requested{};
      std::string failure;
      try {
        if constexpr (std::is_void_v<T>) {
          co_await with_timeout(make());
          note_success(op, loop);
          co_return;
        } else {
          T result = co_await with_timeout(make());
          note_success(op, loop);
          co_return result;
        }
      } catch (const stop_requested&) {
        throw;
      } catch (const std::exception& e) {
        failure = e.what();
        if (failure.empty()) failure = "unknown error";
      }
      report_error(op, failure, attempt, loop);
      const double j = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
      const auto delay = backoff_delay(settings_.backoff_initial, settings_.backoff_max, attempt, j);
      if (sleep_.stopping && mode == guard_mode::critical) {
        // A critical call while stopping: the delay still holds (no hammering a failing store),
        // but at most stopping_retry (the outcome is written soon after the store is back) and
        // not past the flush deadline, which stays time_point::max() while running jobs are
        // waited for (so no deadline arithmetic may overflow).
        const auto t = sleep_.now();
        auto wait = std::min(delay, stopping_retry);
        if (flush_deadline <= t)
          wait = duration{1};
        else if (flush_deadline - t < wait)
          wait = flush_deadline - t + duration{1};
        co_await sleep_.wait_elapsed(wait);
      } else {
        // The delay as elapsed (steady) time — wakes and clock jumps only make it re-check,
        // steps of the wall clock neither lengthen nor cut it — ending early when the scheduler
        // begins to stop, or once another call succeeded (not before early_retry).
        co_await backoff(delay, settings_.early_retry);
      }
    }
  }

  /// A call of `loop` succeeded: the loop is not failing any more; when no loop is, the outage
  /// is over (store_recovered). Ends the backoff of the other loops (see backoff()).
  void note_success(std::string_view op, guard_loop loop = guard_loop::boot) {
    ++successes_;
    backoffs_.cancel_all();
    const auto i = static_cast<std::size_t>(loop);
    if (!failing_[i]) return;  // the common case: nothing to record
    failing_[i] = false;
    const bool outage_over = std::find(failing_.begin(), failing_.end(), true) == failing_.end();
    store_status was;
    {
      std::lock_guard lock(mutex_);
      auto& l = status_.loops[i];
      l.failing = false;
      l.error_streak = 0;
      l.since.reset();
      if (!outage_over) return;
      was = status_;
      status_.error_streak = 0;
    }
    event e = store_event(event_kind::store_recovered, op);
    e.count = was.error_streak;
    e.message = "store works again after " + std::to_string(was.error_streak) + " failed call" +
                (was.error_streak > 1 ? "s" : "") + " (last: " + was.last_error_op + ": " + was.last_error +
                ")";
    events_.emit(e);
  }

  /// A call of `loop` failed: counts it, marks the loop failing, lengthens the outage's streak
  /// and emits store_error.
  void report_error(std::string_view op, const std::string& what, std::uint32_t attempt,
                    guard_loop loop = guard_loop::boot) {
    errors_.fetch_add(1);
    const auto i = static_cast<std::size_t>(loop);
    failing_[i] = true;
    std::uint64_t streak = 0;
    {
      std::lock_guard lock(mutex_);
      ++status_.error_streak;
      status_.last_error = what;
      status_.last_error_op = op;
      auto& l = status_.loops[i];
      if (!l.failing) l.since = sleep_.now();
      l.failing = true;
      ++l.error_streak;
      l.last_error = what;
      l.last_error_op = op;
      streak = status_.error_streak;
    }
    event e = store_event(event_kind::store_error, op);
    e.message = what;
    e.attempt = attempt;
    e.count = streak;
    events_.emit(e);
  }

  /// Forgets the streak and the loops' status (a new start). Strand-only.
  void reset() {
    failing_.fill(false);
    std::lock_guard lock(mutex_);
    status_ = {};
  }
  /// Any thread.
  store_status status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }
  /// Failed calls since construction. Any thread.
  std::uint64_t errors() const noexcept { return errors_.load(); }

 private:
  // Waits `delay` of elapsed time (or until the stop), or — once a call succeeded meanwhile —
  // until `not_before` has elapsed, whichever comes first.
  asio::awaitable<void> backoff(duration delay, duration not_before) {
    using namespace asio::experimental::awaitable_operators;
    if (not_before >= delay) {
      co_await sleep_.wait_elapsed(delay, /*end_on_stop=*/true);
      co_return;
    }
    co_await (sleep_.wait_elapsed(delay, /*end_on_stop=*/true) ||
              after_success(successes_, sleep_.elapsed() + not_before));
  }

  // Ends once a call succeeded after the count was `seen`, and the clock's elapsed reading has
  // reached `not_before`; returns early when cancelled (the backoff ended first).
  asio::awaitable<void> after_success(std::uint64_t seen, duration not_before) {
    {
      asio::steady_timer timer(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
      const timer_list::entry registered(backoffs_, timer);
      while (successes_ == seen) {
        asio::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
          co_return;
        timer.expires_at(asio::steady_timer::time_point::max());
      }
    }
    const auto left = not_before - sleep_.elapsed();
    if (left > duration::zero()) co_await sleep_.wait_elapsed(left);
  }

  event store_event(event_kind k, std::string_view op) const {
    event e;
    e.kind = k;
    e.at = sleep_.now();
    e.op = op;
    return e;
  }

  store& db_;
  sleeper& sleep_;
  event_bus& events_;
  std::mt19937_64& rng_;
  guard_settings settings_;
  mutable std::mutex mutex_;
  store_status status_;  // guarded by mutex_
  std::atomic<std::uint64_t> errors_{0};
  // strand-only
  std::array<bool, guard_loop_count> failing_{};  // status_.loops[i].failing, read without the lock
  std::uint64_t successes_ = 0;                   // successful calls since construction
  timer_list backoffs_;                           // after_success() waits, ended by a success
};

}  // namespace detail
PUNCTUAL_END_NAMESPACE
