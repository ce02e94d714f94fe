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
  const auto t = clk().now();
  const duration tick_bound = 3 * opts_.max_wait + opts_.store_timeout;
  std::string failing, stale;
  for (std::size_t i = 0; i < guard_loop_count; ++i) {
    const auto which = static_cast<guard_loop>(i);
    const auto& s = store.loops[i];
    loop_health l;
    l.name = to_string(which);
    l.failing = s.failing;
    l.error_streak = s.error_streak;
    l.since = s.since;
    l.last_error = s.last_error;
    l.last_error_op = s.last_error_op;
    if (const auto us = loop_ticks_[i].load(std::memory_order_relaxed); us != never)
      l.last_tick = time_point{duration{us}};
    const std::string title = which == guard_loop::boot ? "start-up recovery" : l.name + " loop";
    if (l.failing) {
      failing += (failing.empty() ? "" : "; ") + title + " failing since " + format_iso(s.since.value_or(t)) +
                 " (" + std::to_string(s.error_streak) + " failed call" + (s.error_streak > 1 ? "s" : "") +
                 "), " + s.last_error_op + ": " + s.last_error;
    } else if (which == guard_loop::job || which == guard_loop::flush || which == guard_loop::lease) {
      // (the schedule loop's tick is checked below, by its last completed iteration)
      const duration bound = which == guard_loop::lease
                                 ? tick_bound + std::max<duration>(opts_.lease / 3, duration{1000})
                                 : tick_bound;
      if (!l.last_tick)
        stale += (stale.empty() ? "" : "; ") + title + " has not ticked yet";
      else if (t - *l.last_tick > bound)
        stale += (stale.empty() ? "" : "; ") + title + " has not ticked since " + format_iso(*l.last_tick);
    }
    h.loops.push_back(std::move(l));
  }
  if (h.state != scheduler_state::running) {
    h.reason = "scheduler is " + std::string(to_string(h.state));
  } else if (!failing.empty()) {
    h.reason = "store error streak of " + std::to_string(h.error_streak) + ": " + failing;
  } else if (!h.last_tick) {
    h.reason = "schedule loop has not ticked yet";
  } else if (t - *h.last_tick > tick_bound) {
    h.reason = "schedule loop has not ticked since " + format_iso(*h.last_tick);
  } else if (!stale.empty()) {
    h.reason = stale;
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
