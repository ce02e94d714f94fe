/// @file impl/health.hpp
/// Part of scheduler.hpp: health() and metrics(), readable from any thread.
#pragma once

#include "punctual/impl/scheduler_core.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

inline health_report scheduler_core::health() {
  health_report h;
  const auto store = guard_.status();
  h.error_streak = store.error_streak;
  h.last_error = store.last_error;
  h.last_error_op = store.last_error_op;
  {
    std::lock_guard lock(tick_mutex_);
    h.last_tick = last_tick_;
  }
  h.state = state_.load();
  h.running_jobs = engine_.counters.running.load();
  h.loop_restarts = metric_loop_restarts_.load();
  const duration tick_bound = 3 * opts_.max_wait + opts_.store_timeout;
  if (h.state != scheduler_state::running) {
    h.reason = "scheduler is " + std::string(to_string(h.state));
  } else if (h.error_streak > 0) {
    h.reason = "store error streak of " + std::to_string(h.error_streak) + " (" + h.last_error_op +
               "): " + h.last_error;
  } else if (!h.last_tick) {
    h.reason = "schedule loop has not ticked yet";
  } else if (clk().now() - *h.last_tick > tick_bound) {
    h.reason = "schedule loop has not ticked since " + format_iso(*h.last_tick);
  }
  h.healthy = h.reason.empty();
  return h;
}

inline scheduler_metrics scheduler_core::metrics() {
  scheduler_metrics m;
  auto& c = engine_.counters;
  for (std::size_t i = 0; i < m.outcomes.size(); ++i) m.outcomes[i] = c.outcomes[i].load();
  m.submitted = metric_submitted_.load();
  m.fires_dropped = metric_dropped_.load();
  m.store_errors = guard_.errors();
  m.loop_restarts = metric_loop_restarts_.load();
  m.running = c.running.load();
  for (std::size_t i = 0; i < m.lateness_buckets.size(); ++i)
    m.lateness_buckets[i] = c.lateness_buckets[i].load();
  m.lateness_count = c.lateness_count.load();
  m.lateness_sum_seconds = static_cast<double>(c.lateness_sum_us.load()) / 1e6;
  std::lock_guard lock(tick_mutex_);
  m.last_tick = last_tick_;
  return m;
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
