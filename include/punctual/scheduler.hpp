/// @file scheduler.hpp
/// The scheduler: coroutine loops on the caller's io_context that turn schedules into runs,
/// run them, and record what happened — and that keep doing so when the store fails.
///
/// There is no scheduler thread. start() spawns four supervised loops on a strand of the
/// executor you give it:
///  - the schedule loop acquires due schedules, plans their fire times (coalesce, misfire,
///    jitter) and releases them together with the new jobs, in one store operation;
///  - the job loop acquires due jobs and starts them (max_running, overlap, timeout,
///    retries); runner coroutines on the strand execute started jobs in order, a new runner
///    taking over whenever a task suspends, so no task waits behind a suspended one;
///  - the flush loop writes finished jobs back in batches;
///  - the lease loop extends this node's leases and recovers runs abandoned by dead nodes.
/// Every store call goes through one guard: an error (or a call that hangs past
/// store_timeout) is caught, reported as a `store_error` event, and retried after an
/// exponential, capped, jittered backoff; the first success after a streak emits
/// `store_recovered`. A loop that still ends unexpectedly is restarted by its supervisor
/// (`loop_restarted`). health() tells anyone whether all this is working. All waits are
/// bounded by max_wait and re-read the clock, so clock steps and suspends cannot make the
/// scheduler sleep past due work.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/detail/fire_plan.hpp"
#include "punctual/events.hpp"
#include "punctual/job.hpp"
#include "punctual/schedule.hpp"
#include "punctual/store/memory_store.hpp"
#include "punctual/store/store.hpp"
#include "punctual/task.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/jitter.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// How stop() treats runs still running.
enum class stop_mode {
  wait,    ///< let them finish within the grace period, then cancel what remains
  cancel,  ///< cancel them now (commands: SIGTERM, then SIGKILL after their kill grace)
};

/// The scheduler's life cycle.
enum class scheduler_state { stopped, running, stopping };

inline std::string_view to_string(scheduler_state s) {
  return s == scheduler_state::running ? "running" : s == scheduler_state::stopping ? "stopping" : "stopped";
}

/// A snapshot of the scheduler's health. `healthy` means: running, the last store call
/// succeeded, and the schedule loop ticked within the last 3 * max_wait.
struct health_report {
  scheduler_state state = scheduler_state::stopped;
  bool healthy = false;
  std::optional<time_point> last_tick;  ///< last completed schedule-loop iteration
  std::uint64_t error_streak = 0;       ///< consecutive failed store calls (0 when fine)
  std::string last_error;               ///< text of the last store error (kept after recovery)
  std::string last_error_op;            ///< the store operation that failed
  std::uint64_t loop_restarts = 0;      ///< loops restarted by the supervisor since start
  std::size_t running_jobs = 0;
  std::string reason;  ///< why not healthy ("" when healthy)
};

/// Always-on counters (cheap atomics), e.g. for a /metrics endpoint.
struct scheduler_metrics {
  /// Runs that ended in each job_state (indexed by the enum value).
  std::array<std::uint64_t, 9> outcomes{};
  std::uint64_t submitted = 0;      ///< jobs created by the schedule loop
  std::uint64_t fires_dropped = 0;  ///< due fire times dropped by coalescing
  std::uint64_t store_errors = 0;   ///< failed store calls
  std::uint64_t loop_restarts = 0;
  std::size_t running = 0;
  /// Lateness histogram (job start - fire time): counts per bucket with these upper bounds
  /// in seconds; the last bucket is +Inf. Cumulative sums are left to the exporter.
  static constexpr std::array<double, 12> lateness_bounds{0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                                          1,     5,     10,   60,   300, 1e300};
  std::array<std::uint64_t, 12> lateness_buckets{};
  double lateness_sum_seconds = 0;
  std::uint64_t lateness_count = 0;
  std::optional<time_point> last_tick;
};

/// Scheduler configuration. Every field has a working default.
struct scheduler_options {
  /// Where schedules and jobs live (default: a new memory_store).
  std::shared_ptr<store> job_store;
  /// Where "now" comes from (default: the system clock). Must outlive the scheduler.
  clock* time_source = nullptr;
  /// This node's name, recorded on leases and jobs (default: "<hostname>:<pid>").
  std::string node;
  /// Threads for blocking tasks.
  std::size_t blocking_threads = 4;
  /// The longest any loop sleeps before re-reading the clock and the store.
  duration max_wait = std::chrono::seconds{1};
  /// Lease on acquired schedules and running jobs; extended every lease/3 while alive.
  duration lease = std::chrono::seconds{30};
  /// Most schedules / jobs handled per store call.
  std::size_t batch = 512;
  /// Most jobs running at once on this node.
  std::size_t max_concurrent_jobs = 100000;
  /// A store call that takes longer is cancelled and counted as failed.
  duration store_timeout = std::chrono::seconds{30};
  /// Store error backoff: initial delay and cap (each delay is jittered into [d/2, d]).
  duration backoff_initial = std::chrono::milliseconds{100};
  duration backoff_max = std::chrono::seconds{30};
  /// Delay before the supervisor restarts a loop that ended unexpectedly.
  duration restart_delay = std::chrono::seconds{1};
  /// History kept per schedule, applied by the lease loop (nullopt: the store's own policy).
  std::optional<retention> history;
  /// Seed for jitter and backoff randomness (0: random).
  std::uint64_t seed = 0;
  /// Called for each recovered abandoned job that recorded a process group, so a process
  /// runner can kill a group that survived its host (see run/command_task.hpp).
  std::function<void(const job_record&)> on_abandoned_process;
  /// Called at the top of every loop iteration with the loop's name. An exception thrown here
  /// ends that loop as a bug would; the supervisor restarts it. For tests of supervision.
  std::function<void(std::string_view loop)> on_loop_iteration;
};

namespace detail {

/// Thrown inside loops when the scheduler is stopping; never escapes the scheduler.
struct stop_requested {};

inline std::string default_node_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host[0] ? host : "localhost") + ":" + std::to_string(::getpid());
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

