/// @file impl/lease_loop.hpp
/// Part of scheduler.hpp: the lease loop. Every lease/3 it extends the leases this node holds,
/// recovers runs whose node's lease expired (per their schedule's on_abandoned), and applies
/// the history retention.
#pragma once

#include "punctual/impl/scheduler_core.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

inline asio::awaitable<void> scheduler_core::lease_loop() {
  const auto period = std::max<duration>(opts_.lease / 3, duration{1000});
  auto next_purge = now();
  while (!sleep_.stopping) {
    iteration(guard_loop::lease);
    // Every store change wakes every loop (wake_all); this one has nothing to do before its
    // period is up, so it sleeps on. On a busy store the changes come thousands of times a
    // second, each of them a lease extension and a recovery scan on every node otherwise.
    // The period is steady time: a backward step of the wall clock does not hold back the
    // extensions (the other nodes' clocks did not step).
    const auto due = clk().elapsed() + period;
    for (auto left = period; !sleep_.stopping && left > duration{0}; left = due - clk().elapsed())
      co_await sleep_.sleep(lease_waker_, now() + left);
    if (sleep_.stopping) break;
    const auto t = now();
    co_await guarded(guard_loop::lease, "extend_leases",
                     [&] { return db().extend_leases(opts_.node, t + opts_.lease); });
    auto recovered = co_await guarded(guard_loop::lease, "recover_abandoned",
                                      [&] { return db().recover_abandoned(std::nullopt, t); });
    handle_recovered(recovered);
    if (opts_.history && t >= next_purge) {
      co_await guarded(guard_loop::lease, "purge_jobs", [&] { return db().purge_jobs(*opts_.history, t); });
      next_purge = t + std::chrono::minutes{1};
    }
  }
}

// Reports recovered runs, kills their surviving process groups, and wakes the job loop for
// the ones queued again.
inline void scheduler_core::handle_recovered(const std::vector<job_record>& jobs) {
  bool requeued = false;
  for (auto& j : jobs) {
    if (j.process.pgid != 0 && opts_.on_abandoned_process) {
      try {
        opts_.on_abandoned_process(j);
      } catch (const std::exception& ex) {
        event e = job_event(event_kind::job_failed, j, now());
        e.message = std::string("killing the abandoned process group failed: ") + ex.what();
        events_.emit(e);
      }
    }
    engine_.counters.count(job_state::abandoned);
    event e = job_event(event_kind::job_abandoned, j, now());
    e.message = j.error;
    e.state = job_state::abandoned;
    events_.emit(e);
    if (j.state == job_state::pending) {
      events_.emit(job_event(event_kind::job_recovered, j, now()));
      requeued = true;
    }
  }
  if (requeued) sleep_.wake(job_waker_);
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
