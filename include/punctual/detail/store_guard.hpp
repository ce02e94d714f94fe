/// @file detail/store_guard.hpp
/// The one guard every store call of the scheduler's loops goes through: a timeout, retries
/// with an exponential, capped, jittered backoff, the error streak and the store_error /
/// store_recovered events.
#pragma once

#include <algorithm>
#include <atomic>
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

#include <asio/awaitable.hpp>
#include <asio/experimental/awaitable_operators.hpp>

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

/// The guard's settings (taken from scheduler_options).
struct guard_settings {
  duration store_timeout = std::chrono::seconds{30};
  duration backoff_initial = std::chrono::milliseconds{100};
  duration backoff_max = std::chrono::seconds{30};
};

/// The state of the store as the guard saw it last; readable from any thread.
struct store_status {
  std::uint64_t error_streak = 0;  ///< consecutive failed calls (0: the last call succeeded)
  std::string last_error;          ///< kept after recovery
  std::string last_error_op;
};

/// Strand-only, except status() and errors(), which any thread may call.
class store_guard {
 public:
  store_guard(store& db, sleeper& sleep, event_bus& events, std::mt19937_64& rng, guard_settings settings)
      : db_(db), sleep_(sleep), events_(events), rng_(rng), settings_(settings) {}

  /// After this instant a critical call gives up while stopping (strand-only).
  time_point flush_deadline = time_point::max();
  /// While stopping, a failed critical call is retried at least this often.
  static constexpr duration stopping_retry = std::chrono::seconds{1};

  /// Runs a store operation with store_timeout measured on the scheduler clock. (Asio's `||`
  /// waits for the first branch that completes *without* an exception, so the operation's
  /// exception is carried out as a value: a failing call fails at once with its own error, not
  /// after store_timeout.) On a timeout the operation's coroutine is cancelled and destroyed;
  /// see store.hpp for what a store must guarantee then. Stores that never block (may_block()
  /// false) are awaited directly.
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
    auto r = co_await (caught(std::move(op)) || sleep_.wait_until(sleep_.now() + settings_.store_timeout));
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
  /// until it succeeds: each failure (an exception, or store_timeout) is reported as a
  /// store_error event and followed by a backoff of d = min(backoff_max, backoff_initial *
  /// 2^(attempt-1)), drawn uniformly in [d/2, d]; the first success after failures emits
  /// store_recovered. `make` is called again for each attempt, so it may read the clock anew.
  /// Throws stop_requested once the scheduler is stopping (see guard_mode).
  template <class MakeOp>
  auto guarded(std::string_view op, MakeOp make, guard_mode mode = guard_mode::normal) -> decltype(make()) {
    using T = typename std::invoke_result_t<MakeOp>::value_type;
    for (std::uint32_t attempt = 1;; ++attempt) {
      if (sleep_.stopping && (mode == guard_mode::normal || sleep_.now() > flush_deadline))
        throw stop_requested{};
      std::string failure;
      try {
        if constexpr (std::is_void_v<T>) {
          co_await with_timeout(make());
          note_success(op);
          co_return;
        } else {
          T result = co_await with_timeout(make());
          note_success(op);
          co_return result;
        }
      } catch (const stop_requested&) {
        throw;
      } catch (const std::exception& e) {
        failure = e.what();
        if (failure.empty()) failure = "unknown error";
      }
      report_error(op, failure, attempt);
      const double j = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
      const auto until =
          sleep_.now() + backoff_delay(settings_.backoff_initial, settings_.backoff_max, attempt, j);
      if (sleep_.stopping && mode == guard_mode::critical) {
        // A critical call while stopping: the delay still holds (no hammering a failing store),
        // but at most stopping_retry (the outcome is written soon after the store is back) and
        // not past the flush deadline, which stays time_point::max() while running jobs are
        // waited for.
        // (No std::min({...}) here: GCC 12 rejects an initializer list inside a coroutine.)
        const auto deadline =
            flush_deadline == time_point::max() ? flush_deadline : flush_deadline + duration{1};
        co_await sleep_.wait_until(std::min(std::min(until, sleep_.now() + stopping_retry), deadline));
      } else {
        // The whole delay on the scheduler clock (wakes and clock jumps only make it re-check),
        // ending early when the scheduler begins to stop.
        co_await sleep_.wait_until(until, /*end_on_stop=*/true);
      }
    }
  }

  /// A call succeeded: ends the error streak (emitting store_recovered if there was one).
  void note_success(std::string_view op) {
    store_status was;
    {
      std::lock_guard lock(mutex_);
      if (status_.error_streak == 0) return;
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

  /// A call failed: counts it, lengthens the streak and emits store_error.
  void report_error(std::string_view op, const std::string& what, std::uint32_t attempt) {
    errors_.fetch_add(1);
    {
      std::lock_guard lock(mutex_);
      ++status_.error_streak;
      status_.last_error = what;
      status_.last_error_op = op;
    }
    event e = store_event(event_kind::store_error, op);
    e.message = what;
    e.attempt = attempt;
    events_.emit(e);
  }

  /// Forgets the streak (a new start). Any thread.
  void reset() {
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
};

}  // namespace detail
PUNCTUAL_END_NAMESPACE
