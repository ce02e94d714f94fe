/// @file impl/scheduler_core.hpp
/// Part of scheduler.hpp (included at its end): the state behind a `scheduler`, and the
/// declarations of its loops. Where each piece lives:
///  - impl/lifecycle.hpp         start(), the stop and async_stop's waiting
///  - impl/supervisor.hpp        boot (recovery before anything runs) and the loop supervisor
///  - impl/schedule_loop.hpp     the schedule loop: due schedules -> planned runs
///  - impl/job_loop.hpp          the job loop: due jobs -> the job engine
///  - impl/flush_loop.hpp        the flush loop: finished runs -> the store
///  - impl/lease_loop.hpp        the lease loop: extend leases, recover abandoned runs, purge
///  - impl/health.hpp            health() and metrics()
///  - impl/schedule_operations.hpp  add / modify / remove / pause / resume / run now
///  - detail/store_guard.hpp     the guard around every store call
///  - detail/sleeper.hpp         clock-aware waits and wakes
///  - detail/job_engine.hpp      dispatch, runners, completion, retries
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>

#include "punctual/detail/clock_step.hpp"
#include "punctual/detail/fire_plan.hpp"
#include "punctual/detail/job_engine.hpp"
#include "punctual/detail/sleeper.hpp"
#include "punctual/detail/store_guard.hpp"
#include "punctual/store/memory_store.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

class scheduler_core : public std::enable_shared_from_this<scheduler_core> {
 public:
  scheduler_core(asio::any_io_executor ex, scheduler_options o);
  ~scheduler_core() { pool_.join(); }

  // ---- set at construction, then read-only: any thread ------------------------------
  asio::strand<asio::any_io_executor> strand_;
  scheduler_options opts_;
  // ---- thread-safe objects: any thread ----------------------------------------------
  task_registry tasks_;
  event_bus events_;

  store& db() { return *opts_.job_store; }
  clock& clk() { return *opts_.time_source; }
  time_point now() { return clk().now(); }

  // any thread (impl/health.hpp)
  health_report health();
  scheduler_metrics metrics();
  scheduler_state state() const { return state_.load(); }

  // ---- life cycle, on the strand (impl/lifecycle.hpp) ----------------------------------
  void start();
  /// Begins the stop if the scheduler runs (the stop then runs to its end on its own).
  void begin_stop(stop_mode mode, duration grace);
  /// What async_stop runs: begins the stop and waits until the scheduler is stopped.
  /// Cancelling it ends only the wait.
  asio::awaitable<void> await_stop(stop_mode mode, duration grace);

  // ---- schedule operations, on the strand (impl/schedule_operations.hpp) ---------------
  asio::awaitable<bool> add(schedule_spec spec, conflict_policy policy);
  asio::awaitable<std::vector<add_outcome>> add_many(std::vector<schedule_spec> specs,
                                                     conflict_policy policy);
  asio::awaitable<schedule_record> modify(schedule_spec spec);
  asio::awaitable<void> remove(std::string id);
  asio::awaitable<void> pause(std::string id);
  asio::awaitable<void> resume(std::string id, resume_from from);
  asio::awaitable<std::int64_t> run_now(std::string id);
  asio::awaitable<bool> cancel_job(std::int64_t job_id) {
    co_return engine_.cancel_running(job_id, "cancelled by request");
  }
  void validate(const schedule_spec& s) const;

 private:
  // ---- the loops and their helpers (strand-only) ---------------------------------------
  asio::awaitable<void> stop(stop_mode mode, duration grace);
  void finish_stop(stop_mode mode);
  void post_wake_all();  // any thread
  asio::awaitable<void> boot();
  void supervise(std::string name, asio::awaitable<void> (scheduler_core::*loop)());
  /// The top of every iteration of `loop`: records its tick (for health()) and calls
  /// on_loop_iteration.
  void iteration(guard_loop loop);
  asio::awaitable<void> schedule_loop();
  void plan(schedule_record& s, time_point t);
  asio::awaitable<void> replan_after_step(duration back);
  void tick(time_point t);
  /// Where a loop sleeps to after asking for the next due time: `next` (none: until woken or
  /// max_wait) — but when the acquire just before took nothing although `next` has come
  /// (another node's lease; a store that judges leases by its own clock, behind this node's),
  /// a short pause instead of a busy loop.
  time_point not_before_pause(std::optional<time_point> next, bool acquired_none) {
    static constexpr duration pause = std::chrono::milliseconds{10};
    const auto t = now();
    if (!next) return time_point::max();
    return acquired_none && *next <= t ? t + pause : *next;
  }
  asio::awaitable<void> job_loop();
  asio::awaitable<void> coalesce_due(std::vector<job_record>& jobs);
  asio::awaitable<void> flush_loop();
  asio::awaitable<void> lease_loop();
  void handle_recovered(const std::vector<job_record>& jobs);
  event make_event(event_kind k, std::string_view schedule_id) {
    return detail::make_event(k, schedule_id, now());
  }
  void emit_simple(event_kind k, std::string message);
  template <class MakeOp>
  auto guarded(guard_loop loop, std::string_view op, MakeOp make, guard_mode mode = guard_mode::normal) {
    return guard_.guarded(op, std::move(make), mode, loop);
  }

  // ---- any thread ----------------------------------------------------------------------
  asio::thread_pool pool_;  // runs blocking tasks
  std::atomic<scheduler_state> state_{scheduler_state::stopped};
  std::atomic<bool> wake_posted_{false};
  std::atomic<std::uint64_t> metric_submitted_{0}, metric_dropped_{0}, metric_loop_restarts_{0};
  std::mutex tick_mutex_;
  std::optional<time_point> last_tick_;  // guarded by tick_mutex_
  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::min();
  // Each loop's last iteration (microseconds since the epoch on the scheduler clock; `never`).
  std::array<std::atomic<std::int64_t>, guard_loop_count> loop_ticks_{};

  // ---- strand-only ---------------------------------------------------------------------
  std::mt19937_64 rng_;  // jitter and backoff
  sleeper sleep_;
  sleeper::waker schedule_waker_, job_waker_, flush_waker_, lease_waker_, stop_waker_;
  store_guard guard_;  // its status() and errors(): any thread
  job_engine engine_;  // its counters: any thread
  int loops_running_ = 0;
  std::uint64_t clock_sub_ = 0, store_sub_ = 0;
  timer_list stop_waiters_;                 // async_stop calls waiting for the stop
  step_detector step_detector_;             // the schedule loop's: wall clock steps
  detail::fire_plan plan_;                  // the schedule loop's scratch plan (storage reused)
  std::vector<schedule_release> releases_;  // the schedule loop's buffers
  std::vector<job_record> planned_;
  std::vector<event> later_;
  std::vector<job_record> flushing_;         // the batch the flush loop is writing
  std::vector<std::size_t> coalesce_order_;  // the job loop's scratch (coalesce_due)
};

}  // namespace detail
PUNCTUAL_END_NAMESPACE