class scheduler_core : public std::enable_shared_from_this<scheduler_core> {
 public:
  scheduler_core(asio::any_io_executor ex, scheduler_options o)
      : strand_(asio::make_strand(ex)),
        opts_(std::move(o)),
        pool_(std::max<std::size_t>(1, opts_.blocking_threads)),
        schedule_waker_(strand_),
        job_waker_(strand_),
        flush_waker_(strand_),
        lease_waker_(strand_),
        stop_waker_(strand_) {
    if (!opts_.job_store) opts_.job_store = std::make_shared<memory_store>();
    if (!opts_.time_source) opts_.time_source = &system_clock::instance();
    if (opts_.node.empty()) opts_.node = default_node_name();
    if (opts_.batch == 0) opts_.batch = 1;
    std::uint64_t seed = opts_.seed;
    if (seed == 0) seed = std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32);
    rng_.seed(seed);
  }

  ~scheduler_core() { pool_.join(); }

  // ---- shared state readable from any thread ----------------------------------------
  task_registry tasks_;
  event_bus events_;
  asio::strand<asio::any_io_executor> strand_;
  scheduler_options opts_;

  store& db() { return *opts_.job_store; }
  clock& clk() { return *opts_.time_source; }
  time_point now() { return clk().now(); }

  health_report health() {
    std::lock_guard lock(health_mutex_);
    health_report h = health_;
    h.state = state_.load();
    h.running_jobs = running_count_.load();
    h.loop_restarts = metric_loop_restarts_.load();
    if (h.state != scheduler_state::running) {
      h.healthy = false;
      h.reason = "scheduler is " + std::string(to_string(h.state));
    } else if (h.error_streak > 0) {
      h.healthy = false;
      h.reason = "store error streak of " + std::to_string(h.error_streak) + " (" + h.last_error_op +
                 "): " + h.last_error;
    } else if (h.last_tick && clk().now() - *h.last_tick > 3 * opts_.max_wait + opts_.store_timeout) {
      h.healthy = false;
      h.reason = "schedule loop has not ticked since " + format_iso(*h.last_tick);
    } else if (!h.last_tick) {
      h.healthy = false;
      h.reason = "schedule loop has not ticked yet";
    } else {
      h.healthy = true;
    }
    return h;
  }

  scheduler_metrics metrics() {
    scheduler_metrics m;
    for (std::size_t i = 0; i < m.outcomes.size(); ++i) m.outcomes[i] = outcome_counts_[i].load();
    m.submitted = metric_submitted_.load();
    m.fires_dropped = metric_dropped_.load();
    m.store_errors = metric_store_errors_.load();
    m.loop_restarts = metric_loop_restarts_.load();
    m.running = running_count_.load();
    for (std::size_t i = 0; i < m.lateness_buckets.size(); ++i)
      m.lateness_buckets[i] = lateness_buckets_[i].load();
    m.lateness_count = lateness_count_.load();
    m.lateness_sum_seconds = static_cast<double>(lateness_sum_us_.load()) / 1e6;
    std::lock_guard lock(health_mutex_);
    m.last_tick = health_.last_tick;
    return m;
  }

  scheduler_state state() const { return state_.load(); }

  // ---- life cycle (called on the strand) ----------------------------------------------

  void start() {
    scheduler_state expected = scheduler_state::stopped;
    if (!state_.compare_exchange_strong(expected, scheduler_state::running)) return;
    stopping_ = false;
    {
      std::lock_guard lock(health_mutex_);
      health_ = {};
    }
    auto self = shared_from_this();
    clock_sub_ = clk().subscribe([weak = weak_from_this()] {
      if (auto s = weak.lock()) s->post_wake_all();
    });
    store_sub_ = db().subscribe_changes([weak = weak_from_this()] {
      if (auto s = weak.lock()) s->post_wake_all();
    });
    asio::co_spawn(
        strand_, [self]() -> asio::awaitable<void> { co_await self->boot(); }, asio::detached);
  }

  asio::awaitable<void> stop(stop_mode mode, duration grace) {
    if (state_.load() != scheduler_state::running) {
      while (state_.load() == scheduler_state::stopping) co_await sleep(stop_waker_, now() + opts_.max_wait);
      co_return;
    }
    state_ = scheduler_state::stopping;
    stopping_ = true;
    wake_all();
    const auto deadline = now() + grace;
    if (mode == stop_mode::wait)
      while (!running_.empty() && now() < deadline) co_await sleep(stop_waker_, deadline);
    for (auto& [id, rj] :
         std::map<std::int64_t, std::shared_ptr<running_job>>(running_.begin(), running_.end()))
      cancel_job(*rj, job_state::cancelled, "scheduler stopping");
    for (auto& [sid, q] : queued_)
      for (auto& j : q) finish_unstarted(std::move(j), job_state::cancelled, "scheduler stopping");
    queued_.clear();
    // Cancelled runs end promptly (commands after their kill grace); a task that ignores
    // cancellation is given up on after the grace, recorded as cancelled, and left behind.
    const auto give_up = now() + std::max(grace, duration{std::chrono::seconds{10}});
    while (!running_.empty() && now() < give_up) co_await sleep(stop_waker_, give_up);
    for (auto& [id, rj] :
         std::map<std::int64_t, std::shared_ptr<running_job>>(running_.begin(), running_.end()))
      complete(rj, nullptr,
               job_outcome{job_state::cancelled, {}, {}, "did not stop within the grace period", {}});
    flush_deadline_ = now() + std::max(grace, duration{std::chrono::seconds{10}});
    wake_all();
    while (loops_running_ > 0) co_await sleep(stop_waker_, now() + opts_.max_wait);
    if (!to_flush_.empty()) {  // the flush loop gave up (store down): one last attempt
      try {
        co_await with_timeout(db().update_jobs(opts_.node, to_flush_));
      } catch (const std::exception& e) {
        report_store_error("update_jobs", e.what(), 0);
      }
      to_flush_.clear();
    }
    try {
      co_await with_timeout(db().release_leases(opts_.node));
    } catch (const std::exception& e) {
      report_store_error("release_leases", e.what(), 0);
    }
    if (clock_sub_) clk().unsubscribe(clock_sub_);
    if (store_sub_) db().unsubscribe_changes(store_sub_);
    clock_sub_ = store_sub_ = 0;
    state_ = scheduler_state::stopped;
    emit_simple(event_kind::scheduler_stopped, mode == stop_mode::wait ? "wait" : "cancel");
  }

  // ---- schedule operations (on the strand) -------------------------------------------

  asio::awaitable<bool> add(schedule_spec spec, conflict_policy policy) {
    validate(spec);
    schedule_record r;
    r.next_fire = next_within(spec.trigger, now(), spec.options);
    r.trigger_text = spec.trigger.to_string();
    r.spec = std::move(spec);
    const auto id = r.spec.id;
    const auto options = r.spec.options;
    const bool existed = (co_await db().get_schedule(id)).has_value();
    const bool stored = co_await db().add_schedule(std::move(r), policy);
    if (stored) {
      options_cache_[id] = options;
      emit_schedule(existed ? event_kind::schedule_modified : event_kind::schedule_added, id);
      wake(schedule_waker_);
    }
    co_return stored;
  }

  asio::awaitable<schedule_record> modify(schedule_spec spec) {
    validate(spec);
    const auto t = now();
    auto r = co_await db().modify_schedule(spec.id, [&](schedule_record& s) {
      const bool paused = s.spec.paused;
      s.spec = spec;
      s.spec.paused = paused;
      s.next_fire = next_within(spec.trigger, t, spec.options);
      s.trigger_text = spec.trigger.to_string();
    });
    if (!r) throw schedule_not_found(spec.id);
    options_cache_[spec.id] = spec.options;
    emit_schedule(event_kind::schedule_modified, spec.id);
    wake(schedule_waker_);
    co_return *r;
  }

  asio::awaitable<bool> remove(std::string id) {
    const bool removed = co_await db().remove_schedule(id);
    if (removed) {
      options_cache_.erase(id);
      emit_schedule(event_kind::schedule_removed, id);
    }
    co_return removed;
  }

  asio::awaitable<void> pause(std::string id) {
    auto r = co_await db().modify_schedule(id, [](schedule_record& s) { s.spec.paused = true; });
    if (!r) throw schedule_not_found(id);
    emit_schedule(event_kind::schedule_paused, id);
  }

  asio::awaitable<void> resume(std::string id, resume_from from) {
    const auto t = now();
    auto r = co_await db().modify_schedule(id, [&](schedule_record& s) {
      s.spec.paused = false;
      if (from == resume_from::now && s.spec.trigger)
        s.next_fire = next_within(s.spec.trigger, t, s.spec.options);
    });
    if (!r) throw schedule_not_found(id);
    emit_schedule(event_kind::schedule_resumed, id);
    wake(schedule_waker_);
  }

  asio::awaitable<std::int64_t> run_now(std::string id) {
    auto s = co_await db().get_schedule(id);
    if (!s) throw schedule_not_found(id);
    job_record j;
    j.schedule_id = id;
    j.task = s->spec.task;
    j.payload = s->spec.payload;
    j.options = intern_options(s->spec.options);
    auto t = now();
    std::int64_t job_id = 0;
    for (int k = 0; k < 1000 && job_id == 0; ++k, t += duration{1}) {  // same-microsecond duplicates
      j.fire_time = j.run_at = t;
      job_id = co_await db().add_job(j);
    }
    options_cache_[id] = s->spec.options;
    event e = make_event(event_kind::job_submitted, id);
    e.job_id = job_id;
    e.fire_time = j.fire_time;
    events_.emit(e);
    wake(job_waker_);
    co_return job_id;
  }

  // ---- waking ------------------------------------------------------------------------

  struct waker {
    explicit waker(asio::strand<asio::any_io_executor>& s) : timer(s) {}
    asio::steady_timer timer;
    bool pending = false;
  };

  // Only the first wake after the sleeper last woke cancels its timer (a cancel takes the
  // reactor's lock; the flush loop is woken once per finished run).
  void wake(waker& w) {
    if (std::exchange(w.pending, true)) return;
    w.timer.cancel();
  }
  void wake_all() {
    for (waker* w : {&schedule_waker_, &job_waker_, &flush_waker_, &lease_waker_, &stop_waker_}) wake(*w);
    for (auto* t : sleepers_) t->cancel();
  }
  // From any thread: coalesces bursts of notifications into one strand hop.
  void post_wake_all() {
    if (wake_posted_.exchange(true)) return;
    asio::post(strand_, [self = shared_from_this()] {
      self->wake_posted_ = false;
      self->options_cache_.clear();  // another node or process may have changed a schedule
      self->wake_all();
    });
  }

  /// How long to sleep in real time for `d` of scheduler-clock time: at most max_wait; on a
  /// clock that does not advance by itself, max_wait (its jumps wake the sleeper).
  duration real_wait(duration d) {
    return clk().advances_by_itself() ? std::min<duration>(d, opts_.max_wait) : opts_.max_wait;
  }

  /// Sleeps until `until` on the scheduler clock, at most max_wait at a time, or until woken.
  asio::awaitable<void> sleep(waker& w, time_point until) {
    if (w.pending) {
      w.pending = false;
      co_return;
    }
    const auto t = now();
    if (until <= t) co_return;
    w.timer.expires_after(real_wait(until - t));
    asio::error_code ec;
    co_await w.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    w.pending = false;
  }

  /// Waits until `until` on the scheduler clock (re-checked at least every max_wait and on
  /// every clock jump). Returns early when the awaiting coroutine is cancelled, and with
  /// `end_on_stop` when the scheduler is stopping.
  asio::awaitable<void> wait_until(time_point until, bool end_on_stop = false) {
    asio::steady_timer timer(strand_);
    sleepers_.push_back(&timer);
    struct unregister {
      std::vector<asio::steady_timer*>& v;
      asio::steady_timer* t;
      ~unregister() { std::erase(v, t); }
    } guard{sleepers_, &timer};
    for (;;) {
      const auto t = now();
      if (t >= until || (end_on_stop && stopping_)) co_return;
      timer.expires_after(real_wait(until - t));
      asio::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      auto cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none) co_return;  // the awaiter lost interest
    }
  }

  // ---- the guard ---------------------------------------------------------------------

  /// Runs a store operation with a timeout. (Asio's `||` waits for the first branch that
  /// completes *without* an exception, so the operation's exception is carried out as a value:
  /// a failing call must fail at once with its own error, not after store_timeout.)
  template <class T>
  asio::awaitable<T> with_timeout(asio::awaitable<T> op) {
    using namespace asio::experimental::awaitable_operators;
    if (!db().may_block()) co_return co_await std::move(op);  // nothing to time out
    using value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
    using outcome = std::pair<std::optional<value>, std::exception_ptr>;
    auto caught = [](asio::awaitable<T> o) -> asio::awaitable<outcome> {
      try {
        if constexpr (std::is_void_v<T>) {
          co_await std::move(o);
          co_return outcome{value{}, nullptr};
        } else {
          co_return outcome{co_await std::move(o), nullptr};
        }
      } catch (...) {
        co_return outcome{std::nullopt, std::current_exception()};
      }
    };
    auto r = co_await (caught(std::move(op)) || wait_until(now() + opts_.store_timeout));
    if (r.index() == 1) throw std::runtime_error("timed out after " + format_duration(opts_.store_timeout));
    auto& [v, error] = std::get<0>(r);
    if (error) std::rethrow_exception(error);
    if constexpr (std::is_void_v<T>)
      co_return;
    else
      co_return std::move(*v);
  }

  enum class guard_mode {
    normal,    ///< gives up (stop_requested) once the scheduler is stopping
    critical,  ///< keeps retrying while stopping, until the flush deadline
  };

  /// The one guard every loop's store call goes through.
  template <class MakeOp>
  auto guarded(std::string_view op, MakeOp make, guard_mode mode = guard_mode::normal) -> decltype(make()) {
    using T = typename std::invoke_result_t<MakeOp>::value_type;
    for (std::uint32_t attempt = 1;; ++attempt) {
      if (stopping_ && (mode == guard_mode::normal || now() > flush_deadline_)) throw stop_requested{};
      std::string failure;
      try {
        if constexpr (std::is_void_v<T>) {
          co_await with_timeout(make());
          note_store_success(op);
          co_return;
        } else {
          T result = co_await with_timeout(make());
          note_store_success(op);
          co_return result;
        }
      } catch (const stop_requested&) {
        throw;
      } catch (const std::exception& e) {
        failure = e.what();
        if (failure.empty()) failure = "unknown error";
      }
      report_store_error(op, failure, attempt);
      const double j = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
      co_await backoff_wait(now() + backoff_delay(opts_.backoff_initial, opts_.backoff_max, attempt, j));
    }
  }

  /// Waits out a backoff: the whole delay on the scheduler clock (wakes and clock jumps only
  /// make it re-check), ending early only when the scheduler stops.
  asio::awaitable<void> backoff_wait(time_point until) { co_await wait_until(until, /*end_on_stop=*/true); }

  void note_store_success(std::string_view op) {
    std::uint64_t streak;
    std::string failed_op, last_error;
    {
      std::lock_guard lock(health_mutex_);
      streak = health_.error_streak;
      health_.error_streak = 0;
      failed_op = health_.last_error_op;
      last_error = health_.last_error;
    }
    if (streak > 0) {
      event e = make_event(event_kind::store_recovered, {});
      e.op = op;
      e.count = streak;
      e.message = "store works again after " + std::to_string(streak) + " failed call" +
                  (streak > 1 ? "s" : "") + " (last: " + failed_op + ": " + last_error + ")";
      events_.emit(e);
    }
  }

  void report_store_error(std::string_view op, const std::string& what, std::uint32_t attempt) {
    metric_store_errors_.fetch_add(1);
    {
      std::lock_guard lock(health_mutex_);
      ++health_.error_streak;
      health_.last_error = what;
      health_.last_error_op = op;
    }
    event e = make_event(event_kind::store_error, {});
    e.op = op;
    e.message = what;
    e.attempt = attempt;
    events_.emit(e);
  }

  // ---- supervision -------------------------------------------------------------------

  asio::awaitable<void> boot() {
    // Recover what a previous incarnation of this node left running before running anything.
    ++loops_running_;
    try {
      auto recovered =
          co_await guarded("recover_abandoned", [this] { return db().recover_abandoned(opts_.node, now()); });
      handle_recovered(recovered);
    } catch (const stop_requested&) {
    }
    --loops_running_;
    if (stopping_) {
      wake(stop_waker_);
      co_return;
    }
    emit_simple(event_kind::scheduler_started, opts_.node);
    supervise("schedule", &scheduler_core::schedule_loop);
    supervise("job", &scheduler_core::job_loop);
    supervise("flush", &scheduler_core::flush_loop);
    supervise("lease", &scheduler_core::lease_loop);
  }

  void supervise(std::string name, asio::awaitable<void> (scheduler_core::*loop)()) {
    ++loops_running_;
    asio::co_spawn(
        strand_,
        [self = shared_from_this(), name, loop]() -> asio::awaitable<void> {
          for (;;) {
            std::string why;
            try {
              co_await ((*self).*loop)();
              if (self->stopping_) break;
              why = "the loop returned";
            } catch (const stop_requested&) {
              if (self->stopping_) break;
              why = "stop requested while running";
            } catch (const std::exception& e) {
              why = e.what();
            } catch (...) {
              why = "unknown exception";
            }
            if (self->stopping_) break;
            self->metric_loop_restarts_.fetch_add(1);
            event e = self->make_event(event_kind::loop_restarted, {});
            e.op = name;
            e.message = why;
            self->events_.emit(e);
            try {
              co_await self->wait_until(self->now() + self->opts_.restart_delay);
            } catch (...) {
            }
          }
          --self->loops_running_;
          self->wake(self->stop_waker_);
        },
        asio::detached);
  }

  void iteration(std::string_view loop) {
    if (opts_.on_loop_iteration) opts_.on_loop_iteration(loop);
  }

  // ---- the schedule loop -------------------------------------------------------------

  asio::awaitable<void> schedule_loop() {
    while (!stopping_) {
      iteration("schedule");
      // A failed acquire may have committed and lost its reply: the retry first frees the
      // leases it may have taken (between iterations this node holds no schedule lease).
      // Each attempt reads the clock again: planning with the time of a failed first attempt
      // would fire the oldest missed time and then, coalesced, the latest one.
      bool lost_reply = false;
      time_point t{};
      auto due =
          co_await guarded("acquire_due_schedules", [&]() -> asio::awaitable<std::vector<schedule_record>> {
            if (lost_reply) co_await db().release_leases(opts_.node);
            lost_reply = true;
            t = now();
            auto r = co_await db().acquire_due_schedules(opts_.node, t, t + opts_.lease, opts_.batch);
            lost_reply = false;
            co_return r;
          });
      // Buffers kept from one iteration to the next (their storage is reused).
      auto& releases = releases_;
      auto& jobs = planned_;
      auto& later = later_;
      releases.clear();
      jobs.clear();
      later.clear();
      for (auto& s : due) plan(s, t, releases, jobs, later);
      std::size_t pending_jobs = 0;
      for (auto& j : jobs) pending_jobs += j.state == job_state::pending;
      if (!releases.empty() || !jobs.empty()) {
        co_await guarded("release_schedules",
                         [&] { return db().release_schedules(opts_.node, releases, jobs); });
        metric_submitted_.fetch_add(jobs.size());
        for (auto& e : later) events_.emit(e);
        if (pending_jobs) wake(job_waker_);
      }
      tick(t);
      if (due.size() >= opts_.batch) continue;  // more may be due right now
      auto next = co_await guarded("next_due", [&] { return db().next_due(); });
      co_await sleep(schedule_waker_, next.schedule.value_or(time_point::max()));
    }
  }

  void plan(schedule_record& s, time_point t, std::vector<schedule_release>& releases,
            std::vector<job_record>& jobs, std::vector<event>& later) {
    if (!s.quarantine.empty()) {
      event e = make_event(event_kind::schedule_quarantined, s.spec.id);
      e.message = s.quarantine;
      later.push_back(std::move(e));
      return;
    }
    const auto& o = s.spec.options;
    const auto shared_options = intern_options(o);
    if (!s.next_fire) {
      releases.push_back({s.spec.id, std::nullopt, std::nullopt});
      return;
    }
    auto& p = plan_;
    plan_fires(s.spec.trigger, o, *s.next_fire, t, p);
    for (auto& f : p.fires) {
      job_record j;
      j.schedule_id = s.spec.id;
      j.task = s.spec.task;
      j.payload = s.spec.payload;
      j.fire_time = f.fire;
      j.run_at = f.fire;
      j.options = shared_options;
      if (o.max_jitter.count() > 0)
        j.run_at = apply_jitter(f.fire, next_within(s.spec.trigger, f.fire, o), o.max_jitter, rng_);
      if (f.missed) {
        j.state = job_state::missed;
        j.finished = t;
        j.error = "missed: " + format_duration(t - f.fire) + " late, misfire grace is " +
                  format_duration(*o.misfire_grace);
        outcome_counts_[static_cast<std::size_t>(job_state::missed)].fetch_add(1);
      }
      if (events_.wanted(f.missed ? event_kind::job_missed : event_kind::job_submitted)) {
        event e = make_event(f.missed ? event_kind::job_missed : event_kind::job_submitted, s.spec.id);
        e.fire_time = f.fire;
        if (f.missed) {
          e.lateness = t - f.fire;
          e.message = j.error;
          e.state = job_state::missed;
        }
        later.push_back(std::move(e));
      }
      jobs.push_back(std::move(j));
    }
    if (p.dropped > 0) {
      metric_dropped_.fetch_add(p.dropped);
      event e = make_event(event_kind::fires_dropped, s.spec.id);
      e.count = p.dropped;
      e.message = std::string(p.dropped_is_lower_bound ? "at least " : "") + std::to_string(p.dropped) +
                  " due fire times dropped (coalesce=" + std::string(to_string(o.coalesce)) + ")";
      later.push_back(std::move(e));
    }
    if (!p.next_fire) later.push_back(make_event(event_kind::schedule_finished, s.spec.id));
    releases.push_back({s.spec.id, p.next_fire, p.last_fire});
  }

  void tick(time_point t) {
    std::lock_guard lock(health_mutex_);
    health_.last_tick = t;
  }

  // ---- the job loop ------------------------------------------------------------------

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
    struct job_runner* runner = nullptr;       // the runner executing it (none yet: waiting)
    asio::cancellation_signal timeout_signal;  // ends its timeout watcher once the run is done
    std::optional<job_state> cancel_as;
    std::string cancel_reason;
    bool done = false;
    time_point started{};
    schedule_runs* runs = nullptr;  // its schedule's entry in by_schedule_
    std::weak_ptr<scheduler_core> core;
    bool context_shared = false;  // a pool thread may still use the context
  };

  asio::awaitable<void> job_loop() {
    while (!stopping_) {
      iteration("job");
      const std::size_t capacity =
          opts_.max_concurrent_jobs > running_.size() ? opts_.max_concurrent_jobs - running_.size() : 0;
      if (capacity > 0) {
        // As above: jobs taken by an acquire whose reply was lost go back to pending first.
        bool lost_reply = false;
        auto jobs = co_await guarded("acquire_jobs", [&]() -> asio::awaitable<std::vector<job_record>> {
          if (lost_reply) co_await db().release_jobs(opts_.node, held_job_ids());
          lost_reply = true;
          const auto t = now();  // each attempt at its own time, as in the schedule loop
          auto r =
              co_await db().acquire_jobs(opts_.node, t, t + opts_.lease, std::min(capacity, opts_.batch));
          lost_reply = false;
          co_return r;
        });
        ++dispatch_batch_;
        for (auto& j : jobs) {
          if (!j.options) j.options = intern_options(co_await options_for(j));
          dispatch(std::move(j));
        }
        if (jobs.size() >= std::min(capacity, opts_.batch)) {
          co_await yield();  // let the runs just started go first: bounded work in flight
          continue;
        }
      }
      auto next = co_await guarded("next_due", [&] { return db().next_due(); });
      co_await sleep(job_waker_, capacity > 0 ? next.job.value_or(time_point::max()) : time_point::max());
    }
  }

  // Options are shared between the jobs of a schedule: the few distinct option sets in use
  // are interned so a job carries a pointer, not a copy (and needs no lookup by id).
  std::shared_ptr<const schedule_options> intern_options(const schedule_options& o) {
    for (auto& p : options_pool_)
      if (*p == o) return p;
    auto p = std::make_shared<const schedule_options>(o);
    if (options_pool_.size() < 64) options_pool_.push_back(p);
    return p;
  }

  // The jobs this node really holds: running, and queued behind max_running.
  std::vector<std::int64_t> held_job_ids() const {
    std::vector<std::int64_t> ids;
    for (auto& [id, rj] : running_) ids.push_back(id);
    for (auto& [sid, q] : queued_)
      for (auto& j : q) ids.push_back(j.id);
    return ids;
  }

  asio::awaitable<schedule_options> options_for(const job_record& j) {
    if (j.options) co_return *j.options;
    const auto& schedule_id = j.schedule_id;
    auto it = options_cache_.find(schedule_id);
    if (it != options_cache_.end()) co_return it->second;
    auto s = co_await guarded("get_schedule", [&] { return db().get_schedule(schedule_id); });
    schedule_options o = s ? s->spec.options : schedule_options{};
    options_cache_[schedule_id] = o;
    co_return o;
  }

  // Starts, queues or skips one acquired job (its options hint set).
  void dispatch(job_record j) {
    const schedule_options o = *j.options;
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
            cancel_job(*oldest->second, job_state::cancelled,
                       "replaced by the run for " + format_iso(j.fire_time));
          break;
        }
      }
    }
    start_job(std::move(j), o, runs);
  }

  // Lets the handlers queued on the strand run before the caller goes on (a store that
  // completes synchronously would otherwise let a loop take every due batch in one go).
  asio::awaitable<void> yield() { co_await asio::post(strand_any_, asio::use_awaitable); }

  void start_job(job_record j, const schedule_options& o, schedule_runs& runs) {
    const auto t = now();
    j.started = t;
    auto rj = std::make_shared<running_job>(std::move(j), strand_any_);
    rj->started = t;
    const auto& rec = rj->ctx->record();
    running_nodes_.insert(running_, rec.id)->second = rj;
    runs.running.push_back(rec.id);
    rj->runs = &runs;
    running_count_.store(running_.size());
    const auto lateness = t - rec.fire_time;
    note_lateness(lateness);
    if (events_.wanted(event_kind::job_started)) {
      event e = job_event(event_kind::job_started, rec);
      e.lateness = lateness;
      events_.emit(e);
    }
    rj->core = weak_from_this();
    rj->ctx->on_process({&scheduler_core::note_process, rj.get()});
    auto self = shared_from_this();
    if (o.timeout) {
      asio::co_spawn(
          strand_,
          [self, rj, deadline = t + *o.timeout, timeout = *o.timeout]() -> asio::awaitable<void> {
            co_await self->wait_until(deadline);
            if (!rj->done)
              self->cancel_job(*rj, job_state::timed_out, "timed out after " + format_duration(timeout));
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
    auto self = shared_from_this();
    // co_spawn runs a coroutine inline up to its first suspension: go behind the handler that
    // is queueing jobs right now, so this runner finds its whole batch.
    co_await yield();
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
    auto self = rj.core.lock();
    if (!self) return;
    asio::post(self->strand_, [self, weak_rj = rj.weak_from_this(), p] {
      auto rj = weak_rj.lock();
      if (!rj || rj->done) return;
      job_record u = rj->ctx->record();
      u.state = job_state::running;
      u.process = p;
      self->to_flush_.push_back(std::move(u));
      self->wake(self->flush_waker_);
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

  void cancel_job(running_job& rj, job_state as, std::string reason) {
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
    running_count_.store(running_.size());
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
    u.finished = now();
    u.exit_code = out.exit_code;
    u.signal = out.signal;
    u.error = std::move(out.error);
    if (!out.output.empty()) u.output = std::move(out.output);
    auto q = queued_.empty() ? queued_.end() : queued_.find(u.schedule_id);
    auto entry = runs.running.empty() ? by_schedule_.find(u.schedule_id) : by_schedule_.end();
    finish(std::move(u));
    // A slot is free: start a queued run of the same schedule.
    if (q != queued_.end() && !q->second.empty() && !stopping_) {
      job_record next = std::move(q->second.front());
      q->second.pop_front();
      if (q->second.empty()) queued_.erase(q);
      const schedule_options o = next.options ? *next.options : schedule_options{};
      start_job(std::move(next), o, runs);
    }
    // A schedule with nothing running needs no entry: its batch marker only decides between
    // queueing and skipping, which happens only while one of its runs is running. (Every entry
    // is made by dispatch for a run it starts, so none is left behind empty.)
    if (entry != by_schedule_.end() && runs.running.empty()) schedule_nodes_.erase(by_schedule_, entry);
    if (stopping_) wake(stop_waker_);
  }

  // A run that ended (or never started): retry or record, then queue for the flush loop.
  void finish(job_record u) {
    const schedule_options o = u.options ? *u.options : schedule_options{};
    const bool retryable = u.state == job_state::failed || u.state == job_state::timed_out;
    event_kind kind = outcome_event(u.state);
    outcome_counts_[static_cast<std::size_t>(u.state)].fetch_add(1);
    if (events_.wanted(kind)) {
      event e = job_event(kind, u);
      e.message = u.error;
      e.state = u.state;
      events_.emit(e);
    }
    if (retryable && u.attempt <= o.retries && !stopping_) {
      const double j = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
      u.state = job_state::pending;
      u.run_at = now() + backoff_delay(o.retry_backoff, o.retry_backoff_max, u.attempt, j);
      u.attempt += 1;
      event r = job_event(event_kind::job_retry_scheduled, u);
      r.message = u.error;
      events_.emit(r);
      u.finished.reset();
    }
    to_flush_.push_back(std::move(u));
    wake(flush_waker_);
  }

  void finish_unstarted(job_record j, job_state state, std::string why) {
    j.state = state;
    j.finished = now();
    j.error = std::move(why);
    event e = job_event(outcome_event(state), j);
    e.message = j.error;
    e.state = state;
    outcome_counts_[static_cast<std::size_t>(state)].fetch_add(1);
    events_.emit(e);
    to_flush_.push_back(std::move(j));
    wake(flush_waker_);
  }

  static event_kind outcome_event(job_state s) {
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

  // ---- the flush loop ----------------------------------------------------------------

  asio::awaitable<void> flush_loop() {
    for (;;) {
      iteration("flush");
      if (to_flush_.empty() && flushing_.empty()) {
        if (stopping_ && running_.empty()) co_return;
        co_await sleep(flush_waker_, time_point::max());
        continue;
      }
      // Two buffers take turns (their storage is kept): one fills while the other is written.
      auto& batch = flushing_;
      if (!batch.empty()) {  // left by an iteration that ended abnormally: goes first
        to_flush_.insert(to_flush_.begin(), std::make_move_iterator(batch.begin()),
                         std::make_move_iterator(batch.end()));
        batch.clear();
      }
      batch.swap(to_flush_);
      bool requeued = false;
      for (auto& j : batch) requeued = requeued || j.state == job_state::pending;
      try {
        co_await guarded(
            "update_jobs", [&] { return db().update_jobs(opts_.node, batch); }, guard_mode::critical);
      } catch (const stop_requested&) {
        // Stopping and the store is still down past the deadline: keep them for stop()'s last try.
        to_flush_.insert(to_flush_.begin(), std::make_move_iterator(batch.begin()),
                         std::make_move_iterator(batch.end()));
        batch.clear();
        co_return;
      }
      batch.clear();
      if (requeued) wake(job_waker_);
    }
  }

  // ---- the lease loop ----------------------------------------------------------------

  asio::awaitable<void> lease_loop() {
    const auto period = std::max<duration>(opts_.lease / 3, duration{1000});
    auto next_purge = now();
    while (!stopping_) {
      iteration("lease");
      co_await sleep(lease_waker_, now() + period);
      if (stopping_) break;
      const auto t = now();
      co_await guarded("extend_leases", [&] { return db().extend_leases(opts_.node, t + opts_.lease); });
      auto recovered =
          co_await guarded("recover_abandoned", [&] { return db().recover_abandoned(std::nullopt, t); });
      handle_recovered(recovered);
      if (opts_.history && t >= next_purge) {
        co_await guarded("purge_jobs", [&] { return db().purge_jobs(*opts_.history, t); });
        next_purge = t + std::chrono::minutes{1};
      }
    }
  }

  void handle_recovered(const std::vector<job_record>& jobs) {
    bool requeued = false;
    for (auto& j : jobs) {
      if (j.process.pgid != 0 && opts_.on_abandoned_process) {
        try {
          opts_.on_abandoned_process(j);
        } catch (const std::exception& ex) {
          event e = job_event(event_kind::job_failed, j);
          e.message = std::string("killing the abandoned process group failed: ") + ex.what();
          events_.emit(e);
        }
      }
      outcome_counts_[static_cast<std::size_t>(job_state::abandoned)].fetch_add(1);
      event e = job_event(event_kind::job_abandoned, j);
      e.message = j.error;
      e.state = job_state::abandoned;
      events_.emit(e);
      if (j.state == job_state::pending) {
        events_.emit(job_event(event_kind::job_recovered, j));
        requeued = true;
      }
    }
    if (requeued) wake(job_waker_);
  }

  // ---- events and metrics ------------------------------------------------------------

  event make_event(event_kind k, std::string_view schedule_id) {
    event e;
    e.kind = k;
    e.at = now();
    e.schedule_id = schedule_id;
    return e;
  }
  event job_event(event_kind k, const job_record& j) {
    event e = make_event(k, j.schedule_id);
    e.job_id = j.id;
    e.fire_time = j.fire_time;
    e.attempt = j.attempt;
    return e;
  }
  void emit_schedule(event_kind k, const std::string& id) { events_.emit(make_event(k, id)); }
  void emit_simple(event_kind k, std::string message) {
    event e = make_event(k, {});
    e.message = std::move(message);
    events_.emit(e);
  }

  void note_lateness(duration late) {
    const double s = static_cast<double>(late.count()) / 1e6;
    std::size_t b = 0;
    while (b + 1 < scheduler_metrics::lateness_bounds.size() && s > scheduler_metrics::lateness_bounds[b])
      ++b;
    lateness_buckets_[b].fetch_add(1, std::memory_order_relaxed);
    lateness_count_.fetch_add(1, std::memory_order_relaxed);
    lateness_sum_us_.fetch_add(std::max<std::int64_t>(0, late.count()), std::memory_order_relaxed);
  }

  static void validate(const schedule_spec& s) {
    if (s.id.empty()) throw std::invalid_argument("schedule id must not be empty");
    if (s.task.empty()) throw std::invalid_argument("schedule \"" + s.id + "\": task name must not be empty");
    if (!s.trigger) throw std::invalid_argument("schedule \"" + s.id + "\": trigger must not be empty");
    if (s.options.max_running == 0)
      throw std::invalid_argument("schedule \"" + s.id + "\": max_running must be >= 1");
    if (s.options.max_jitter.count() < 0 || (s.options.timeout && s.options.timeout->count() <= 0) ||
        (s.options.misfire_grace && s.options.misfire_grace->count() < 0))
      throw std::invalid_argument("schedule \"" + s.id +
                                  "\": jitter, timeout and misfire grace must be positive");
    if (s.options.start && s.options.end && *s.options.end < *s.options.start)
      throw std::invalid_argument("schedule \"" + s.id + "\": end is before start");
  }

 private:
  asio::thread_pool pool_;
  std::atomic<scheduler_state> state_{scheduler_state::stopped};
  bool stopping_ = false;
  int loops_running_ = 0;
  time_point flush_deadline_ = time_point::max();
  std::mt19937_64 rng_;

  waker schedule_waker_, job_waker_, flush_waker_, lease_waker_, stop_waker_;
  std::vector<asio::steady_timer*> sleepers_;
  std::atomic<bool> wake_posted_{false};
  std::uint64_t clock_sub_ = 0, store_sub_ = 0;

  std::unordered_map<std::string, schedule_options> options_cache_;  // for jobs without the hint
  std::vector<std::shared_ptr<const schedule_options>> options_pool_;
  std::unordered_map<std::int64_t, std::shared_ptr<running_job>> running_;
  detail::fire_plan plan_;  // the schedule loop's scratch plan (its storage is reused)
  std::deque<std::shared_ptr<running_job>> ready_;  // started, waiting for a runner
  bool runner_pending_ = false;                     // a runner is spawned and has not begun
  std::unordered_map<std::string, schedule_runs> by_schedule_;
  // Both maps gain and lose an entry per run: their nodes are reused, not freed.
  node_recycler<std::unordered_map<std::int64_t, std::shared_ptr<running_job>>> running_nodes_;
  node_recycler<std::unordered_map<std::string, schedule_runs>, schedule_runs::reset> schedule_nodes_;
  std::uint64_t dispatch_batch_ = 0;
  asio::any_io_executor strand_any_{strand_};  // the strand, type-erased once (not per job)
  std::unordered_map<std::string, std::deque<job_record>> queued_;
  std::vector<job_record> to_flush_, flushing_;  // the flush loop's two buffers
  std::vector<schedule_release> releases_;       // the schedule loop's buffers
  std::vector<job_record> planned_;
  std::vector<event> later_;

  std::mutex health_mutex_;
  health_report health_;
  std::atomic<std::size_t> running_count_{0};
  std::array<std::atomic<std::uint64_t>, 9> outcome_counts_{};
  std::array<std::atomic<std::uint64_t>, 12> lateness_buckets_{};
  std::atomic<std::uint64_t> lateness_count_{0};
  std::atomic<std::int64_t> lateness_sum_us_{0};
  std::atomic<std::uint64_t> metric_submitted_{0}, metric_dropped_{0}, metric_store_errors_{0},
      metric_loop_restarts_{0};
};

}  // namespace detail

/// The scheduler. Construct it on an executor, register tasks, add schedules, start(), and
/// run the io_context (from one thread or several: all state lives on a strand).
///
/// Every asynchronous member takes a completion token (asio::use_awaitable, asio::use_future,
/// a callback, ...); its completion signature is `void(std::exception_ptr, R)`. Operations run
/// on the scheduler's strand and do not require start().
///
/// @code
/// asio::io_context io;
/// punctual::scheduler sched{io.get_executor()};
/// sched.tasks().add("report", [](punctual::job_context& job) -> asio::awaitable<void> { co_return; });
/// asio::co_spawn(io, [&]() -> asio::awaitable<void> {
///   // (GCC 12: build the spec in its own statement; a braced temporary inside co_await is
///   // destroyed twice by that compiler.)
///   punctual::schedule_spec spec{.id = "daily-report", .task = "report",
///                                .trigger = punctual::cron("0 9 * * MON-FRI", "Europe/Berlin")};
///   co_await sched.add_schedule(std::move(spec), asio::use_awaitable);
/// }, asio::detached);
/// sched.start();
/// io.run();
/// @endcode
///
/// Destruction while running cancels the loops and runs without waiting (stop(cancel, 0)
/// started but not awaited); the loops keep the internal state alive until they end, but the
/// io_context must outlive them. Prefer `co_await sched.async_stop(...)` first.
class scheduler {
 public:
  explicit scheduler(asio::any_io_executor ex, scheduler_options options = {})
      : core_(std::make_shared<detail::scheduler_core>(std::move(ex), std::move(options))) {}
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;
  ~scheduler() {
    if (core_->state() == scheduler_state::running) {
      auto core = core_;
      asio::co_spawn(core->strand_, core->stop(stop_mode::cancel, duration{0}), asio::detached);
    }
  }

  /// The tasks this scheduler can run.
  task_registry& tasks() noexcept { return core_->tasks_; }
  /// Where events are published.
  event_bus& events() noexcept { return core_->events_; }
  /// This node's name.
  const std::string& node() const noexcept { return core_->opts_.node; }
  /// The store in use.
  const std::shared_ptr<store>& job_store() const noexcept { return core_->opts_.job_store; }
  /// The scheduler's executor (a strand of the one given at construction).
  asio::any_io_executor get_executor() const { return core_->strand_; }
  /// The clock in use.
  clock& time_source() const noexcept { return core_->clk(); }

  /// Spawns the loops on the executor. Returns at once; idempotent while running. Runs
  /// abandoned by a previous incarnation of this node are recovered first.
  void start() {
    asio::dispatch(core_->strand_, [core = core_] { core->start(); });
  }

  /// Stops acquiring work, lets running jobs finish (stop_mode::wait) within `grace`, cancels
  /// the rest, records every outcome and releases leases. Completion: void(std::exception_ptr).
  template <class CompletionToken>
  auto async_stop(stop_mode mode, duration grace, CompletionToken&& token) {
    return asio::co_spawn(core_->strand_, core_->stop(mode, grace), std::forward<CompletionToken>(token));
  }

  /// Adds a schedule (conflict_policy::error: throws schedule_conflict if the id exists).
  /// Its first fire time is the trigger's first after now (and after options.start).
  /// Completion: void(std::exception_ptr, bool stored).
  template <class CompletionToken>
  auto add_schedule(schedule_spec spec, CompletionToken&& token) {
    return add_schedule(std::move(spec), conflict_policy::error, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto add_schedule(schedule_spec spec, conflict_policy on_conflict, CompletionToken&& token) {
    return asio::co_spawn(core_->strand_, core_->add(std::move(spec), on_conflict),
                          std::forward<CompletionToken>(token));
  }
  /// Replaces an existing schedule's task, trigger, payload and options (pause state and
  /// history kept; next fire recomputed from now). Throws schedule_not_found.
  /// Completion: void(std::exception_ptr, schedule_record).
  template <class CompletionToken>
  auto modify_schedule(schedule_spec spec, CompletionToken&& token) {
    return asio::co_spawn(core_->strand_, core_->modify(std::move(spec)),
                          std::forward<CompletionToken>(token));
  }
  /// Removes a schedule (running jobs finish; pending ones are cancelled; history stays).
  /// Completion: void(std::exception_ptr, bool removed).
  template <class CompletionToken>
  auto remove_schedule(std::string id, CompletionToken&& token) {
    return asio::co_spawn(core_->strand_, core_->remove(std::move(id)), std::forward<CompletionToken>(token));
  }
  /// Pauses a schedule: no new runs until resumed. Throws schedule_not_found.
  /// Completion: void(std::exception_ptr).
  template <class CompletionToken>
  auto pause_schedule(std::string id, CompletionToken&& token) {
    return asio::co_spawn(core_->strand_, core_->pause(std::move(id)), std::forward<CompletionToken>(token));
  }
  /// Resumes a paused schedule; `from` says whether runs missed while paused are caught up
  /// (per the schedule's coalesce/misfire options) or skipped. Throws schedule_not_found.
  template <class CompletionToken>
  auto resume_schedule(std::string id, resume_from from, CompletionToken&& token) {
    return asio::co_spawn(core_->strand_, core_->resume(std::move(id), from),
                          std::forward<CompletionToken>(token));
  }
  /// Creates a run of the schedule now (fire time = now), outside its trigger.
  /// Completion: void(std::exception_ptr, std::int64_t job_id).
  template <class CompletionToken>
  auto run_now(std::string id, CompletionToken&& token) {
    return asio::co_spawn(core_->strand_, core_->run_now(std::move(id)),
                          std::forward<CompletionToken>(token));
  }
  /// Completion: void(std::exception_ptr, std::optional<schedule_record>).
  template <class CompletionToken>
  auto get_schedule(std::string id, CompletionToken&& token) {
    return asio::co_spawn(core_->strand_, core_->db().get_schedule(std::move(id)),
                          std::forward<CompletionToken>(token));
  }
  /// Completion: void(std::exception_ptr, std::vector<schedule_record>).
  template <class CompletionToken>
  auto list_schedules(CompletionToken&& token) {
    return asio::co_spawn(core_->strand_, core_->db().list_schedules(), std::forward<CompletionToken>(token));
  }
  /// Completion: void(std::exception_ptr, std::vector<job_record>).
  template <class CompletionToken>
  auto list_jobs(job_query q, CompletionToken&& token) {
    return asio::co_spawn(core_->strand_, core_->db().list_jobs(std::move(q)),
                          std::forward<CompletionToken>(token));
  }

  /// A snapshot of the scheduler's health; thread-safe, cheap.
  health_report health() const { return core_->health(); }
  /// Counters and the lateness histogram; thread-safe, cheap.
  scheduler_metrics metrics() const { return core_->metrics(); }
  /// The current state; thread-safe.
  scheduler_state state() const { return core_->state(); }

 private:
  std::shared_ptr<detail::scheduler_core> core_;
};

PUNCTUAL_END_NAMESPACE
