/// @file store/store.hpp
/// The store interface: where schedules, their progress and the job history live.
///
/// This header states the whole contract a store keeps; tests/unit/store_conformance.hpp is
/// its executable form, and every store's tests run it.
///
/// **Operations.** Every operation is an awaitable, so a store may do real I/O without blocking
/// the scheduler's timers, and most work in batches. Each is atomic: as every node sees it, it
/// happens entirely or not at all (one transaction). Nodes do not coordinate with each other:
/// the store's atomic acquires and leases are all that keeps two nodes from taking the same
/// schedule or job.
///
/// **Failures and retries.** A store may throw any std::exception from any operation
/// (connection lost, disk full, locked): the scheduler's guard catches it, reports it, backs
/// off and calls the operation again with the same arguments. A call that failed may still have
/// been applied (the store committed, then the reply was lost), so every operation must be safe
/// to call again: all-or-nothing, the writes of the scheduler's loops idempotent (each says
/// so), and before it retries acquire_due_schedules or acquire_jobs the scheduler calls
/// release_leases or release_jobs, which make whatever a lost reply had leased acquirable
/// again.
///
/// **Cancellation (store_timeout).** When may_block() is true the scheduler races each call
/// against a store_timeout timer with Asio's `||`. If the timer wins, the coroutine running the
/// call gets a cancellation (cancellation_type::all, so terminal too); `||` then waits for that
/// coroutine to complete, drops its result or exception, and the guard retries as after a
/// failure. Therefore:
/// - Wherever an operation waits (I/O, a lock, a queue, another thread) it must honour terminal
///   cancellation promptly, completing with an exception (by convention asio::system_error with
///   asio::error::operation_aborted). An operation that ignores it defeats the timeout: the
///   scheduler's loop stays stuck in the call as long as the call takes.
/// - A cancelled operation is either not applied at all or applied fully, never in part. The
///   store need not say which: completing normally because it had committed just before it saw
///   the cancellation is fine (the result is dropped, and the retry copes as with a lost reply).
/// - Work that can outlive the awaiting coroutine (on a worker thread, on a database server)
///   owns copies of what it reads. Reference arguments (the vectors of release_schedules and
///   update_jobs) are the caller's reused buffers, valid only until the call completes, and the
///   coroutine may also be destroyed without being resumed (its io_context shut down).
///
/// The SQLite store shows one way: each operation runs as one transaction on the store's
/// worker thread, from copies of its arguments; a cancellation sets a flag the worker checks.
/// An operation not started yet fails as soon as the worker comes to it, without touching the
/// database; in one under way, the statement running is interrupted (progress handler) or
/// stops waiting for a lock (busy handler), the operation fails with operation_aborted and its
/// transaction rolls back; one that committed before the flag was set completes normally. The
/// memory store never suspends, so it is never cancelled part way (and says so with
/// may_block()).
///
/// **Clocks.** Times come from the caller's clock: the `now`, `lease_until` and `until`
/// arguments, and the times in the records. Due times (next_fire, run_at) are judged against
/// the caller's `now`, so a node whose clock is S ahead fires schedules and starts jobs up to S
/// early. Leases are judged the same way by default: a store compares the lease_until one node
/// wrote with the `now` another node passes. With clocks S apart, a node whose clock is ahead
/// sees the other's leases expire S early: it takes over its schedules, and recovers its
/// running jobs as abandoned (running them twice with on_abandoned = rerun). The scheduler
/// renews its leases every lease/3 to now + lease, so its leases stay live for the other nodes
/// as long as S plus the time an extend_leases call takes (up to store_timeout, and retries)
/// stays below lease - lease/3: keep the skew well below that (NTP keeps it at milliseconds).
///
/// A store MAY instead judge leases by a clock of its own, the same for every node (a database
/// server's now()), consistently in every operation that judges them: it then takes a lease's
/// length from the call (lease_until - now, until - now) and its start and expiry from its own
/// clock, so node clocks no longer matter for leases. next_due still reports a lease's end on
/// the callers' scale, no earlier than the lease_until its holder passed; a node whose clock is
/// ahead of the store's may then find nothing to acquire at that time and ask again until the
/// lease has expired by the store's clock, so clocks should still be kept close. Such a store
/// runs the conformance suite with its clock replaced by the callers' (the lease sections pass
/// times far from the real clock).
///
/// **Fencing (optional).** A store may also fence job writes with job_record::lease_token: it
/// sets a new, never reused token on each job acquire_jobs takes and on each job
/// recover_abandoned writes, returns it in the records, and update_jobs then writes a record
/// whose token is not 0 only while the stored token equals it (besides state running and node
/// = `node`). Even a node whose clock or lease renewal went wrong, whose job was recovered and
/// taken again, cannot overwrite the new attempt. A store that does not fence leaves tokens 0
/// and ignores them (the memory and SQLite stores do).
///
/// **Thread safety.** A store may be used by several schedulers (nodes) at once, from different
/// threads; implementations synchronise internally.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>

