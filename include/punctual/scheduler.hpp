/// @file scheduler.hpp
/// The scheduler: coroutine loops on the caller's io_context that turn schedules into runs,
/// run them, and record what happened — and that keep doing so when the store fails.
///
/// There is no scheduler thread. start() spawns four supervised loops on a strand of the
/// executor you give it:
///  - the schedule loop (impl/schedule_loop.hpp) acquires due schedules, plans their fire
///    times (coalesce, misfire, jitter) and releases them together with the new jobs, in one
///    store operation;
///  - the job loop (impl/job_loop.hpp) acquires due jobs and hands them to the job engine
///    (detail/job_engine.hpp: max_running, overlap, timeout, retries); runner coroutines on
///    the strand execute started jobs in order, a new runner taking over whenever a task
///    suspends, so no task waits behind a suspended one;
///  - the flush loop (impl/flush_loop.hpp) writes finished jobs back in batches;
///  - the lease loop (impl/lease_loop.hpp) extends this node's leases and recovers runs
///    abandoned by dead nodes.
/// Every store call goes through one guard (detail/store_guard.hpp): an error (or a call that
/// hangs past store_timeout) is caught, reported as a `store_error` event, and retried after an
/// exponential, capped backoff, each delay drawn uniformly in [d/2, d] — cut short once any
/// other call succeeds (the store is back), though not within max_wait of the failure; when no
/// loop is failing any more, `store_recovered` ends the outage. Runs of one schedule that the
/// job loop finds due together (a backlog left by an outage) follow the schedule's coalesce
/// option, as fire times found due together by the schedule loop do. A loop that still ends unexpectedly is
/// restarted by its supervisor (impl/supervisor.hpp, `loop_restarted`). health() (impl/health.hpp) tells
/// anyone whether all this is working. All waits (detail/sleeper.hpp) are bounded by max_wait and re-read the
/// clock, so clock steps and suspends cannot make the scheduler sleep past due work.
///
/// This header declares the public API; the bodies live in impl/ and detail/.
#pragma once

#include <array>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/dispatch.hpp>
#include <asio/use_awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/error.hpp"
#include "punctual/events.hpp"
#include "punctual/job.hpp"
#include "punctual/schedule.hpp"
#include "punctual/store/store.hpp"
#include "punctual/task.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// How a stop treats runs still running.
enum class stop_mode {
  wait,    ///< let them finish within the grace period, then cancel what remains
  cancel,  ///< cancel them now (commands: SIGTERM, then SIGKILL after their kill grace)
};

/// The scheduler's life cycle.
enum class scheduler_state { stopped, running, stopping };

inline std::string_view to_string(scheduler_state s) {
  return s == scheduler_state::running ? "running" : s == scheduler_state::stopping ? "stopping" : "stopped";
}

/// One loop of the scheduler in a health_report.
struct loop_health {
  std::string name;                ///< "schedule", "job", "flush", "lease" (or "boot": the start-up recovery)
  bool failing = false;            ///< its current store call failed and has not succeeded since
  std::uint64_t error_streak = 0;  ///< failed attempts of that call (0 when not failing)
  std::optional<time_point> since;      ///< when it began failing
  std::string last_error;               ///< its last store error (kept after recovery)
  std::string last_error_op;            ///< the operation that failed
  std::optional<time_point> last_tick;  ///< its last iteration (none for boot)
};

