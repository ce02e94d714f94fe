/// @file impl/scheduler.hpp
/// Part of scheduler.hpp (included at its end): the bodies of `scheduler`'s members and of
/// the core behind it, one file per part (see impl/scheduler_core.hpp for the map).
#pragma once

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/dispatch.hpp>

#include "punctual/impl/flush_loop.hpp"
#include "punctual/impl/health.hpp"
#include "punctual/impl/job_loop.hpp"
#include "punctual/impl/lease_loop.hpp"
#include "punctual/impl/lifecycle.hpp"
#include "punctual/impl/schedule_loop.hpp"
#include "punctual/impl/schedule_operations.hpp"
#include "punctual/impl/scheduler_core.hpp"
#include "punctual/impl/supervisor.hpp"

PUNCTUAL_BEGIN_NAMESPACE

inline scheduler::scheduler(asio::any_io_executor ex, scheduler_options options)
    : core_(std::make_shared<detail::scheduler_core>(std::move(ex), std::move(options))) {}

inline scheduler::~scheduler() {
  if (core_->state() == scheduler_state::running)
    asio::dispatch(core_->strand_, [core = core_] { core->begin_stop(stop_mode::cancel, duration{0}); });
}

inline task_registry& scheduler::tasks() noexcept { return core_->tasks_; }
inline event_bus& scheduler::events() noexcept { return core_->events_; }
inline const std::string& scheduler::node() const noexcept { return core_->opts_.node; }
inline const std::shared_ptr<store>& scheduler::job_store() const noexcept { return core_->opts_.job_store; }
inline asio::any_io_executor scheduler::get_executor() const { return core_->strand_; }
inline asio::any_io_executor scheduler::strand() const { return core_->strand_; }
inline clock& scheduler::time_source() const noexcept { return core_->clk(); }
inline store& scheduler::store_of(detail::scheduler_core& c) { return c.db(); }

inline void scheduler::start() {
  asio::dispatch(core_->strand_, [core = core_] { core->start(); });
}

inline health_report scheduler::health() const { return core_->health(); }
inline scheduler_metrics scheduler::metrics() const { return core_->metrics(); }
inline scheduler_state scheduler::state() const { return core_->state(); }

PUNCTUAL_END_NAMESPACE