#include "punctual/config.hpp"
#include "punctual/job.hpp"
#include "punctual/schedule.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// How release_schedules() moves one acquired schedule forward.
struct schedule_release {
  std::string id;
  /// The next fire time not yet turned into a run; nullopt when the trigger is exhausted.
  std::optional<time_point> next_fire;
  /// The latest fire time handled (run created or recorded missed); nullopt leaves it as is.
  std::optional<time_point> last_fire;
};

/// What add_schedules() did with one schedule of its batch.
enum class add_outcome : std::uint8_t {
  added,     ///< its id was new: stored
  replaced,  ///< its id existed and conflict_policy::replace replaced the definition
  kept,      ///< its id existed and conflict_policy::keep left it as it was
};

/// The outcome's name: "added", "replaced" or "kept".
inline const char* to_string(add_outcome o) noexcept {
  return o == add_outcome::added ? "added" : o == add_outcome::replaced ? "replaced" : "kept";
}

/// When the store next has something to do.
struct due_times {
  /// The earliest time at which acquire_due_schedules can take a schedule: over the unpaused,
  /// unquarantined schedules with a next_fire, next_fire for a free one, and for a leased one
  /// the later of next_fire and the end of its lease (a time after lease_until, at most 1 s
  /// after). Nullopt when there is none.
  std::optional<time_point> schedule;
  /// The earliest run_at of a pending job (running and final jobs do not count).
  std::optional<time_point> job;
};

/// A history query.
struct job_query {
  std::optional<std::string> schedule_id{};  ///< only this schedule's jobs
  std::optional<job_state> state{};          ///< only jobs in this state
  std::size_t limit = 100;                   ///< at most this many (0: none), newest fire time first
};

/// What purge_jobs keeps. Jobs that are not final are never purged; an empty retention keeps
/// everything. A final job is dropped when either rule drops it.
struct retention {
  /// Keep at most this many final jobs per schedule, the newest by fire time (0 keeps none).
  /// Counted per schedule id, the history of removed schedules included.
  std::optional<std::size_t> keep_last{};
  /// Drop final jobs with finished + max_age < now (one that finished exactly max_age ago stays).
  std::optional<duration> max_age{};
};

/// The transition every store applies in recover_abandoned(): `job` (running, its node gone)
/// becomes abandoned at `now`, or — with `rerun` — pending again with attempt + 1 and
/// run_at = now. The error text records the abandonment either way.
inline void mark_abandoned(job_record& job, time_point now, bool rerun) {
  job.error =
      "abandoned: node " + job.node + " stopped while attempt " + std::to_string(job.attempt) + " ran";
  if (rerun) {
    job.state = job_state::pending;
    job.attempt += 1;
    job.run_at = now;
    job.node.clear();
    job.started.reset();
    job.finished.reset();
  } else {
    job.state = job_state::abandoned;
    job.finished = now;
  }
}