/// A snapshot of the scheduler's health. `healthy` means the loops are doing their work: the
/// scheduler is running, no loop's store call is failing (each loop's last call succeeded),
/// and the schedule, job and flush loops ticked within the last 3 * max_wait + store_timeout
/// (the lease loop within lease/3 more). While any loop is failing, `reason` names each failing
/// loop with its operation and error.
struct health_report {
  scheduler_state state = scheduler_state::stopped;
  bool healthy = false;
  std::optional<time_point> last_tick;  ///< last completed schedule-loop iteration
  std::uint64_t error_streak = 0;   ///< failed store calls in the current outage (0 when no loop is failing)
  std::string last_error;           ///< text of the last store error (kept after recovery)
  std::string last_error_op;        ///< the store operation that failed
  std::uint64_t loop_restarts = 0;  ///< loops restarted by the supervisor since start
  std::size_t running_jobs = 0;
  std::string reason;              ///< why not healthy ("" when healthy)
  std::vector<loop_health> loops;  ///< boot, schedule, job, flush, lease
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
  /// Lateness histogram of first attempts (start - fire time; a retry's start is not counted):
  /// counts per bucket with these upper bounds in seconds; the last bucket is +Inf. Cumulative
  /// sums are left to the exporter.
  static constexpr std::array<double, 12> lateness_bounds{0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                                          1,     5,     10,   60,   300, 1e300};
  std::array<std::uint64_t, 12> lateness_buckets{};
  double lateness_sum_seconds = 0;
  std::uint64_t lateness_count = 0;
  std::optional<time_point> last_tick;
};

/// The default node name: the host name ("localhost" when it has none). A restarted process
/// on the same host is the same node, so it recovers its own abandoned runs at once (and kills
/// their surviving process groups) instead of waiting out their leases.
inline std::string default_node_name();

/// Scheduler configuration. Every field has a working default.
struct scheduler_options {
  /// Where schedules and jobs live (default: a new memory_store).
  std::shared_ptr<store> job_store;
  /// Where "now" comes from (default: the system clock). Must outlive the scheduler.
  clock* time_source = nullptr;
  /// This node's name, recorded on leases and jobs (default: default_node_name(), the host name). A node that
  /// starts recovers the runs a previous incarnation *of the same name* left running at once
  /// (killing their surviving process groups); runs of other names wait for their lease to
  /// expire. So keep a process's name across restarts, and give every scheduler that shares a
  /// store a name of its own (two live schedulers with one name on one store would take each
  /// other's runs for abandoned ones).
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
  /// Store error backoff: the n-th retry waits d = min(backoff_max, backoff_initial * 2^(n-1)),
  /// drawn uniformly in [d/2, d] — or less: a success of any other store call ends it, though
  /// not before max_wait has passed since the failure.
  duration backoff_initial = std::chrono::milliseconds{100};
  duration backoff_max = std::chrono::seconds{30};
  /// Delay before the supervisor restarts a loop that ended unexpectedly.
  duration restart_delay = std::chrono::seconds{1};
  /// History kept per schedule, applied by the lease loop (nullopt: the store's own policy).
  std::optional<retention> history;
  /// Seed for jitter and backoff randomness (0: random).
  std::uint64_t seed = 0;
  /// async_add_schedule / async_modify_schedule refuse a schedule whose task is not
  /// registered (invalid_schedule). Set this where nodes with different task sets share a
  /// store: such a schedule is then accepted, and each of its runs on a node without the task
  /// fails with "unknown task" (a job_failed event saying so).
  bool allow_unknown_tasks = false;
  /// Called for each recovered abandoned job that recorded a process group, so a process
  /// runner can kill a group that survived its host (see run/command_task.hpp).
  std::function<void(const job_record&)> on_abandoned_process;
  /// Called at the top of every loop iteration with the loop's name. An exception thrown here
  /// ends that loop as a bug would; the supervisor restarts it. For tests of supervision.
  std::function<void(std::string_view loop)> on_loop_iteration;
};

/// The arguments of async_add_schedule / async_modify_schedule as written in braces at the
/// call: `co_await sched.async_add_schedule({.id = "a", .task = "t", .trigger = cron("0 9 * * *")},
/// asio::use_awaitable)`. A view, trivially copyable, read before the initiating function
/// returns (into a schedule_spec) and never kept: it may refer to temporaries of the call.
///
/// Why a view: GCC 12 destroys a class temporary written in braces inside a `co_await`
/// expression twice (the callee sees a bitwise copy; both are destroyed), whatever the
/// parameter's type — by value, `const&`, `&&`. A trivially copyable aggregate has nothing to
/// destroy, so the natural braced form is safe; tests/unit/scheduler_api.cpp proves it under
/// ASan. A schedule_spec you built yourself goes to the overloads that take one.
struct schedule_args {
  std::string_view id;
  std::string_view task;
  const ::punctual::trigger& trigger;
  std::string_view payload{};
  schedule_options options{};
  bool paused = false;

