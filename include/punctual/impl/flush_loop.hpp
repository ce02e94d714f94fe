/// @file impl/flush_loop.hpp
/// Part of scheduler.hpp: the flush loop. It writes finished runs (and recorded process
/// groups) back to the store in batches; while stopping it keeps retrying until the flush
/// deadline, after which stop() makes one last attempt.
#pragma once

#include "punctual/impl/scheduler_core.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

inline asio::awaitable<void> scheduler_core::flush_loop() {
  auto& to_flush = engine_.to_flush();
  for (;;) {
    iteration(guard_loop::flush);
    if (to_flush.empty() && flushing_.empty()) {
      if (sleep_.stopping && engine_.idle()) co_return;
      co_await sleep_.sleep(flush_waker_, time_point::max());
      continue;
    }
    // Two buffers take turns (their storage is kept): one fills while the other is written.
    auto& batch = flushing_;
    if (!batch.empty()) {  // left by an iteration that ended abnormally: goes first
      to_flush.insert(to_flush.begin(), std::make_move_iterator(batch.begin()),
                      std::make_move_iterator(batch.end()));
      batch.clear();
    }
    batch.swap(to_flush);
    bool requeued = false;
    for (auto& j : batch) requeued = requeued || j.state == job_state::pending;
    try {
      co_await guarded(
          guard_loop::flush, "update_jobs", [&] { return db().update_jobs(opts_.node, batch); },
          guard_mode::critical);
    } catch (const stop_requested&) {
      // Stopping and the store is still down past the deadline: keep them for stop()'s last try.
      to_flush.insert(to_flush.begin(), std::make_move_iterator(batch.begin()),
                      std::make_move_iterator(batch.end()));
      batch.clear();
      co_return;
    }
    batch.clear();
    if (requeued) sleep_.wake(job_waker_);
  }
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
