/// @file job.hpp
/// Jobs: one run of a schedule at one fire time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "punctual/config.hpp"
#include "punctual/error.hpp"
#include "punctual/schedule.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// A job's life: pending -> running -> one final state. A retried job goes back to pending
/// with attempt + 1 (one job per (schedule, fire time), however many attempts).
enum class job_state {
  pending,    ///< created, waiting for run_at
  running,    ///< started by `node`, which holds a lease on it
  succeeded,  ///< the task completed (exit status 0 for commands)
  failed,     ///< the task threw / exited non-zero / was killed by a signal / could not start
  timed_out,  ///< still running after the schedule's timeout
  cancelled,  ///< stopped by async_stop, overlap=replace or an explicit cancel
  missed,     ///< later than misfire_grace: recorded, not run
  skipped,    ///< max_running reached with overlap=skip: recorded, not run
  abandoned,  ///< its node died while it ran (found at restart or by lease expiry)
};

/// True for the states a job never leaves.
constexpr bool is_final(job_state s) noexcept { return s != job_state::pending && s != job_state::running; }

/// Lower-case name ("timed_out").
inline std::string_view to_string(job_state s) {
  switch (s) {
    case job_state::pending: return "pending";
    case job_state::running: return "running";
    case job_state::succeeded: return "succeeded";
    case job_state::failed: return "failed";
    case job_state::timed_out: return "timed_out";
    case job_state::cancelled: return "cancelled";
    case job_state::missed: return "missed";
    case job_state::skipped: return "skipped";
    case job_state::abandoned: return "abandoned";
  }
  return "?";
}

/// Inverse of to_string(job_state); throws parse_error.
inline job_state parse_job_state(std::string_view s) {
  for (int i = 0; i <= static_cast<int>(job_state::abandoned); ++i)
    if (to_string(static_cast<job_state>(i)) == s) return static_cast<job_state>(i);
  throw parse_error("job state", std::string(s), 0, "unknown job state");
}

/// The OS identity of a command job's process group, recorded while it runs so that a later
/// incarnation can kill it if it survived (pid reuse is guarded by the start time).
struct process_identity {
  std::int64_t pid = 0;
  std::int64_t pgid = 0;
  std::uint64_t start_time = 0;  ///< /proc/<pid>/stat starttime (clock ticks since boot)
  friend bool operator==(const process_identity&, const process_identity&) = default;
};

/// One run, as stored.
struct job_record {
  std::int64_t id = 0;  ///< assigned by the store when the job is inserted
  std::string schedule_id;
  std::string task;
  std::string payload;
  time_point fire_time{};  ///< the trigger's fire time (unique together with schedule_id)
  time_point run_at{};     ///< when it may start: fire time + jitter, or a retry's time
  std::uint32_t attempt = 1;
  job_state state = job_state::pending;
  std::string node;  ///< the node running it
  time_point lease_until{};
  std::optional<time_point> started;
  std::optional<time_point> finished;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string error;         ///< short error text
  std::string output;        ///< output tail (command jobs) or what the task reported
  process_identity process;  ///< command jobs while running
  /// The fencing token of the job's current lease; 0 means "not fenced". A store that fences
  /// (the PostgreSQL store) sets a new token on every acquire_jobs and recover_abandoned, and
  /// update_jobs writes a record whose token is not 0 only while the stored token is the same,
  /// so a node whose job was recovered and taken again cannot write over it. The memory and
  /// SQLite stores leave it 0 and ignore it. Callers pass records back as they got them.
  std::int64_t lease_token = 0;
  /// The options of the job's schedule; not persisted. Every store's acquire_jobs sets it on
  /// each job it returns: the schedule's options as they are then, the defaults once the
  /// schedule is gone (see store::acquire_jobs). Other operations may return it null, and a
  /// store ignores it in the jobs it is given.
  std::shared_ptr<const schedule_options> options;
};

PUNCTUAL_END_NAMESPACE
