// A scheduler on a manual clock, driven step by step from the test thread: no sleeps.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <asio.hpp>

#include "punctual/events.hpp"
#include "punctual/scheduler.hpp"
#include "punctual/store/memory_store.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/interval.hpp"

namespace punctual::testing {

using namespace std::chrono_literals;

inline time_point t0() { return parse_iso("2026-01-01T00:00:00Z"); }

/// Runs an io_context and a scheduler against a manual clock. `settle()` runs every ready
/// handler until nothing is left to do at the current instant; `advance()` moves the clock
/// in steps, settling after each.
struct harness {
  asio::io_context io;
  manual_clock clock{t0()};
  std::shared_ptr<store> db;
  std::unique_ptr<scheduler> sched;
  std::vector<event> events;
  subscription sub;

  explicit harness(std::shared_ptr<store> s = std::make_shared<memory_store>(memory_store_options{1000000}),
                   std::function<void(scheduler_options&)> tweak = {}) {
    db = std::move(s);
    scheduler_options o;
    o.job_store = db;
    o.time_source = &clock;
    o.node = "test-node";
    o.seed = 42;
    o.max_wait = std::chrono::seconds{1};
    o.backoff_initial = std::chrono::seconds{1};
    o.backoff_max = std::chrono::seconds{8};
    o.store_timeout = std::chrono::seconds{5};
    o.restart_delay = std::chrono::seconds{1};
    o.blocking_threads = 2;
    if (tweak) tweak(o);
    sched = std::make_unique<scheduler>(io.get_executor(), o);
    sub = sched->events().subscribe([this](const event& e) { events.push_back(e); });
  }
  ~harness() {
    if (sched && sched->state() == scheduler_state::running) stop(stop_mode::cancel, 0s);
  }

  /// Runs ready handlers until there are none (bounded, so a busy loop fails the test).
  void settle() {
    for (int i = 0; i < 2000; ++i) {
      io.restart();
      if (io.poll() == 0) {
        // Let work posted back from other threads (pools) arrive, then check once more.
        io.restart();
        if (io.poll() == 0) return;
      }
    }
    FAIL("the scheduler kept busy at a single instant (busy loop?)");
  }
  /// Moves the clock by `total` in `step`s, settling after each.
  void advance(duration total, duration step = 1s) {
    for (duration d{0}; d < total; d += step) {
      clock.advance(std::min(step, total - d));
      settle();
    }
  }
  /// Runs the io_context with real time until `done()` holds or `limit` passes (for work on
  /// other threads: blocking tasks, processes).
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > end) return false;
      io.restart();
      io.run_for(2ms);
    }
    return true;
  }
  /// Runs an operation to completion and returns its result.
  template <class T>
  T await(asio::awaitable<T> op) {
    auto f = asio::co_spawn(io, std::move(op), asio::use_future);
    run_until([&] { return f.wait_for(0s) == std::future_status::ready; });
    return f.get();
  }
  template <class Token, class F>
  auto call(F&& f) {
    auto fut = f(asio::use_future);
    run_until([&] { return fut.wait_for(0s) == std::future_status::ready; });
    return fut.get();
  }

  void start() {
    sched->start();
    settle();
  }
  void stop(stop_mode mode, duration grace) {
    auto f = sched->async_stop(mode, grace, asio::use_future);
    for (int i = 0; i < 100000 && f.wait_for(0s) != std::future_status::ready; ++i) {
      settle();
      if (f.wait_for(0s) == std::future_status::ready) break;
      clock.advance(100ms);
      io.restart();
      io.run_for(1ms);
    }
    f.get();
  }

  bool add(schedule_spec spec, conflict_policy policy = conflict_policy::error) {
    auto f = sched->async_add_schedule(std::move(spec), policy, asio::use_future);
    run_until([&] { return f.wait_for(0s) == std::future_status::ready; });
    return f.get();
  }

  std::vector<job_record> jobs(const std::string& schedule_id, std::size_t limit = 100000) {
    job_query q;
    q.schedule_id = schedule_id;
    q.limit = limit;
    auto v = await(db->list_jobs(q));
    std::reverse(v.begin(), v.end());  // oldest first
    return v;
  }
  std::size_t count(event_kind k, const std::string& schedule_id = {}) const {
    std::size_t n = 0;
    for (auto& e : events) n += e.kind == k && (schedule_id.empty() || e.schedule_id == schedule_id);
    return n;
  }
};

/// An interval trigger every `every`, anchored at t0().
inline trigger every(duration d) { return interval_trigger(d, t0()); }

}  // namespace punctual::testing
