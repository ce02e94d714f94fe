/// @file detail/job_engine.hpp
/// The scheduler's job engine: what happens to a job between the job loop acquiring it and the
/// flush loop writing its outcome — dispatch (max_running, overlap, catch-up siblings),
/// timeouts, the runner coroutines that execute tasks, completion, retries.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/detail/fire_plan.hpp"
#include "punctual/detail/sleeper.hpp"
#include "punctual/events.hpp"
#include "punctual/job.hpp"
#include "punctual/schedule.hpp"
#include "punctual/task.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// An event of kind `k` about a schedule, at `at`.
inline event make_event(event_kind k, std::string_view schedule_id, time_point at) {
  event e;
  e.kind = k;
  e.at = at;
  e.schedule_id = schedule_id;
  return e;
}
/// An event of kind `k` about a job, at `at`.
inline event job_event(event_kind k, const job_record& j, time_point at) {
  event e = make_event(k, j.schedule_id, at);
  e.job_id = j.id;
  e.fire_time = j.fire_time;
  e.attempt = j.attempt;
  return e;
}

/// The event that reports a run ending in `s`.
inline event_kind outcome_event(job_state s) {
  switch (s) {
    case job_state::succeeded: return event_kind::job_succeeded;
    case job_state::timed_out: return event_kind::job_timed_out;
    case job_state::cancelled: return event_kind::job_cancelled;
    case job_state::skipped: return event_kind::job_skipped;
    case job_state::missed: return event_kind::job_missed;
    case job_state::abandoned: return event_kind::job_abandoned;
    default: return event_kind::job_failed;
  }
}

/// Resets a spare node's value: to a default one.
struct reset_to_default {
  template <class T>
  void operator()(T& v) const {
    v = T{};
  }
};

/// Keeps the nodes of entries erased from a node-based map for the next inserts, so a map
/// that gains and loses an entry per run does not allocate and free one per run. Holds at
/// most `limit` spare nodes; a spare node's value is reset by `Reset`.
template <class Map, class Reset = reset_to_default>
class node_recycler {
 public:
  using iterator = typename Map::iterator;

  explicit node_recycler(std::size_t limit = 4096) : limit_(limit) {}

  /// Inserts `key` with a default value (the key must not be in `m`).
  template <class Key>
  iterator insert(Map& m, const Key& key) {
    if (spare_.empty()) return m.try_emplace(key).first;
    auto node = std::move(spare_.back());
    spare_.pop_back();
    node.key() = key;
    return m.insert(std::move(node)).position;
  }

  /// Erases `it` from `m`; returns the iterator after it.
  iterator erase(Map& m, iterator it) {
    if (spare_.size() >= limit_) return m.erase(it);
    auto next = std::next(it);
    auto node = m.extract(it);
    Reset{}(node.mapped());
    spare_.push_back(std::move(node));
    return next;
  }

 private:
  std::size_t limit_;
  std::vector<typename Map::node_type> spare_;
};

/// Always-on counters of the engine's outcomes and lateness (any thread may read them).
struct job_counters {
  std::array<std::atomic<std::uint64_t>, 9> outcomes{};
  std::array<std::atomic<std::uint64_t>, 12> lateness_buckets{};
  std::atomic<std::uint64_t> lateness_count{0};
  std::atomic<std::int64_t> lateness_sum_us{0};
  std::atomic<std::size_t> running{0};

  void count(job_state s) { outcomes[static_cast<std::size_t>(s)].fetch_add(1, std::memory_order_relaxed); }

  /// Adds a first attempt's lateness to the histogram; `bounds` are the buckets' upper bounds
  /// in seconds (the last is +Inf).
  void note_lateness(duration late, const std::array<double, 12>& bounds) {
    const double s = static_cast<double>(late.count()) / 1e6;
    std::size_t b = 0;
    while (b + 1 < bounds.size() && s > bounds[b]) ++b;
    lateness_buckets[b].fetch_add(1, std::memory_order_relaxed);
    lateness_count.fetch_add(1, std::memory_order_relaxed);
    lateness_sum_us.fetch_add(std::max<std::int64_t>(0, late.count()), std::memory_order_relaxed);
  }
};

/// Strand-only, except `counters`, which any thread may read. The engine's coroutines keep
/// its owner (the scheduler's core) alive through `owner`.
class job_engine {
 public:
  using strand_type = asio::strand<asio::any_io_executor>;