/// The store interface. The file comment holds the rules every operation keeps (atomicity,
/// retries, cancellation, clocks, threads); each operation's comment says what it does.
/// tests/unit/store_conformance.hpp checks all of it against a store.
///
/// Common terms: a schedule is *due* at `now` when it has a next_fire <= now and is neither
/// paused nor quarantined. A lease (of a schedule, or of a running job) is *live* up to and
/// including its lease_until and *expired* once lease_until < now. A job's (schedule_id,
/// fire_time) is unique among the jobs stored: "exists already" means still stored (a purged
/// job's fire time may be inserted again). Job ids are positive, assigned by the store, never
/// reused while the job is stored.
class store {
 public:
  virtual ~store() = default;

  // ---- schedules ---------------------------------------------------------------------

  /// Stores `s` under id s.spec.id: spec (with spec.paused), next_fire (nullopt: exhausted, kept
  /// but never due) and last_fire, free of any lease; lease_owner, lease_until, quarantine and
  /// trigger_text of `s` are ignored (the stored trigger_text is spec.trigger.to_string()).
  /// When the id exists already: `error` throws schedule_conflict (with that id) and changes
  /// nothing; `keep` changes nothing and returns false; `replace` replaces the definition
  /// (task, trigger, payload, options) and next_fire, lifts a quarantine, and keeps last_fire,
  /// the pause state (the stored one wins over s.spec.paused), the lease and the history.
  /// Returns true when `s` was added or replaced an existing schedule.
  virtual asio::awaitable<bool> add_schedule(schedule_record s, conflict_policy on_conflict) = 0;
  /// Stores a batch of schedules in one transaction: the same as add_schedule for each of
  /// `batch` in order, with `on_conflict` for every one, but all or nothing and without a
  /// commit (a disk sync) per schedule — what loading a crontab of thousands of entries needs.
  /// An id that exists already, in the store or earlier in the batch, is handled by
  /// `on_conflict` as add_schedule does (`replace`: a later entry replaces an earlier one;
  /// `keep`: the first stays). With conflict_policy::error such an id throws schedule_conflict
  /// naming it (the first one met in batch order) and stores nothing of the batch. Any other
  /// failure stores nothing either, so a retried call starts from the same store. Returns, for
  /// each schedule of the batch in order, what was done with it. Notifies subscribers (once is
  /// enough) when it stored anything. An empty batch changes nothing.
  virtual asio::awaitable<std::vector<add_outcome>> add_schedules(std::vector<schedule_record> batch,
                                                                  conflict_policy on_conflict) = 0;
  /// Removes a schedule. Its pending jobs become cancelled; its running jobs stay running and
  /// their node can still finish them (update_jobs); its history stays, listed and purged as
  /// before, and still guards (schedule_id, fire_time) uniqueness, also for a schedule added
  /// later under the same id (which starts with no last_fire). False if there is no such
  /// schedule.
  virtual asio::awaitable<bool> remove_schedule(std::string id) = 0;
  /// One schedule (with its lease and quarantine), or nullopt.
  virtual asio::awaitable<std::optional<schedule_record>> get_schedule(std::string id) = 0;
  /// All schedules, ordered by id.
  virtual asio::awaitable<std::vector<schedule_record>> list_schedules() = 0;
  /// Reads a schedule, applies `change` to it and writes it back, atomically, leaving its lease
  /// as it is. `change` may edit spec (an edited id is ignored), paused, next_fire and
  /// last_fire. It is called once per call, on any thread (the store's worker, say), possibly
  /// with the store's lock held: it must not block nor call into the store. A retried call
  /// applies it again, so it should set values rather than step them. Returns the record as
  /// stored afterwards, or nullopt (without calling `change`) if there is no such schedule.
  virtual asio::awaitable<std::optional<schedule_record>> modify_schedule(
      std::string id, std::function<void(schedule_record&)> change) = 0;

