/// @file impl/job_loop.hpp
/// Part of scheduler.hpp: the job loop. It acquires due jobs (as many as this node may still
/// run) and hands them to the job engine, then sleeps until the next job is due, a change, or
/// max_wait.
#pragma once

#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/impl/scheduler_core.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

inline asio::awaitable<void> scheduler_core::job_loop() {
  while (!sleep_.stopping) {
    iteration("job");
    const std::size_t running = engine_.running_count();
    const std::size_t capacity =
        opts_.max_concurrent_jobs > running ? opts_.max_concurrent_jobs - running : 0;
    bool acquired_none = true;
    if (capacity > 0) {
      // As in the schedule loop: jobs taken by an acquire whose reply was lost go back to
      // pending first, and each attempt reads the clock anew.
      bool lost_reply = false;
      const std::size_t limit = std::min(capacity, opts_.batch);
      auto jobs = co_await guarded("acquire_jobs", [&]() -> asio::awaitable<std::vector<job_record>> {
        if (lost_reply) co_await db().release_jobs(opts_.node, engine_.held_job_ids(flushing_));
        lost_reply = true;
        const auto t = now();
        auto r = co_await db().acquire_jobs(opts_.node, t, t + opts_.lease, limit);
        lost_reply = false;
        co_return r;
      });
      acquired_none = jobs.empty();
      engine_.begin_batch();
      for (auto& j : jobs) engine_.dispatch(std::move(j));
      if (jobs.size() >= limit) {
        // Let the runs just started go first (bounded work in flight): the handlers queued on
        // the strand run before the loop goes on.
        co_await asio::post(strand_, asio::use_awaitable);
        continue;
      }
    }
    auto next = co_await guarded("next_due", [&] { return db().next_due(); });
    co_await sleep_.sleep(job_waker_,
                          capacity > 0 ? not_before_pause(next.job, acquired_none) : time_point::max());
  }
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
