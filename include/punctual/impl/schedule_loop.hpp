/// @file impl/schedule_loop.hpp
/// Part of scheduler.hpp: the schedule loop. It acquires due schedules, plans their fire
/// times (coalesce, misfire, jitter) and releases them together with the new runs in one
/// store operation, then sleeps until the next due time, a change, or max_wait.
#pragma once

#include "punctual/detail/clock_step.hpp"
#include "punctual/impl/scheduler_core.hpp"
#include "punctual/trigger/jitter.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

inline asio::awaitable<void> scheduler_core::schedule_loop() {
  while (!sleep_.stopping) {
    iteration(guard_loop::schedule);
    // The wall clock read against the steady clock at every wake (at least every max_wait):
    // after a backward step, schedules are re-planned from the new time (detail/clock_step.hpp).
    if (const auto back = step_detector_.observe(now(), clk().elapsed())) co_await replan_after_step(*back);
    // A failed acquire may have committed and lost its reply: the retry first frees the
    // leases it may have taken (between iterations this node holds no schedule lease).
    // Each attempt reads the clock again: planning with the time of a failed first attempt
    // would fire the oldest missed time and then, coalesced, the latest one.
    bool lost_reply = false;
    time_point t{};
    auto due = co_await guarded(guard_loop::schedule, "acquire_due_schedules",
                                [&]() -> asio::awaitable<std::vector<schedule_record>> {
                                  if (lost_reply) co_await db().release_leases(opts_.node);
                                  lost_reply = true;
                                  t = now();
                                  auto r = co_await db().acquire_due_schedules(opts_.node, t, t + opts_.lease,
                                                                               opts_.batch);
                                  lost_reply = false;
                                  co_return r;
                                });
    // Buffers kept from one iteration to the next (their storage is reused).
    releases_.clear();
    planned_.clear();
    later_.clear();
    for (auto& s : due) plan(s, t);
    std::size_t pending_jobs = 0;
    for (auto& j : planned_) pending_jobs += j.state == job_state::pending;
    if (!releases_.empty() || !planned_.empty()) {
      co_await guarded(guard_loop::schedule, "release_schedules",
                       [&] { return db().release_schedules(opts_.node, releases_, planned_); });
      metric_submitted_.fetch_add(planned_.size());
      for (auto& e : later_) events_.emit(e);
      if (pending_jobs) sleep_.wake(job_waker_);
    }
    tick(t);
    if (due.size() >= opts_.batch) continue;  // more may be due right now
    auto next = co_await guarded(guard_loop::schedule, "next_due", [&] { return db().next_due(); });
    co_await sleep_.sleep(schedule_waker_, not_before_pause(next.schedule, due.empty()));
  }
}

// After the wall clock stepped back by `back`: moves the next fire time of every schedule that
// should fire earlier on the new time (next_after_backward_step), each in its own
// modify_schedule that changes it only if no one moved it meanwhile. Then reports it.
inline asio::awaitable<void> scheduler_core::replan_after_step(duration back) {
  const auto t = now();
  auto all = co_await guarded(guard_loop::schedule, "list_schedules", [&] { return db().list_schedules(); });
  std::uint64_t moved = 0;
  for (const auto& s : all) {
    const auto next = next_after_backward_step(s, t, back);
    if (!next) continue;
    const auto was = s.next_fire;
    co_await guarded(guard_loop::schedule, "modify_schedule", [&] {
      return db().modify_schedule(s.spec.id, [was, next](schedule_record& r) {
        if (r.next_fire == was) r.next_fire = next;
      });
    });
    ++moved;
  }
  event e = make_event(event_kind::clock_stepped, {});
  e.lateness = back;
  e.count = moved;
  e.message = "the wall clock stepped back " + format_duration(back) + " (to " + format_iso(t) +
              "): " + std::to_string(moved) + " schedule" + (moved == 1 ? "" : "s") +
              " re-planned on the new time";
  events_.emit(e);
}

// Plans one acquired schedule at `t`: its runs (or missed records) into planned_, its release
// into releases_, and the events to emit once they are stored into later_.
inline void scheduler_core::plan(schedule_record& s, time_point t) {
  if (!s.quarantine.empty()) {
    event e = make_event(event_kind::schedule_quarantined, s.spec.id);
    e.message = s.quarantine;
    later_.push_back(std::move(e));
    return;
  }
  const auto& o = s.spec.options;
  if (!s.next_fire) {
    releases_.push_back({s.spec.id, std::nullopt, std::nullopt});
    return;
  }
  auto& p = plan_;
  plan_fires(s.spec.trigger, o, *s.next_fire, t, p);
  for (auto& f : p.fires) {
    job_record j;
    j.schedule_id = s.spec.id;
    j.task = s.spec.task;
    j.payload = s.spec.payload;
    j.fire_time = stored_fire_time(f.fire, s.last_fire);  // a fire time repeated by a clock step: + 1 us
    j.run_at = f.fire;
    if (o.max_jitter.count() > 0)
      j.run_at = apply_jitter(f.fire, next_within(s.spec.trigger, f.fire, o), o.max_jitter, rng_);
    if (f.missed) {
      j.state = job_state::missed;
      j.finished = t;
      j.error = "missed: " + format_duration(t - f.fire) + " late, misfire grace is " +
                format_duration(*o.misfire_grace);
      engine_.counters.count(job_state::missed);
    }
    if (events_.wanted(f.missed ? event_kind::job_missed : event_kind::job_submitted)) {
      event e = make_event(f.missed ? event_kind::job_missed : event_kind::job_submitted, s.spec.id);
      e.fire_time = j.fire_time;
      if (f.missed) {
        e.lateness = t - f.fire;
        e.message = j.error;
        e.state = job_state::missed;
      }
      later_.push_back(std::move(e));
    }
    planned_.push_back(std::move(j));
  }
  if (p.dropped > 0) {
    metric_dropped_.fetch_add(p.dropped);
    event e = make_event(event_kind::fires_dropped, s.spec.id);
    e.count = p.dropped;
    e.message = std::string(p.dropped_is_lower_bound ? "at least " : "") + std::to_string(p.dropped) +
                " due fire times dropped (coalesce=" + std::string(to_string(o.coalesce)) + ")";
    later_.push_back(std::move(e));
  }
  if (!p.next_fire) later_.push_back(make_event(event_kind::schedule_finished, s.spec.id));
  // last_fire never moves back: after a backward step it marks the fire times that ran already.
  auto last = p.last_fire;
  if (s.last_fire && (!last || *last < *s.last_fire)) last = s.last_fire;
  releases_.push_back({s.spec.id, p.next_fire, last});
}

inline void scheduler_core::tick(time_point t) {
  std::lock_guard lock(tick_mutex_);
  last_tick_ = t;
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