  // ---- the schedule loop -------------------------------------------------------------

  /// Leases up to `limit` schedules that are due at `now` and either free, already leased to
  /// `node` (a retried acquire whose reply was lost may take them again at once) or leased with
  /// an expired lease, to `node` until `lease_until`, and returns them as stored, the new lease
  /// included; earliest next_fire first, expired leases and free schedules merged in that
  /// order. Acquiring does not move next_fire. A stored row that cannot be used (its trigger
  /// or options text no longer parses) is quarantined by this call and returned once with
  /// `quarantine` set and no lease; it is not due again until add_schedule (replace) or
  /// modify_schedule stores a definition that parses. Two nodes never both hold a live lease
  /// on one schedule.
  virtual asio::awaitable<std::vector<schedule_record>> acquire_due_schedules(std::string node,
                                                                              time_point now,
                                                                              time_point lease_until,
                                                                              std::size_t limit) = 0;
  /// In one transaction: each release of a schedule still leased by `node` sets its next_fire
  /// (nullopt: exhausted) and, when given, its last_fire, and frees its lease; releases of
  /// schedules `node` does not hold (free, leased by another node, removed) are ignored. Then
  /// inserts those of `jobs` whose schedule is among the releases applied, as given (state
  /// included: pending ones become runnable, final ones such as missed or skipped are only
  /// recorded), skipping a job whose (schedule_id, fire_time) exists already, in the store or
  /// earlier in `jobs`. Other jobs are ignored. Returns the number of jobs inserted. Safe to
  /// retry: a repeated call inserts nothing new. Empty batches change nothing.
  virtual asio::awaitable<std::size_t> release_schedules(std::string node,
                                                         const std::vector<schedule_release>& releases,
                                                         const std::vector<job_record>& jobs) = 0;

  // ---- the job loop ------------------------------------------------------------------

  /// Inserts one job as given (a run now, a rerun), whether or not its schedule exists. Returns
  /// its new id, or 0 (inserting nothing) if its (schedule_id, fire_time) exists already — as
  /// it does for a call retried after its reply was lost.
  virtual asio::awaitable<std::int64_t> add_job(job_record job) = 0;
  /// Leases up to `limit` pending jobs with run_at <= now, earliest run_at first (then lowest
  /// id), to `node` until `lease_until`: each becomes running with node = `node` and
  /// started = now, its other fields as stored. Jobs whose schedule is gone are taken too.
  /// Every returned job has `options` set to its schedule's options at the time of this call —
  /// not those it had when it was created — or to default options when the schedule is gone
  /// (or its stored options cannot be read): the job loop runs it with them, looking nothing
  /// up. Jobs of one schedule may share one options object.
  virtual asio::awaitable<std::vector<job_record>> acquire_jobs(std::string node, time_point now,
                                                                time_point lease_until,
                                                                std::size_t limit) = 0;
  /// Writes the mutable fields (state, run_at, attempt, started, finished, exit_code, signal,
  /// error, output, process) of the jobs `node` holds (state running, node = `node`); every
  /// other job (pending, final, held by another node, unknown id) is ignored, so a final job is
  /// never rewritten and a node's late write after recovery changes nothing. A job written
  /// back as running stays held (e.g. to record its process identity); one written back as
  /// pending is released (node cleared) and runnable again at its new run_at, earlier or later;
  /// its old lease no longer counts. Safe to retry.
  virtual asio::awaitable<void> update_jobs(std::string node, const std::vector<job_record>& jobs) = 0;

  /// Puts back to pending (node and started cleared, attempt unchanged) every job running on
  /// `node` whose id is not in `keep`. The scheduler calls it before retrying a failed
  /// acquire_jobs, whose reply may have been lost after the store committed: the jobs it took
  /// but never received become acquirable again instead of staying "running" forever. Returns
  /// how many. Safe to retry.
  virtual asio::awaitable<std::size_t> release_jobs(std::string node, std::vector<std::int64_t> keep) = 0;