  /// The owning spec.
  schedule_spec to_spec() const {
    return schedule_spec{std::string(id), std::string(task), trigger, std::string(payload), options, paused};
  }
};

/// A history query as written in braces at the call (`async_list_jobs({.schedule_id = "b"}, ...)`):
/// the view counterpart of job_query, for the reason given at schedule_args.
struct job_filter {
  std::optional<std::string_view> schedule_id{};  ///< only this schedule's jobs
  std::optional<job_state> state{};               ///< only jobs in this state
  std::size_t limit = 100;                        ///< at most this many (0: none), newest fire time first

  /// The owning query.
  job_query to_query() const {
    job_query q;
    if (schedule_id) q.schedule_id = std::string(*schedule_id);
    q.state = state;
    q.limit = limit;
    return q;
  }
};

static_assert(std::is_trivially_copyable_v<schedule_options> && std::is_trivially_copyable_v<schedule_args> &&
                  std::is_trivially_copyable_v<job_filter>,
              "the braced-argument views must stay trivially copyable (GCC 12, see schedule_args)");

namespace detail {
class scheduler_core;

/// True for `T` = schedule_spec / job_query (and references to them): the owning overloads.
template <class T, class Owning>
concept owning = std::same_as<std::remove_cvref_t<T>, Owning>;

template <class>
inline constexpr bool always_false = false;

/// True when `Token` is a plain callable that takes `std::error_code` where the operation
/// completes with `std::exception_ptr` (a common slip, which co_spawn reports in 100+ lines).
template <class Token, class... Args>
inline constexpr bool takes_error_code =
    !std::is_invocable_v<std::decay_t<Token>&, std::exception_ptr, Args...> &&
    std::is_invocable_v<std::decay_t<Token>&, std::error_code, Args...>;
}  // namespace detail

/// The scheduler. Construct it on an executor, register tasks, add schedules, start(), and
/// run the io_context (from one thread or several: all state lives on a strand).
///
/// Every asynchronous member is an initiating function named `async_*` that takes a
/// completion token (asio::use_awaitable, asio::use_future, a callback, ...) and runs on the
/// scheduler's strand; none requires start(). Each completes with `void(std::exception_ptr)`
/// or `void(std::exception_ptr, R)`: the exception says what went wrong (with use_awaitable
/// and use_future it is thrown). Errors of the library derive from punctual::error.
///
/// @code
/// asio::io_context io;
/// punctual::scheduler sched{io.get_executor()};
/// sched.tasks().add("report", [](punctual::job_context& job) -> asio::awaitable<void> { co_return; });
/// asio::co_spawn(io, [&]() -> asio::awaitable<void> {
///   co_await sched.async_add_schedule({.id = "daily-report", .task = "report",
///                                      .trigger = punctual::cron("0 9 * * MON-FRI", "Europe/Berlin")},
///                                     asio::use_awaitable);
/// }, asio::detached);
/// sched.start();
/// io.run();
/// @endcode
///
/// @par Per-Operation Cancellation
/// Unless its comment says otherwise, an operation supports terminal cancellation (as when it
/// is awaited inside `||`): it completes with a std::system_error of operation_aborted. A
/// store change it had already begun is applied wholly or not at all (store.hpp's rule for a
/// cancelled store operation), never in part: read the schedule back to know which.
///
/// Destruction while running begins a stop(cancel, 0) that is not awaited; the loops keep the
/// internal state alive until they end, but the io_context must outlive them. Prefer
/// `co_await sched.async_stop(asio::use_awaitable)` first.
class scheduler {
 public:
  /// The grace async_stop gives running jobs when none is named.
  static constexpr duration default_stop_grace = std::chrono::seconds{30};

  explicit scheduler(asio::any_io_executor ex, scheduler_options options = {});
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;
  ~scheduler();

