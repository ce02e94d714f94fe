/// @file detail/fire_plan.hpp
/// Which due fire times of one schedule become runs: coalescing, misfire grace, start/end.
/// Pure functions of (trigger, options, now), so the catch-up rules are tested by name.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/schedule.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/trigger.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// The trigger's first fire time strictly after `after`, within the schedule's [start, end].
inline std::optional<time_point> next_within(const trigger& t, time_point after, const schedule_options& o) {
  if (o.start && after < *o.start) after = *o.start - duration{1};
  auto n = t.next(after);
  if (n && o.end && *n > *o.end) return std::nullopt;
  return n;
}

/// One fire time chosen to become a job.
struct planned_fire {
  time_point fire;
  bool missed = false;  ///< later than misfire_grace: recorded as missed, not run
};

/// The outcome of planning one due schedule.
struct fire_plan {
  std::vector<planned_fire> fires;      ///< chronological
  std::optional<time_point> next_fire;  ///< the schedule's new next fire time (> now)
  std::optional<time_point> last_fire;  ///< the latest fire time handled
  std::uint64_t dropped = 0;            ///< due fire times not turned into runs
  bool dropped_is_lower_bound = false;  ///< too many to count: `dropped` is a lower bound
};

/// How many fire times the forward walk enumerates before it switches to a search.
inline constexpr std::size_t catch_up_walk_limit = 4096;

/// The last `want` fire times in (lower, now], found by bisection on the window start so the
/// work is bounded by ~64 * want trigger steps however long the gap is. Precondition: there
/// are at least `want` fire times in (lower, now].
inline std::deque<time_point> last_fires(const trigger& t, const schedule_options& o, time_point lower,
                                         time_point now, std::size_t want) {
  auto count_at_least = [&](time_point from) {
    std::size_t n = 0;
    for (auto c = next_within(t, from, o); c && *c <= now && n < want; c = next_within(t, *c, o)) ++n;
    return n >= want;
  };
  // Find the largest window start p in [lower, now] with at least `want` fires in (p, now].
  auto lo = lower.time_since_epoch().count();  // count_at_least(lo) holds
  auto hi = now.time_since_epoch().count();    // count_at_least(hi) fails (empty window)
  while (hi - lo > 1) {
    const auto mid = lo + (hi - lo) / 2;
    if (count_at_least(time_point{duration{mid}}))
      lo = mid;
    else
      hi = mid;
  }
  std::deque<time_point> out;
  for (auto c = next_within(t, time_point{duration{lo}}, o); c && *c <= now; c = next_within(t, *c, o)) {
    out.push_back(*c);
    if (out.size() > want) out.pop_front();
  }
  return out;
}

/// Plans the runs of a schedule whose next fire time `first_due` is <= `now`.
/// - coalesce latest: one run for the latest due fire time; earliest: for the first; all: for
///   each, at most max_catch_up (the latest ones), the rest dropped.
/// - misfire_grace: a chosen fire time older than now - grace is marked missed.
/// - next_fire: the first fire time after now (within start/end), or nullopt.
/// Writes into `p`, reusing its storage (a loop planning many schedules allocates nothing in
/// the usual case).
inline void plan_fires(const trigger& t, const schedule_options& o, time_point first_due, time_point now,
                       fire_plan& p) {
  p.fires.clear();
  p.next_fire.reset();
  p.last_fire.reset();
  p.dropped = 0;
  p.dropped_is_lower_bound = false;
  // The usual case, exactly one fire time due: the same plan as below, without the window.
  if (first_due <= now) {
    const auto second = next_within(t, first_due, o);
    if (!second || *second > now) {
      p.fires.push_back({first_due, o.misfire_grace && now - first_due > *o.misfire_grace});
      p.last_fire = first_due;
      p.next_fire = next_within(t, now, o);
      return;
    }
  }
  const std::size_t want =
      o.coalesce == coalesce_policy::all ? std::max<std::size_t>(1, o.max_catch_up) : std::size_t{1};
  std::deque<time_point> window;  // the candidates kept so far
  std::uint64_t seen = 0;
  std::optional<time_point> cur = first_due;
  bool walked_out = false;
  while (cur && *cur <= now) {
    ++seen;
    if (o.coalesce == coalesce_policy::earliest) {
      if (window.empty()) window.push_back(*cur);
    } else {
      window.push_back(*cur);
      if (window.size() > want) window.pop_front();
    }
    if (seen >= catch_up_walk_limit + want) {
      walked_out = true;
      break;
    }
    cur = next_within(t, *cur, o);
  }
  if (walked_out) {
    // Too many to walk: jump to the end by searching instead of enumerating.
    if (o.coalesce != coalesce_policy::earliest) {
      auto tail = last_fires(t, o, *cur, now, want);
      if (!tail.empty()) window = std::move(tail);
    }
    p.dropped_is_lower_bound = true;
  }
  for (auto f : window) {
    const bool missed = o.misfire_grace && now - f > *o.misfire_grace;
    p.fires.push_back({f, missed});
  }
  p.dropped = seen > window.size() ? seen - window.size() : 0;
  if (!p.fires.empty()) p.last_fire = std::max(p.fires.back().fire, window.back());
  if (walked_out && o.coalesce == coalesce_policy::earliest) p.last_fire = p.fires.front().fire;
  p.next_fire = next_within(t, now, o);
}

/// As above, returning a new plan.
inline fire_plan plan_fires(const trigger& t, const schedule_options& o, time_point first_due,
                            time_point now) {
  fire_plan p;
  plan_fires(t, o, first_due, now, p);
  return p;
}

/// Exponential backoff: base * 2^(attempt-1), capped at `cap`, then scaled by `jitter` in
/// [0.5, 1] (callers pass a uniform random number in [0, 1)).
inline duration backoff_delay(duration base, duration cap, std::uint32_t attempt, double jitter) {
  const std::uint32_t shift = std::min<std::uint32_t>(attempt > 0 ? attempt - 1 : 0, 40);
  const double raw = static_cast<double>(base.count()) * static_cast<double>(std::uint64_t{1} << shift);
  const double capped = std::min(raw, static_cast<double>(cap.count()));
  return duration{static_cast<std::int64_t>(capped * (0.5 + 0.5 * jitter))};
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