  job_engine(strand_type& strand, task_registry& tasks, event_bus& events, sleeper& sleep,
             sleeper::waker& flush_waker, sleeper::waker& stop_waker, std::mt19937_64& rng,
             asio::thread_pool& pool, const std::array<double, 12>& lateness_bounds)
      : strand_(strand),
        tasks_(tasks),
        events_(events),
        sleep_(sleep),
        flush_waker_(flush_waker),
        stop_waker_(stop_waker),
        rng_(rng),
        pool_(pool),
        lateness_bounds_(lateness_bounds) {}

  /// What keeps the engine alive while its coroutines run (set once by the owner).
  std::weak_ptr<void> owner;
  job_counters counters;

  /// Finished (or process-recording) job updates waiting for the flush loop.
  std::vector<job_record>& to_flush() noexcept { return to_flush_; }
  bool idle() const noexcept { return running_.empty(); }
  std::size_t running_count() const noexcept { return running_.size(); }

  /// Marks the start of one acquire batch: runs of one schedule in it are catch-up siblings.
  void begin_batch() noexcept { ++dispatch_batch_; }

  /// The jobs this node really holds: running, queued behind max_running, and ended but not
  /// yet written back (waiting for the flush loop, or in `flushing`, the batch it is writing:
  /// in the store they are still running, and must not be handed out again).
  std::vector<std::int64_t> held_job_ids(const std::vector<job_record>& flushing) const {
    std::vector<std::int64_t> ids;
    for (auto& [id, rj] : running_) ids.push_back(id);
    for (auto& [sid, q] : queued_)
      for (auto& j : q) ids.push_back(j.id);
    for (auto* batch : {&to_flush_, &flushing})
      for (auto& j : *batch) ids.push_back(j.id);
    return ids;
  }

  /// Starts, queues or skips one acquired job (its options set by the store).
  void dispatch(job_record j) {
    if (!j.options) j.options = std::make_shared<const schedule_options>();
    const schedule_options& o = *j.options;
    auto found = by_schedule_.find(j.schedule_id);
    if (found == by_schedule_.end()) found = schedule_nodes_.insert(by_schedule_, j.schedule_id);
    auto& runs = found->second;
    auto& ids = runs.running;
    // Catch-up siblings queue behind each other whatever the overlap policy: runs of one
    // schedule acquired together, and a run that was already due when a running one of the
    // same schedule started (both became due at once; the jobs may come in different batches).
    bool sibling = std::exchange(runs.batch, dispatch_batch_) == dispatch_batch_;
    if (ids.size() >= std::max<std::uint32_t>(1, o.max_running)) {
      // Only a full schedule needs the running runs' start times (not the common path).
      for (const auto id : ids)
        if (const auto it = running_.find(id); it != running_.end() && it->second->started >= j.fire_time)
          sibling = true;
      switch (sibling ? overlap_policy::queue : o.overlap) {
        case overlap_policy::skip:
          finish_unstarted(std::move(j), job_state::skipped,
                           "skipped: max_running (" + std::to_string(o.max_running) + ") runs still running");
          return;
        case overlap_policy::queue: queued_[j.schedule_id].push_back(std::move(j)); return;
        case overlap_policy::replace: {
          auto oldest = running_.find(ids.front());
          if (oldest != running_.end())
            cancel(*oldest->second, job_state::cancelled,
                   "replaced by the run for " + format_iso(j.fire_time));
          break;
        }
      }
    }
    start_job(std::move(j), runs);
  }

  /// Cancels run `id` if it is running here (recorded as cancelled with `reason`); whether it was.
  bool cancel_running(std::int64_t id, std::string reason) {
    const auto it = running_.find(id);
    if (it == running_.end() || it->second->done) return false;
    cancel(*it->second, job_state::cancelled, std::move(reason));
    return true;
  }

  /// Stopping: cancels every running run, and records every queued one as cancelled.
  void cancel_all(const std::string& reason) {
    for (auto& [id, rj] :
         std::map<std::int64_t, std::shared_ptr<running_job>>(running_.begin(), running_.end()))
      cancel(*rj, job_state::cancelled, reason);
    for (auto& [sid, q] : queued_)
      for (auto& j : q) finish_unstarted(std::move(j), job_state::cancelled, reason);
    queued_.clear();
  }

  /// Stopping, after the grace: records every run still running as cancelled with `why` and
  /// leaves its task behind.
  void give_up_all(const std::string& why) {
    for (auto& [id, rj] :
         std::map<std::int64_t, std::shared_ptr<running_job>>(running_.begin(), running_.end()))
      complete(rj, nullptr, job_outcome{job_state::cancelled, {}, {}, why, {}});
  }

