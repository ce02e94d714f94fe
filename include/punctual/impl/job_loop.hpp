/// @file impl/job_loop.hpp
/// Part of scheduler.hpp: the job loop. It acquires due jobs (as many as this node may still
/// run), coalesces runs of one schedule found due together, and hands them to the job engine,
/// then sleeps until the next job is due, a change, or max_wait.
#pragma once

#include <algorithm>

#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/impl/scheduler_core.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

inline asio::awaitable<void> scheduler_core::job_loop() {
  while (!sleep_.stopping) {
    iteration(guard_loop::job);
    const std::size_t running = engine_.running_count();
    const std::size_t capacity =
        opts_.max_concurrent_jobs > running ? opts_.max_concurrent_jobs - running : 0;
    bool acquired_none = true;
    if (capacity > 0) {
      // As in the schedule loop: jobs taken by an acquire whose reply was lost go back to
      // pending first, and each attempt reads the clock anew.
      bool lost_reply = false;
      const std::size_t limit = std::min(capacity, opts_.batch);
      auto jobs = co_await guarded(
          guard_loop::job, "acquire_jobs", [&]() -> asio::awaitable<std::vector<job_record>> {
            if (lost_reply) co_await db().release_jobs(opts_.node, engine_.held_job_ids(flushing_));
            lost_reply = true;
            const auto t = now();
            auto r = co_await db().acquire_jobs(opts_.node, t, t + opts_.lease, limit);
            lost_reply = false;
            co_return r;
          });
      const std::size_t acquired = jobs.size();
      acquired_none = acquired == 0;
      if (acquired > 1) co_await coalesce_due(jobs);
      engine_.begin_batch();
      for (auto& j : jobs) engine_.dispatch(std::move(j));
      if (acquired >= limit) {
        // Let the runs just started go first (bounded work in flight): the handlers queued on
        // the strand run before the loop goes on.
        co_await asio::post(strand_, asio::use_awaitable);
        continue;
      }
    }
    auto next = co_await guarded(guard_loop::job, "next_due", [&] { return db().next_due(); });
    co_await sleep_.sleep(job_waker_,
                          capacity > 0 ? not_before_pause(next.job, acquired_none) : time_point::max());
  }
}

// Runs of one schedule acquired together are fire times found due together, and the schedule's
// coalesce option applies to them as it does in the schedule loop: an outage in which the
// schedule loop got through and the job loop did not leaves one pending run per fire time, and
// they must not start in a burst. With `latest` the newest of them runs, with `earliest` the
// oldest; the others are recorded as missed ("coalesced: ...") and reported by fires_dropped.
// Only runs of the trigger are coalesced — first attempts whose fire time is one of the
// trigger's (the schedule is read for it) — so triggered runs (run now), retries and reruns
// always run; with `all` every run runs, one after another (job_engine::dispatch).
inline asio::awaitable<void> scheduler_core::coalesce_due(std::vector<job_record>& jobs) {
  auto& order = coalesce_order_;  // candidates, then grouped by schedule
  order.clear();
  for (std::size_t i = 0; i < jobs.size(); ++i)
    if (jobs[i].attempt == 1 && (!jobs[i].options || jobs[i].options->coalesce != coalesce_policy::all))
      order.push_back(i);
  if (order.size() < 2) co_return;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const int c = jobs[a].schedule_id.compare(jobs[b].schedule_id);
    return c != 0 ? c < 0 : a < b;
  });
  std::vector<std::size_t> dropped;
  for (std::size_t g = 0, end = 0; g < order.size(); g = end) {
    const std::string id = jobs[order[g]].schedule_id;
    for (end = g + 1; end < order.size() && jobs[order[end]].schedule_id == id;) ++end;
    if (end - g < 2) continue;
    std::optional<schedule_record> s;
    try {
      s = co_await guarded(guard_loop::job, "get_schedule", [&] { return db().get_schedule(id); });
    } catch (const stop_requested&) {
      break;  // stopping: the runs go to the engine as acquired (its stop cancels them)
    }
    if (!s || !s->spec.trigger || s->spec.options.coalesce == coalesce_policy::all) continue;
    const auto& o = s->spec.options;
    const bool latest = o.coalesce == coalesce_policy::latest;
    const std::size_t first_dropped = dropped.size();
    std::optional<std::size_t> keep;
    for (std::size_t k = g; k < end; ++k) {
      const auto& j = jobs[order[k]];
      if (s->spec.trigger.next(j.fire_time - duration{1}) != j.fire_time) continue;  // a triggered run
      if (!keep) {
        keep = order[k];
      } else if (latest == (j.fire_time > jobs[*keep].fire_time)) {
        dropped.push_back(*keep);
        keep = order[k];
      } else {
        dropped.push_back(order[k]);
      }
    }
    const std::size_t n = dropped.size() - first_dropped;
    if (n == 0) continue;
    const auto t = now();
    const auto kept = format_iso(jobs[*keep].fire_time);
    const std::string how = "(coalesce=" + std::string(to_string(o.coalesce)) + ")";
    for (std::size_t k = first_dropped; k < dropped.size(); ++k) {
      auto& j = jobs[dropped[k]];
      const std::string why = "coalesced: due together with the run for " + kept + " " + how + ", " +
                              format_duration(t - j.fire_time) + " late";
      engine_.finish_unstarted(std::move(j), job_state::missed, why);
    }
    metric_dropped_.fetch_add(n);
    event ev = make_event(event_kind::fires_dropped, id);
    ev.count = n;
    ev.message = std::to_string(n) + " pending run" + (n > 1 ? "s" : "") + " coalesced into the run for " +
                 kept + " " + how;
    events_.emit(ev);
  }
  if (dropped.empty()) co_return;
  std::sort(dropped.begin(), dropped.end());
  std::size_t out = 0;
  for (std::size_t i = 0, d = 0; i < jobs.size(); ++i) {
    if (d < dropped.size() && dropped[d] == i) {
      ++d;
      continue;
    }
    if (out != i) jobs[out] = std::move(jobs[i]);
    ++out;
  }
  jobs.resize(out);
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
