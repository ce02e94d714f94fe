/// @file impl/lifecycle.hpp
/// Part of scheduler.hpp: construction, start, and the stop.
#pragma once

#include <unistd.h>

#include <map>
#include <system_error>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/impl/scheduler_core.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {}  // namespace detail

inline std::string default_node_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return host[0] ? std::string(host) : std::string("localhost");
}

namespace detail {

inline scheduler_core::scheduler_core(asio::any_io_executor ex, scheduler_options o)
    : strand_(asio::make_strand(ex)),
      opts_(std::move(o)),
      pool_(std::max<std::size_t>(1, opts_.blocking_threads)),
      sleep_(
          strand_,
          [&]() -> clock& {
            if (!opts_.time_source) opts_.time_source = &system_clock::instance();
            return *opts_.time_source;
          }(),
          opts_.max_wait),
      schedule_waker_(strand_),
      job_waker_(strand_),
      flush_waker_(strand_),
      lease_waker_(strand_),
      stop_waker_(strand_),
      guard_(
          [&]() -> store& {
            if (!opts_.job_store) opts_.job_store = std::make_shared<memory_store>();
            return *opts_.job_store;
          }(),
          sleep_, events_, rng_,
          guard_settings{opts_.store_timeout, opts_.backoff_initial, opts_.backoff_max, opts_.max_wait}),
      engine_(strand_, tasks_, events_, sleep_, flush_waker_, stop_waker_, rng_, pool_,
              scheduler_metrics::lateness_bounds) {
  if (opts_.node.empty()) opts_.node = default_node_name();
  if (opts_.batch == 0) opts_.batch = 1;
  std::uint64_t seed = opts_.seed;
  if (seed == 0) seed = std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32);
  rng_.seed(seed);
  for (auto* w : {&schedule_waker_, &job_waker_, &flush_waker_, &lease_waker_, &stop_waker_}) sleep_.add(*w);
}

inline void scheduler_core::start() {
  scheduler_state expected = scheduler_state::stopped;
  if (!state_.compare_exchange_strong(expected, scheduler_state::running)) return;
  sleep_.stopping = false;
  guard_.reset();
  guard_.flush_deadline = time_point::max();
  {
    std::lock_guard lock(tick_mutex_);
    last_tick_.reset();
  }
  for (auto& t : loop_ticks_) t.store(never, std::memory_order_relaxed);
  engine_.owner = weak_from_this();
  clock_sub_ = clk().subscribe([weak = weak_from_this()] {
    if (auto s = weak.lock()) s->post_wake_all();
  });
  store_sub_ = db().subscribe_changes([weak = weak_from_this()] {
    if (auto s = weak.lock()) s->post_wake_all();
  });
  asio::co_spawn(
      strand_, [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->boot(); },
      asio::detached);
}

// From any thread: coalesces bursts of notifications into one strand hop.
inline void scheduler_core::post_wake_all() {
  if (wake_posted_.exchange(true)) return;
  asio::post(strand_, [self = shared_from_this()] {
    self->wake_posted_ = false;
    self->sleep_.wake_all();
  });
}

inline void scheduler_core::begin_stop(stop_mode mode, duration grace) {
  if (state_.load() != scheduler_state::running) return;
  state_ = scheduler_state::stopping;
  sleep_.stopping = true;
  sleep_.wake_all();
  // Spawned on its own, with no cancellation slot: whoever waits for it, the stop runs to its
  // end (leases released, outcomes recorded).
  asio::co_spawn(
      strand_,
      [self = shared_from_this(), mode, grace]() -> asio::awaitable<void> {
        co_await self->stop(mode, grace);
      },
      asio::detached);
}

inline asio::awaitable<void> scheduler_core::await_stop(stop_mode mode, duration grace) {
  begin_stop(mode, grace);
  while (state_.load() != scheduler_state::stopped) {
    asio::steady_timer timer(strand_);
    const timer_list::entry registered(stop_waiters_, timer);
    timer.expires_after(opts_.max_wait);  // a bound only: finish_stop() cancels the timer
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none && state_.load() != scheduler_state::stopped)
      throw std::system_error(make_error_code(asio::error::operation_aborted),
                              "async_stop: the wait was cancelled (the stop goes on)");
  }
}

inline asio::awaitable<void> scheduler_core::stop(stop_mode mode, duration grace) {
  const auto started = now();
  const auto deadline = started + grace;
  if (mode == stop_mode::wait)
    while (!engine_.idle() && now() < deadline) co_await sleep_.sleep(stop_waker_, deadline);
  engine_.cancel_all("scheduler stopping");
  // Cancelled runs end promptly (commands after their kill grace); a task that ignores
  // cancellation is given up on after the grace, recorded as cancelled, and left behind.
  const auto give_up = now() + std::max(grace, duration{std::chrono::seconds{10}});
  while (!engine_.idle() && now() < give_up) co_await sleep_.sleep(stop_waker_, give_up);
  engine_.give_up_all("did not stop within the grace period");
  // Outcomes that cannot be written yet (the store is down or the disk full) are retried until
  // the grace, counted from the stop's start (at least 10 s), is over: a run that ended early
  // does not add a grace of its own.
  guard_.flush_deadline = std::max(started + std::max(grace, duration{std::chrono::seconds{10}}), now());
  sleep_.wake_all();
  while (loops_running_ > 0) co_await sleep_.sleep(stop_waker_, now() + opts_.max_wait);
  auto& to_flush = engine_.to_flush();
  if (!to_flush.empty()) {  // the flush loop gave up (store down): one last attempt
    try {
      co_await guard_.with_timeout(db().update_jobs(opts_.node, to_flush));
    } catch (const std::exception& e) {
      guard_.report_error("update_jobs", e.what(), 0, guard_loop::flush);
    }
    to_flush.clear();
  }
  try {
    co_await guard_.with_timeout(db().release_leases(opts_.node));
  } catch (const std::exception& e) {
    guard_.report_error("release_leases", e.what(), 0, guard_loop::schedule);
  }
  finish_stop(mode);
}

inline void scheduler_core::finish_stop(stop_mode mode) {
  if (clock_sub_) clk().unsubscribe(clock_sub_);
  if (store_sub_) db().unsubscribe_changes(store_sub_);
  clock_sub_ = store_sub_ = 0;
  state_ = scheduler_state::stopped;
  stop_waiters_.cancel_all();
  emit_simple(event_kind::scheduler_stopped, mode == stop_mode::wait ? "wait" : "cancel");
}

inline void scheduler_core::emit_simple(event_kind k, std::string message) {
  event e = make_event(k, {});
  e.message = std::move(message);
  events_.emit(e);
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