  /// A job that never ran (skipped, cancelled while queued): recorded in `state`.
  void finish_unstarted(job_record j, job_state state, std::string why) {
    j.state = state;
    j.finished = sleep_.now();
    j.error = std::move(why);
    event e = job_event(outcome_event(state), j, sleep_.now());
    e.message = j.error;
    e.state = state;
    counters.count(state);
    events_.emit(e);
    to_flush_.push_back(std::move(j));
    sleep_.wake(flush_waker_);
  }

 private:
  // This node's runs of one schedule: the running ids, oldest first, and the dispatch batch
  // that last saw the schedule (catch-up siblings queue, never skip). A running_job points to
  // its entry, which must stay put; complete() erases the entry when its last run ends.
  struct schedule_runs {
    std::vector<std::int64_t> running;
    std::uint64_t batch = 0;
    struct reset {  // for reuse: keeps the vector's storage
      void operator()(schedule_runs& r) const {
        r.running.clear();
        r.batch = 0;
      }
    };
  };

  // A coroutine that runs started jobs one after another on the strand (see run_jobs). Its
  // signal cancels the job it is executing.
  struct job_runner {
    asio::cancellation_signal signal;
  };

  struct running_job : std::enable_shared_from_this<running_job> {
    running_job(job_record j, const asio::any_io_executor& ex)
        : context(std::move(j), ex), ctx(std::shared_ptr<void>(), &context) {}
    job_context context;  // allocated with the running job, not on its own
    // A non-owning view of `context`; to share ownership, alias the running job:
    // std::shared_ptr<job_context>(rj, rj->ctx.get()).
    std::shared_ptr<job_context> ctx;
    job_runner* runner = nullptr;              // the runner executing it (none yet: waiting)
    asio::cancellation_signal timeout_signal;  // ends its timeout watcher once the run is done
    std::optional<job_state> cancel_as;
    std::string cancel_reason;
    bool done = false;
    time_point started{};
    schedule_runs* runs = nullptr;  // its schedule's entry in by_schedule_
    job_engine* engine = nullptr;
    std::weak_ptr<void> owner;    // keeps `engine` alive while it is used
    bool context_shared = false;  // a pool thread may still use the context
  };

  void start_job(job_record j, schedule_runs& runs) {
    const auto t = sleep_.now();
    j.started = t;
    auto options = j.options;
    auto rj = std::make_shared<running_job>(std::move(j), strand_any_);
    rj->started = t;
    const auto& rec = rj->ctx->record();
    running_nodes_.insert(running_, rec.id)->second = rj;
    runs.running.push_back(rec.id);
    rj->runs = &runs;
    counters.running.store(running_.size());
    const auto lateness = t - rec.fire_time;
    // The histogram measures how late fires start: first attempts only (a retry starts when
    // its backoff says, which is not lateness of the fire).
    if (rec.attempt == 1) counters.note_lateness(lateness, lateness_bounds_);
    if (events_.wanted(event_kind::job_started)) {
      event e = job_event(event_kind::job_started, rec, t);
      e.lateness = lateness;
      events_.emit(e);
    }
    rj->engine = this;
    rj->owner = owner;
    rj->ctx->on_process({&job_engine::note_process, rj.get()});
    if (options->timeout) {
      asio::co_spawn(
          strand_,
          [this, keep = owner.lock(), rj, timeout = *options->timeout]() -> asio::awaitable<void> {
            co_await sleep_.wait_elapsed(timeout);  // steady time: a clock step moves no timeout
            if (!rj->done) cancel(*rj, job_state::timed_out, "timed out after " + format_duration(timeout));
          },
          asio::bind_cancellation_slot(rj->timeout_signal.slot(), asio::detached));
    }
    ready_.push_back(std::move(rj));
    ensure_runner();
  }

  // ---- runners -----------------------------------------------------------------------
  //
  // Started jobs wait in ready_ for a runner: a coroutine on the strand that takes them one
  // after another and awaits each task in turn. Before it starts a job while others wait, it
  // makes sure another runner is pending on the strand: if the task suspends, that one goes on
  // with the queue; if it does not, the pending one finds the queue empty and ends. So jobs
  // start in order, a suspended task never holds up the others, and a batch of tasks that
  // finish without suspending costs two coroutine spawns instead of one per job.

  void ensure_runner() {
    if (runner_pending_) return;
    runner_pending_ = true;
    auto r = std::make_shared<job_runner>();
    asio::co_spawn(strand_any_, run_jobs(r),
                   asio::bind_cancellation_slot(r->signal.slot(),
                                                asio::bind_executor(strand_, [r](std::exception_ptr) {})));
  }