  // ---- leases and recovery -----------------------------------------------------------

  /// Sets lease_until of every lease `node` holds (its schedules and running jobs) to `until`;
  /// other nodes' leases are untouched.
  virtual asio::awaitable<void> extend_leases(std::string node, time_point until) = 0;
  /// Frees every schedule lease `node` holds (next_fire unchanged), for a clean shutdown and
  /// before a retried acquire_due_schedules. Its running jobs keep their leases.
  virtual asio::awaitable<void> release_leases(std::string node) = 0;
  /// Finds the running jobs whose lease has expired at `now` (lease_until < now) and — when
  /// `node` is given — every running job of that node, live lease or not (a previous
  /// incarnation's: call it at start, before this incarnation runs anything). Each goes through
  /// mark_abandoned() in one transaction: with its schedule's on_abandoned = `rerun`, back to
  /// pending (the same job: attempt + 1, run_at = now, node cleared); otherwise, or when its
  /// schedule is gone, abandoned (finished = now). Each is recovered once. Returns them as
  /// written, process identity included so the caller can kill a surviving process group
  /// (`options` may be null).
  virtual asio::awaitable<std::vector<job_record>> recover_abandoned(std::optional<std::string> node,
                                                                     time_point now) = 0;
  /// When something is next due (see due_times).
  virtual asio::awaitable<due_times> next_due() = 0;

  // ---- history -----------------------------------------------------------------------

  /// Jobs matching `q` (any state), newest fire time first, then highest id; `options` may be
  /// null.
  virtual asio::awaitable<std::vector<job_record>> list_jobs(job_query q) = 0;
  /// Deletes the final jobs `r` drops (of live and removed schedules). Returns how many.
  virtual asio::awaitable<std::size_t> purge_jobs(retention r, time_point now) = 0;

  // ---- properties --------------------------------------------------------------------

  /// False promises that every operation completes without suspending: no I/O, no waiting for
  /// another thread beyond a short lock. The scheduler then awaits each call directly instead
  /// of racing it against a store_timeout timer, which could never fire first anyway (the call
  /// does not yield until it is done); that saves coroutine frames, a parallel group and a
  /// timer on every call of the scheduler's hot path. Only the memory store says false; stores
  /// that do I/O, and wrappers (which cannot know), keep the default.
  virtual bool may_block() const noexcept { return true; }

  // ---- change notification -----------------------------------------------------------

  /// Registers `on_change`, called when schedules or pending jobs change in a way that may
  /// make something due sooner, so that a sleeping scheduler looks again. At least these
  /// notify (more is allowed): add_schedule (replace included), add_schedules that stored
  /// something, modify_schedule, add_job that
  /// inserted, release_schedules that released something, update_jobs that put a job back to
  /// pending, release_jobs and release_leases that released something, recover_abandoned that
  /// put a job back to pending; and changes made by other processes, as far as the store can
  /// tell (within its poll interval, say). A notification may come on any thread, during or
  /// soon after the operation. `on_change` must be quick, must not throw, and must neither
  /// call into the store nor wait for it. Returns a handle for unsubscribe_changes(), distinct
  /// from every other one. change_subscribers (store/change_subscribers.hpp) keeps this
  /// bookkeeping for a store.
  virtual std::uint64_t subscribe_changes(std::function<void()> on_change) = 0;
  /// Removes a subscription. Once it returns, its callback is not running and is never called
  /// again, so the subscriber may destroy what the callback uses: it waits for a call in
  /// progress on another thread (do not call it holding a lock the callback takes). Called from
  /// inside that callback, it returns at once; the call runs to its end and no further one
  /// starts. Unknown handles are ignored.
  virtual void unsubscribe_changes(std::uint64_t handle) = 0;
};

PUNCTUAL_END_NAMESPACE