  /// The tasks this scheduler can run (thread-safe).
  task_registry& tasks() noexcept;
  /// Where events are published (thread-safe).
  event_bus& events() noexcept;
  /// This node's name.
  const std::string& node() const noexcept;
  /// The store in use.
  const std::shared_ptr<store>& job_store() const noexcept;
  /// The scheduler's executor (a strand of the one given at construction).
  asio::any_io_executor get_executor() const;
  /// The clock in use.
  clock& time_source() const noexcept;

  /// Spawns the loops on the executor. Returns at once; idempotent while running. Runs
  /// abandoned by a previous incarnation of this node are recovered first.
  void start();

  /// A snapshot of the scheduler's health; thread-safe, cheap.
  health_report health() const;
  /// Counters and the lateness histogram; thread-safe, cheap.
  scheduler_metrics metrics() const;
  /// The current state; thread-safe.
  scheduler_state state() const;

  /// Stops: no more work is acquired; with stop_mode::wait running jobs may finish within
  /// `grace` (default default_stop_grace, 30 s), then the rest are cancelled (commands:
  /// SIGTERM, SIGKILL after their kill grace); every outcome is recorded and this node's
  /// leases are released. Completes once the scheduler is stopped (at once if it is not
  /// running; a second call waits for the stop already under way, whose mode and grace hold).
  ///
  /// Completion signature: `void(std::exception_ptr)`.
  ///
  /// @par Per-Operation Cancellation
  /// Cancellation (any type) ends only the wait, with a std::system_error of operation_aborted:
  /// the stop itself runs to its end regardless — it never leaves the scheduler `stopping`
  /// with leases held. Await another async_stop to wait for it again.
  template <class CompletionToken>
  auto async_stop(stop_mode mode, duration grace, CompletionToken&& token) {
    return initiate<>(std::forward<CompletionToken>(token),
                      [&](auto& c) { return c.await_stop(mode, grace); });
  }
  template <class CompletionToken>
  auto async_stop(stop_mode mode, CompletionToken&& token) {
    return async_stop(mode, default_stop_grace, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_stop(CompletionToken&& token) {
    return async_stop(stop_mode::wait, default_stop_grace, std::forward<CompletionToken>(token));
  }

  /// Adds a schedule. Its first fire time is the trigger's first after now (and after
  /// options.start). The spec is checked first: invalid_schedule for an empty id, task or
  /// trigger, bad options, or a task that is not registered (see
  /// scheduler_options::allow_unknown_tasks). With an existing id: conflict_policy::error (the
  /// default) fails with schedule_conflict, `replace` replaces it (keeping its history and last
  /// fire), `keep` leaves it.
  ///
  /// Completion signature: `void(std::exception_ptr, bool stored)` — stored is false only for
  /// `keep` with an existing id.
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; a store change already begun is
  /// applied wholly or not at all (read the schedule back to know which).
  template <class CompletionToken>
  auto async_add_schedule(schedule_args args, CompletionToken&& token) {
    return async_add_schedule(args.to_spec(), conflict_policy::error, std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_add_schedule(schedule_args args, conflict_policy on_conflict, CompletionToken&& token) {
    return async_add_schedule(args.to_spec(), on_conflict, std::forward<CompletionToken>(token));
  }
  /// The same with a schedule_spec of your own (moved or copied into the operation).
  template <detail::owning<schedule_spec> Spec, class CompletionToken>
  auto async_add_schedule(Spec&& spec, CompletionToken&& token) {
    return async_add_schedule(std::forward<Spec>(spec), conflict_policy::error,
                              std::forward<CompletionToken>(token));
  }
  template <detail::owning<schedule_spec> Spec, class CompletionToken>
  auto async_add_schedule(Spec&& spec, conflict_policy on_conflict, CompletionToken&& token) {
    return initiate<bool>(std::forward<CompletionToken>(token), [&](auto& c) {
      return c.add(schedule_spec(std::forward<Spec>(spec)), on_conflict);
    });
  }

  /// Adds a batch of schedules in one store transaction, e.g. a crontab of thousands of
  /// entries: as async_add_schedule for each spec in order with `on_conflict`, but all or
  /// nothing, and at the cost of about one add_schedule however many there are. Every spec is
  /// checked first (invalid_schedule names the first bad one; nothing is stored). With
  /// conflict_policy::error (the default) an id that exists already, or twice in the batch,
  /// fails the whole batch with schedule_conflict naming it; with `replace` a later spec of an
  /// id replaces an earlier one, with `keep` the first stays. Emits schedule_added or
  /// schedule_modified for each schedule stored.
  ///
  /// Completion signature: `void(std::exception_ptr, std::vector<add_outcome>)` — for each
  /// spec in order, whether it was added, replaced or kept.
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; the batch is stored wholly or not
  /// at all (read one of its schedules back to know which).
  template <class CompletionToken>
  auto async_add_schedules(std::vector<schedule_spec> specs, conflict_policy on_conflict,
                           CompletionToken&& token) {
    return initiate<std::vector<add_outcome>>(std::forward<CompletionToken>(token), [&](auto& c) {
      return c.add_many(std::move(specs), on_conflict);
    });
  }
  template <class CompletionToken>
  auto async_add_schedules(std::vector<schedule_spec> specs, CompletionToken&& token) {
    return async_add_schedules(std::move(specs), conflict_policy::error,
                               std::forward<CompletionToken>(token));
  }

  /// Replaces an existing schedule's task, trigger, payload and options (its pause state and
  /// history are kept; the next fire is recomputed from now). Fails with schedule_not_found,
  /// or invalid_schedule as async_add_schedule does.
  ///
  /// Completion signature: `void(std::exception_ptr, schedule_record)` — the stored record.
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; a store change already begun is
  /// applied wholly or not at all (read the schedule back to know which).
  template <class CompletionToken>
  auto async_modify_schedule(schedule_args args, CompletionToken&& token) {
    return async_modify_schedule(args.to_spec(), std::forward<CompletionToken>(token));
  }
  /// The same with a schedule_spec of your own.
  template <detail::owning<schedule_spec> Spec, class CompletionToken>
  auto async_modify_schedule(Spec&& spec, CompletionToken&& token) {
    return initiate<schedule_record>(std::forward<CompletionToken>(token), [&](auto& c) {
      return c.modify(schedule_spec(std::forward<Spec>(spec)));
    });
  }

  /// Removes a schedule: its running jobs finish, its pending ones are cancelled, its history
  /// stays. Fails with schedule_not_found for an unknown id.
  ///
  /// Completion signature: `void(std::exception_ptr)`.
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; a store change already begun is
  /// applied wholly or not at all (read the schedule back to know which).
  template <class CompletionToken>
  auto async_remove_schedule(std::string id, CompletionToken&& token) {
    return initiate<>(std::forward<CompletionToken>(token), [&](auto& c) { return c.remove(std::move(id)); });
  }

  /// Pauses a schedule: no new runs until it is resumed (runs already created still run).
  /// Fails with schedule_not_found for an unknown id.
  ///
  /// Completion signature: `void(std::exception_ptr)`.
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; a store change already begun is
  /// applied wholly or not at all (read the schedule back to know which).
  template <class CompletionToken>
  auto async_pause_schedule(std::string id, CompletionToken&& token) {
    return initiate<>(std::forward<CompletionToken>(token), [&](auto& c) { return c.pause(std::move(id)); });
  }

  /// Resumes a paused schedule. `from` (default resume_from::missed) says whether fire times
  /// missed while paused are caught up per the schedule's coalesce/misfire options, or skipped
  /// (resume_from::now). Fails with schedule_not_found for an unknown id.
  ///
  /// Completion signature: `void(std::exception_ptr)`.
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; a store change already begun is
  /// applied wholly or not at all (read the schedule back to know which).
  template <class CompletionToken>
  auto async_resume_schedule(std::string id, resume_from from, CompletionToken&& token) {
    return initiate<>(std::forward<CompletionToken>(token),
                      [&](auto& c) { return c.resume(std::move(id), from); });
  }
  template <class CompletionToken>
  auto async_resume_schedule(std::string id, CompletionToken&& token) {
    return async_resume_schedule(std::move(id), resume_from::missed, std::forward<CompletionToken>(token));
  }

  /// Creates a run of the schedule now (fire time = now), outside its trigger. Fails with
  /// schedule_not_found for an unknown id.
  ///
  /// Completion signature: `void(std::exception_ptr, std::int64_t job_id)`.
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; a store change already begun is
  /// applied wholly or not at all (read the schedule back to know which).
  template <class CompletionToken>
  auto async_run_now(std::string id, CompletionToken&& token) {
    return initiate<std::int64_t>(std::forward<CompletionToken>(token),
                                  [&](auto& c) { return c.run_now(std::move(id)); });
  }

  /// Cancels a run this scheduler is running now, as overlap=replace does (commands: SIGTERM,
  /// then SIGKILL after their kill grace); it is recorded as cancelled with "cancelled by
  /// request". Completes with false when no run with that id is running on this node (unknown,
  /// not started yet, already ended, or run by another node).
  ///
  /// Completion signature: `void(std::exception_ptr, bool cancelled)`.
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; the run is cancelled or not
  /// (read the job back to know which).
  template <class CompletionToken>
  auto async_cancel_job(std::int64_t job_id, CompletionToken&& token) {
    return initiate<bool>(std::forward<CompletionToken>(token),
                          [&](auto& c) { return c.cancel_job(job_id); });
  }

  /// Reads one schedule.
  ///
  /// Completion signature: `void(std::exception_ptr, std::optional<schedule_record>)` —
  /// nullopt for an unknown id (a query, not an error).
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; nothing is changed.
  template <class CompletionToken>
  auto async_get_schedule(std::string id, CompletionToken&& token) {
    return initiate<std::optional<schedule_record>>(std::forward<CompletionToken>(token), [&](auto& c) {
      return store_of(c).get_schedule(std::move(id));
    });
  }

  /// Reads every schedule, ordered by id.
  ///
  /// Completion signature: `void(std::exception_ptr, std::vector<schedule_record>)`.
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; nothing is changed.
  template <class CompletionToken>
  auto async_list_schedules(CompletionToken&& token) {
    return initiate<std::vector<schedule_record>>(std::forward<CompletionToken>(token),
                                                  [&](auto& c) { return store_of(c).list_schedules(); });
  }

  /// Reads the run history: jobs matching `q`, newest fire time first.
  ///
  /// Completion signature: `void(std::exception_ptr, std::vector<job_record>)`.
  ///
  /// @par Per-Operation Cancellation
  /// Terminal cancellation: completes with operation_aborted; nothing is changed.
  template <class CompletionToken>
  auto async_list_jobs(job_filter f, CompletionToken&& token) {
    return async_list_jobs(f.to_query(), std::forward<CompletionToken>(token));
  }
  /// The same with a job_query of your own.
  template <detail::owning<job_query> Query, class CompletionToken>
  auto async_list_jobs(Query&& q, CompletionToken&& token) {
    return initiate<std::vector<job_record>>(std::forward<CompletionToken>(token), [&](auto& c) {
      return store_of(c).list_jobs(job_query(std::forward<Query>(q)));
    });
  }

 private:
  static store& store_of(detail::scheduler_core& c);
  asio::any_io_executor strand() const;
  detail::scheduler_core& core() const noexcept { return *core_; }

  // Starts `make(core)` (an awaitable of R, or of void when no R is given) on the strand and
  // completes `token` with void(std::exception_ptr[, R]). A callable taking std::error_code
  // gets a short compile-time error instead of co_spawn's long one.
  template <class... R, class CompletionToken, class MakeOp>
  auto initiate(CompletionToken&& token, MakeOp&& make) {
    if constexpr (detail::takes_error_code<CompletionToken, R...>) {
      static_assert(detail::always_false<CompletionToken>,
                    "punctual::scheduler: this operation completes with void(std::exception_ptr, ...), not "
                    "void(std::error_code, ...). Take a std::exception_ptr (rethrow it to read the error), "
                    "or use asio::use_awaitable / asio::use_future.");
    } else {
      return asio::co_spawn(strand(), make(core()), std::forward<CompletionToken>(token));
    }
  }

  std::shared_ptr<detail::scheduler_core> core_;
};

PUNCTUAL_END_NAMESPACE

#include "punctual/impl/scheduler.hpp"