  asio::awaitable<void> run_jobs(std::shared_ptr<job_runner> r) {
    auto keep = owner.lock();
    // co_spawn runs a coroutine inline up to its first suspension: go behind the handler that
    // is queueing jobs right now, so this runner finds its whole batch.
    co_await asio::post(strand_any_, asio::use_awaitable);
    runner_pending_ = false;
    while (!ready_.empty()) {
      auto rj = std::move(ready_.front());
      ready_.pop_front();
      if (rj->done) continue;  // given up on by stop()
      if (rj->cancel_as) {     // cancelled before it started
        complete(rj, nullptr, job_outcome{});
        continue;
      }
      if (!ready_.empty()) ensure_runner();
      rj->runner = r.get();
      std::exception_ptr error;
      job_outcome out;
      try {
        out = co_await execute(rj);
      } catch (...) {
        error = std::current_exception();
      }
      rj->runner = nullptr;
      // A cancellation of this job must not reach the next one.
      co_await asio::this_coro::reset_cancellation_state();
      complete(rj, error, std::move(out));
    }
  }

  // A run's process group exists (record_process, any thread): record it in the store. Only
  // weak references: the context that calls this is owned by the running job.
  static void note_process(void* target, process_identity p) {
    auto& rj = *static_cast<running_job*>(target);
    auto keep = rj.owner.lock();
    if (!keep) return;
    job_engine* engine = rj.engine;
    asio::post(engine->strand_, [engine, keep, weak_rj = rj.weak_from_this(), p] {
      auto rj = weak_rj.lock();
      if (!rj || rj->done) return;
      job_record u = rj->ctx->record();
      u.state = job_state::running;
      u.process = p;
      engine->to_flush_.push_back(std::move(u));
      engine->sleep_.wake(engine->flush_waker_);
    });
  }

  asio::awaitable<job_outcome> execute(std::shared_ptr<running_job> rj) {
    auto& ctx = *rj->ctx;
    auto task = tasks_.find(ctx.task());
    if (!task) {
      auto names = tasks_.names();
      std::string known;
      for (auto& n : names) known += (known.empty() ? "" : ", ") + n;
      co_return job_outcome{
          job_state::failed,
          {},
          {},
          "unknown task \"" + ctx.task() + "\" (registered: " + (known.empty() ? "none" : known) + ")",
          {}};
    }
    switch (task->kind) {
      case task_entry::coroutine:
        co_await task->co(ctx);
        co_return job_outcome{job_state::succeeded, {}, {}, {}, ctx.output()};
      case task_entry::runner: co_return co_await task->run(ctx);
      case task_entry::blocking:
        try {
          co_return co_await run_blocking(task, std::shared_ptr<job_context>(rj, rj->ctx.get()));
        } catch (...) {
          rj->context_shared = true;  // cancelled: the thread may still be using the context
          throw;
        }
    }
    co_return job_outcome{job_state::failed, {}, {}, "bad task kind", {}};
  }

  // Runs a blocking task on the pool. Its end is delivered through a one-slot channel on the
  // strand; cancelling the awaiting coroutine (timeout, stop) returns at once and leaves the
  // thread to finish on its own (the job context stays alive until it does).
  asio::awaitable<job_outcome> run_blocking(std::shared_ptr<const task_entry> task,
                                            std::shared_ptr<job_context> ctx) {
    struct ended {
      std::exception_ptr error;  // wrapped: a bare exception_ptr would make use_awaitable rethrow it
    };
    using done_channel = asio::experimental::channel<void(asio::error_code, ended)>;
    auto done = std::make_shared<done_channel>(strand_, 1);
    asio::post(pool_, [task, ctx, done, strand = strand_]() {
      ended e;
      try {
        task->block(*ctx);
      } catch (...) {
        e.error = std::current_exception();
      }
      // Channels are not thread-safe: send from the strand. One slot, one send: never blocks.
      asio::post(strand,
                 [done, e = std::move(e)]() mutable { done->try_send(asio::error_code{}, std::move(e)); });
    });
    asio::error_code ec;
    ended e = co_await done->async_receive(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) throw std::system_error(ec);  // cancelled; the thread goes on
    if (e.error) std::rethrow_exception(e.error);
    co_return job_outcome{job_state::succeeded, {}, {}, {}, ctx->output()};
  }

  void cancel(running_job& rj, job_state as, std::string reason) {
    if (rj.done || rj.cancel_as) return;
    rj.cancel_as = as;
    rj.cancel_reason = std::move(reason);
    rj.ctx->request_stop();
    if (rj.runner) rj.runner->signal.emit(asio::cancellation_type::terminal);
  }

