/// @file store/store.hpp
/// The store interface: where schedules, their progress and the job history live.
///
/// Every operation is an awaitable so a store may do real I/O without blocking the
/// scheduler's timers. Operations work in batches. A store may throw any std::exception from
/// any operation (connection lost, disk full, locked): the scheduler's guard catches it,
/// reports it, backs off and retries — so every operation must be safe to retry after a
/// failure (idempotent or all-or-nothing).
///
/// Thread safety: a store may be used by several schedulers (nodes) at once, from different
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

/// When the store next has something to do.
struct due_times {
  /// Earliest next_fire of an unpaused, unquarantined schedule.
  std::optional<time_point> schedule;
  /// Earliest run_at of a pending job.
  std::optional<time_point> job;
};

/// A history query.
struct job_query {
  std::optional<std::string> schedule_id{};  ///< only this schedule's jobs
  std::optional<job_state> state{};          ///< only jobs in this state
  std::size_t limit = 100;                   ///< at most this many, newest fire time first
};

/// What purge_jobs keeps. Jobs that are not final are never purged.
struct retention {
  /// Keep at most this many final jobs per schedule (the newest by fire time).
  std::optional<std::size_t> keep_last{};
  /// Drop final jobs that finished longer ago than this.
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

/// The store interface. See the file comment for the error and thread-safety contract, and
/// tests/unit/store_conformance.hpp for the executable specification every store passes.
class store {
 public:
  virtual ~store() = default;

  // ---- schedules ---------------------------------------------------------------------

  /// Stores `s` (id = s.spec.id). With an existing id: `error` throws schedule_conflict,
  /// `replace` replaces spec and next_fire but keeps last_fire and history, `keep` changes
  /// nothing. Returns true when the stored schedule is now `s`.
  virtual asio::awaitable<bool> add_schedule(schedule_record s, conflict_policy on_conflict) = 0;
  /// Removes a schedule; its pending jobs become cancelled; its history stays. False if absent.
  virtual asio::awaitable<bool> remove_schedule(std::string id) = 0;
  /// One schedule, or nullopt.
  virtual asio::awaitable<std::optional<schedule_record>> get_schedule(std::string id) = 0;
  /// All schedules, ordered by id.
  virtual asio::awaitable<std::vector<schedule_record>> list_schedules() = 0;
  /// Reads a schedule, applies `change` to it and writes it back, atomically. `change` may
  /// edit spec (not the id), paused, next_fire and last_fire; it must not block. Returns the
  /// new record, or nullopt if there is no such schedule.
  virtual asio::awaitable<std::optional<schedule_record>> modify_schedule(
      std::string id, std::function<void(schedule_record&)> change) = 0;

  // ---- the schedule loop -------------------------------------------------------------

  /// Leases up to `limit` schedules that are due (next_fire <= now), not paused, not
  /// quarantined and not leased by another node (or whose lease has expired), to `node`
  /// until `lease_until`; earliest next_fire first. A stored row that cannot be used is
  /// quarantined by this call and returned once with `quarantine` set (and not leased).
  virtual asio::awaitable<std::vector<schedule_record>> acquire_due_schedules(std::string node,
                                                                              time_point now,
                                                                              time_point lease_until,
                                                                              std::size_t limit) = 0;
  /// In one transaction: moves each released schedule still leased by `node` forward and
  /// frees its lease, and inserts `jobs` — except a job whose (schedule_id, fire_time) exists
  /// already, which is ignored, and a job of a release the node no longer holds. Returns the
  /// number of jobs inserted. Safe to retry.
  virtual asio::awaitable<std::size_t> release_schedules(std::string node,
                                                         const std::vector<schedule_release>& releases,
                                                         const std::vector<job_record>& jobs) = 0;

  // ---- the job loop ------------------------------------------------------------------

  /// Inserts one job (run now, a rerun). Returns its id, or 0 if (schedule_id, fire_time)
  /// exists already.
  virtual asio::awaitable<std::int64_t> add_job(job_record job) = 0;
  /// Leases up to `limit` pending jobs with run_at <= now to `node` until `lease_until` and
  /// marks them running (started = now); earliest run_at first.
  virtual asio::awaitable<std::vector<job_record>> acquire_jobs(std::string node, time_point now,
                                                                time_point lease_until,
                                                                std::size_t limit) = 0;
  /// Writes the mutable fields (state, run_at, attempt, started, finished, exit_code, signal,
  /// error, output, process) of jobs that `node` holds (state running, node = `node`); other
  /// jobs are ignored. A job written back as pending is released (node cleared). Safe to retry.
  virtual asio::awaitable<void> update_jobs(std::string node, const std::vector<job_record>& jobs) = 0;

  /// Puts back to pending (node cleared, started cleared) every job marked running by `node`
  /// whose id is not in `keep`. The scheduler calls it before retrying a failed acquire_jobs,
  /// whose reply may have been lost after the store committed: the jobs it took but never
  /// received become acquirable again instead of staying "running" forever. Returns how many.
  virtual asio::awaitable<std::size_t> release_jobs(std::string node, std::vector<std::int64_t> keep) = 0;

  // ---- leases and recovery -----------------------------------------------------------

  /// Extends every lease `node` holds (schedules and running jobs) to `until`.
  virtual asio::awaitable<void> extend_leases(std::string node, time_point until) = 0;
  /// Frees every schedule lease `node` holds (clean shutdown).
  virtual asio::awaitable<void> release_leases(std::string node) = 0;
  /// Finds the running jobs whose lease expired before `now` and — when `node` is given —
  /// every running job of that node (a previous incarnation's: call it at start, before this
  /// incarnation runs anything). Each is marked `abandoned` (finished = now, error says which
  /// node); then, if its schedule's on_abandoned is `rerun`, it goes back to pending in the same
  /// transaction with attempt + 1 and run_at = now (the error text keeps the abandonment).
  /// Returns them as written (state abandoned or pending), process identity included so the
  /// caller can kill a surviving process group.
  virtual asio::awaitable<std::vector<job_record>> recover_abandoned(std::optional<std::string> node,
                                                                     time_point now) = 0;
  /// When something is next due.
  virtual asio::awaitable<due_times> next_due() = 0;

  // ---- history -----------------------------------------------------------------------

  /// Jobs matching `q`, newest fire time first.
  virtual asio::awaitable<std::vector<job_record>> list_jobs(job_query q) = 0;
  /// Deletes final jobs beyond `r`. Returns how many were deleted.
  virtual asio::awaitable<std::size_t> purge_jobs(retention r, time_point now) = 0;

  // ---- properties --------------------------------------------------------------------

  /// False only for stores whose operations always complete promptly without I/O (the memory
  /// store): the scheduler then skips arming a store_timeout timer around each call. Stores
  /// that do I/O — and wrappers, which cannot know — keep the default.
  virtual bool may_block() const noexcept { return true; }

  // ---- change notification -----------------------------------------------------------

  /// Registers `on_change`, called (on any thread, possibly while the store is inside an
  /// operation: do not call back into the store from it) when schedules or pending jobs
  /// change in a way that may make something due sooner — including changes made by other
  /// processes, as far as the store can tell. Returns a handle for unsubscribe_changes().
  virtual std::uint64_t subscribe_changes(std::function<void()> on_change) = 0;
  virtual void unsubscribe_changes(std::uint64_t handle) = 0;
};

PUNCTUAL_END_NAMESPACE
