/// @file impl/supervisor.hpp
/// Part of scheduler.hpp: boot (recover what a previous incarnation of this node left
/// running, before anything runs) and the supervisor that keeps each loop alive.
#pragma once

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "punctual/impl/scheduler_core.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

inline asio::awaitable<void> scheduler_core::boot() {
  ++loops_running_;
  try {
    auto recovered = co_await guarded(guard_loop::boot, "recover_abandoned",
                                      [this] { return db().recover_abandoned(opts_.node, now()); });
    handle_recovered(recovered);
  } catch (const stop_requested&) {
  }
  --loops_running_;
  if (sleep_.stopping) {
    sleep_.wake(stop_waker_);
    co_return;
  }
  emit_simple(event_kind::scheduler_started, opts_.node);
  supervise("schedule", &scheduler_core::schedule_loop);
  supervise("job", &scheduler_core::job_loop);
  supervise("flush", &scheduler_core::flush_loop);
  supervise("lease", &scheduler_core::lease_loop);
}

/// Runs `loop` until the scheduler stops. A loop that ends otherwise — it returned, or threw
/// anything — is reported as `loop_restarted` (with the reason) and started again after
/// restart_delay. No exception leaves the supervisor.
inline void scheduler_core::supervise(std::string name, asio::awaitable<void> (scheduler_core::*loop)()) {
  ++loops_running_;
  asio::co_spawn(
      strand_,
      [self = shared_from_this(), name, loop]() -> asio::awaitable<void> {
        for (;;) {
          std::string why;
          try {
            co_await ((*self).*loop)();
            if (self->sleep_.stopping) break;
            why = "the loop returned";
          } catch (const stop_requested&) {
            if (self->sleep_.stopping) break;
            why = "stop requested while running";
          } catch (const std::exception& e) {
            why = e.what();
          } catch (...) {
            why = "unknown exception";
          }
          if (self->sleep_.stopping) break;
          self->metric_loop_restarts_.fetch_add(1);
          event e = self->make_event(event_kind::loop_restarted, {});
          e.op = name;
          e.message = why;
          self->events_.emit(e);
          try {
            co_await self->sleep_.wait_elapsed(self->opts_.restart_delay);
          } catch (...) {
          }
        }
        --self->loops_running_;
        self->sleep_.wake(self->stop_waker_);
      },
      asio::detached);
}

inline void scheduler_core::iteration(guard_loop loop) {
  loop_ticks_[static_cast<std::size_t>(loop)].store(now().time_since_epoch().count(),
                                                    std::memory_order_relaxed);
  if (opts_.on_loop_iteration) opts_.on_loop_iteration(to_string(loop));
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