  void complete(const std::shared_ptr<running_job>& rj, std::exception_ptr error, job_outcome out) {
    if (rj->done) return;
    rj->done = true;
    rj->timeout_signal.emit(asio::cancellation_type::terminal);  // no-op without a timeout
    if (rj->cancel_as) {
      out.state = *rj->cancel_as;
      out.error = rj->cancel_reason;
    } else if (error) {
      out.state = job_state::failed;
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        out.error = e.what();
      } catch (...) {
        out.error = "unknown exception";
      }
      if (out.error.empty()) out.error = "task threw an exception";
    }
    const auto id = rj->ctx->job_id();
    if (auto it = running_.find(id); it != running_.end()) running_nodes_.erase(running_, it);
    counters.running.store(running_.size());
    auto& runs = *rj->runs;
    std::erase(runs.running, id);
    // The record is moved out when the task is over; a task still running on (given up on by
    // stop, or a blocking task's thread after a cancellation) may still read its context.
    job_record u;
    if (rj->runner || rj->context_shared) {
      u = rj->ctx->record();
      u.output = rj->ctx->output();
      u.process = rj->ctx->process();
    } else {
      u = rj->context.take_record();
    }
    u.state = out.state;
    u.finished = sleep_.now();
    u.exit_code = out.exit_code;
    u.signal = out.signal;
    u.error = std::move(out.error);
    if (!out.output.empty()) u.output = std::move(out.output);
    auto q = queued_.empty() ? queued_.end() : queued_.find(u.schedule_id);
    auto entry = runs.running.empty() ? by_schedule_.find(u.schedule_id) : by_schedule_.end();
    finish(std::move(u));
    // A slot is free: start a queued run of the same schedule.
    if (q != queued_.end() && !q->second.empty() && !sleep_.stopping) {
      job_record next = std::move(q->second.front());
      q->second.pop_front();
      if (q->second.empty()) queued_.erase(q);
      start_job(std::move(next), runs);
    }
    // A schedule with nothing running needs no entry: its batch marker only decides between
    // queueing and skipping, which happens only while one of its runs is running. (Every entry
    // is made by dispatch for a run it starts, so none is left behind empty.)
    if (entry != by_schedule_.end() && runs.running.empty()) schedule_nodes_.erase(by_schedule_, entry);
    if (sleep_.stopping) sleep_.wake(stop_waker_);
  }

  // A run that ended: retry or record, then queue for the flush loop.
  void finish(job_record u) {
    const schedule_options o = u.options ? *u.options : schedule_options{};
    const bool retryable = u.state == job_state::failed || u.state == job_state::timed_out;
    const event_kind kind = outcome_event(u.state);
    counters.count(u.state);
    if (events_.wanted(kind)) {
      event e = job_event(kind, u, sleep_.now());
      e.message = u.error;
      e.state = u.state;
      events_.emit(e);
    }
    if (retryable && u.attempt <= o.retries && !sleep_.stopping) {
      const double j = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
      u.state = job_state::pending;
      u.run_at = sleep_.now() + backoff_delay(o.retry_backoff, o.retry_backoff_max, u.attempt, j);
      u.attempt += 1;
      event r = job_event(event_kind::job_retry_scheduled, u, sleep_.now());
      r.message = u.error;
      events_.emit(r);
      u.finished.reset();
    }
    to_flush_.push_back(std::move(u));
    sleep_.wake(flush_waker_);
  }

  strand_type& strand_;
  asio::any_io_executor strand_any_{strand_};  // the strand, type-erased once (not per job)
  task_registry& tasks_;
  event_bus& events_;
  sleeper& sleep_;
  sleeper::waker& flush_waker_;
  sleeper::waker& stop_waker_;
  std::mt19937_64& rng_;
  asio::thread_pool& pool_;
  const std::array<double, 12>& lateness_bounds_;

  std::unordered_map<std::int64_t, std::shared_ptr<running_job>> running_;
  std::deque<std::shared_ptr<running_job>> ready_;  // started, waiting for a runner
  bool runner_pending_ = false;                     // a runner is spawned and has not begun
  std::unordered_map<std::string, schedule_runs> by_schedule_;
  // Both maps gain and lose an entry per run: their nodes are reused, not freed.
  node_recycler<std::unordered_map<std::int64_t, std::shared_ptr<running_job>>> running_nodes_;
  node_recycler<std::unordered_map<std::string, schedule_runs>, schedule_runs::reset> schedule_nodes_;
  std::uint64_t dispatch_batch_ = 0;
  std::unordered_map<std::string, std::deque<job_record>> queued_;
  std::vector<job_record> to_flush_;
};

}  // namespace detail
PUNCTUAL_END_NAMESPACE
