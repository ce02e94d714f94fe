/// @file schedule.hpp
/// Schedules: a task bound to a trigger, with the options that say what happens when fires
/// are late, overlap or fail.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "punctual/config.hpp"
#include "punctual/error.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/trigger.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// Which of several fire times that are due at once (after downtime, a pause, a store outage)
/// become runs.
enum class coalesce_policy {
  latest,    ///< one run, for the latest due fire time (default); the others are dropped
  earliest,  ///< one run, for the earliest due fire time; the others are dropped
  all,       ///< one run per due fire time, at most schedule_options::max_catch_up (the latest
             ///< ones); the rest dropped. Catch-up runs of one schedule that become due together
             ///< run one after another within max_running: they queue, whatever the overlap policy.
             ///< (The rule: a run that was already due when a running run of the same schedule
             ///< started queues behind it; overlap applies to runs that became due later.)
};

/// What happens when a run is due while max_running runs of the same schedule are running.
enum class overlap_policy {
  skip,     ///< the new run is recorded as skipped (default)
  queue,    ///< the new run waits for a free slot
  replace,  ///< the oldest running run is cancelled and the new one starts
};

/// What to do with a run found still "running" after its node died (crash, SIGKILL).
enum class abandoned_policy {
  record,  ///< mark it abandoned and move on (default)
  rerun,   ///< mark it abandoned and run the same fire time again (attempt + 1)
};

/// What async_add_schedule (and store::add_schedule) do when a schedule with the same id exists.
enum class conflict_policy {
  error,    ///< fail with schedule_conflict (default)
  replace,  ///< replace definition and options; keep history, last fire and pause state
  keep,     ///< keep the stored schedule unchanged
};

/// Where async_resume_schedule continues from.
enum class resume_from {
  missed,  ///< fire times missed while paused are due now, subject to coalesce/misfire (default)
  now,     ///< skip what was missed: the next fire time after now
};

/// Per-schedule options. The defaults are the documented defaults (README "Schedule options").
struct schedule_options {
  /// A run that starts later than fire time + misfire_grace is recorded as `missed` instead of
  /// running. nullopt (default): late runs always run, however late.
  std::optional<duration> misfire_grace{};
  /// See coalesce_policy.
  coalesce_policy coalesce = coalesce_policy::latest;
  /// With coalesce_policy::all, the most catch-up runs created at once; the rest are dropped
  /// and reported in a `fires_dropped` event. Catch-up never enumerates more than this many
  /// fire times (plus a bounded search for the latest one).
  std::uint32_t max_catch_up = 100;
  /// Most runs of this schedule running at once (>= 1).
  std::uint32_t max_running = 1;
  /// See overlap_policy.
  overlap_policy overlap = overlap_policy::skip;
  /// Each run starts at fire time + a uniform random delay in [0, max_jitter], never at or past
  /// the next fire time.
  duration max_jitter{0};
  /// A run still running after `timeout` is cancelled (coroutines: cancellation; commands:
  /// SIGTERM then SIGKILL) or, for blocking tasks that cannot be interrupted, reported as
  /// timed_out and left to finish on its thread. nullopt: no limit.
  std::optional<duration> timeout{};
  /// A failed or timed-out run is retried up to `retries` more times, the k-th retry after
  /// d = min(retry_backoff * 2^(k-1), retry_backoff_max), drawn uniformly in [d/2, d] (jitter,
  /// so that many failing runs do not retry in step).
  std::uint32_t retries = 0;
  duration retry_backoff = std::chrono::seconds{1};
  duration retry_backoff_max = std::chrono::minutes{5};
  /// No fire time before `start` or after `end` (both inclusive).
  std::optional<time_point> start{};
  std::optional<time_point> end{};
  /// See abandoned_policy.
  abandoned_policy on_abandoned = abandoned_policy::record;

  friend bool operator==(const schedule_options&, const schedule_options&) = default;
};

/// What a user submits: an id, a registered task name, a trigger, a payload handed to the
/// task, and options.
struct schedule_spec {
  std::string id{};
  std::string task{};
  ::punctual::trigger trigger{};
  std::string payload{};
  schedule_options options{};
  bool paused = false;
};

/// A schedule as a store holds it: the spec plus its progress and lease.
struct schedule_record {
  schedule_spec spec;
  /// The next fire time not yet turned into a run; nullopt when the trigger is exhausted.
  std::optional<time_point> next_fire;
  /// The latest fire time turned into a run (or recorded missed).
  std::optional<time_point> last_fire;
  /// The node holding the schedule while it computes fires ("" when free), and until when.
  std::string lease_owner;
  time_point lease_until{};
  /// Non-empty when the stored row cannot be used (its trigger text no longer parses, ...):
  /// the reason. A quarantined schedule is kept, reported, and never fired.
  std::string quarantine;
  /// The stored trigger text (canonical). Equal to spec.trigger.to_string() unless quarantined.
  std::string trigger_text;
};

// schedule_conflict and schedule_not_found are in error.hpp, with the other punctual::error types.

/// Text names of the option enums, as used in crontab options and store rows.
inline std::string_view to_string(coalesce_policy p) {
  switch (p) {
    case coalesce_policy::latest: return "latest";
    case coalesce_policy::earliest: return "earliest";
    case coalesce_policy::all: return "all";
  }
  return "?";
}
inline std::string_view to_string(overlap_policy p) {
  switch (p) {
    case overlap_policy::skip: return "skip";
    case overlap_policy::queue: return "queue";
    case overlap_policy::replace: return "replace";
  }
  return "?";
}
inline std::string_view to_string(abandoned_policy p) {
  return p == abandoned_policy::rerun ? "rerun" : "record";
}

/// Parses the names above; throws parse_error naming `field`.
inline coalesce_policy parse_coalesce_policy(std::string_view s, std::string_view field = "coalesce") {
  if (s == "latest") return coalesce_policy::latest;
  if (s == "earliest") return coalesce_policy::earliest;
  if (s == "all") return coalesce_policy::all;
  throw parse_error(std::string(field), std::string(s), 0, "expected latest, earliest or all");
}
inline overlap_policy parse_overlap_policy(std::string_view s, std::string_view field = "overlap") {
  if (s == "skip") return overlap_policy::skip;
  if (s == "queue") return overlap_policy::queue;
  if (s == "replace") return overlap_policy::replace;
  throw parse_error(std::string(field), std::string(s), 0, "expected skip, queue or replace");
}
inline abandoned_policy parse_abandoned_policy(std::string_view s, std::string_view field = "on_abandoned") {
  if (s == "record") return abandoned_policy::record;
  if (s == "rerun") return abandoned_policy::rerun;
  throw parse_error(std::string(field), std::string(s), 0, "expected record or rerun");
}

PUNCTUAL_END_NAMESPACE
