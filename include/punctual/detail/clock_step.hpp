/// @file detail/clock_step.hpp
/// Backward steps of the wall clock: how the schedule loop finds them (against the steady
/// clock) and how it re-plans a schedule after one. The rule follows Vixie cron and cronie
/// ("jobs with fixed times are not re-run; wildcard jobs run on the new time; a step of 3 hours
/// or more is a correction and the new time is used"); README "Clock steps" is its user-facing
/// form. Pure functions, so the rule is tested by name.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/detail/cron_spec.hpp"
#include "punctual/detail/fire_plan.hpp"
#include "punctual/schedule.hpp"
#include "punctual/store/store.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/calendar_interval.hpp"
#include "punctual/trigger/combine.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/trigger/interval.hpp"
#include "punctual/trigger/trigger.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// A backward step is seen when, between two readings, the wall clock advanced at least this
/// much less than the steady clock. (NTP slews at most 0.5 ms/s, and the schedule loop reads
/// both clocks at least every max_wait; a smaller step only delays fires by its length.)
inline constexpr duration clock_step_threshold = std::chrono::seconds{1};
/// A backward step this long or longer is a correction of the clock: every schedule is
/// re-planned on the new time, fixed-time ones included (cronie's 3-hour rule).
inline constexpr duration clock_correction = std::chrono::hours{3};

/// Compares successive (wall, steady) readings. Strand-only.
class step_detector {
 public:
  /// Takes a reading; returns how far the wall clock stepped back since the previous one
  /// (steady advance minus wall advance) when that is at least clock_step_threshold.
  std::optional<duration> observe(time_point wall, duration steady) {
    std::optional<duration> back;
    if (seen_) {
      const auto lag = (steady - steady_) - (wall - wall_);
      if (lag >= clock_step_threshold) back = lag;
    }
    seen_ = true;
    wall_ = wall;
    steady_ = steady;
    return back;
  }

 private:
  bool seen_ = false;
  time_point wall_{};
  duration steady_{};
};

/// True when a cron expression is a wildcard job in cronie's sense: its minute or hour field
/// starts with `*` (`* * * * *`, `*/5 * * * *`, `0 * * * *`, `@hourly`; six fields: the second
/// field is the minute). Fixed-time expressions (`30 2 * * *`, `@daily`) are not.
inline bool cron_is_wildcard(std::string_view expression) {
  if (!expression.empty() && expression.front() == '@') {  // a macro: only @hourly is wildcard
    constexpr std::string_view hourly = "@hourly";
    if (expression.size() != hourly.size()) return false;
    for (std::size_t i = 0; i < hourly.size(); ++i) {
      const char c = expression[i];
      if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != hourly[i]) return false;
    }
    return true;
  }
  cron_token t[7];
  const std::size_t n = cron_split(expression, t, 7);
  if (n < 5) return false;
  const std::size_t minute = n == 5 ? 0 : 1;
  for (std::size_t f : {minute, minute + 1})
    if (t[f].len > 0 && expression[t[f].pos] == '*') return true;
  return false;
}

/// True when a trigger runs on the new time after a backward step shorter than
/// clock_correction, repeating fire times that already ran: wildcard cron expressions (see
/// cron_is_wildcard), intervals, calendar intervals — never, their step is a day or more —
/// and any_of / all_of when every child does. A once trigger and unknown trigger types keep
/// their fixed times.
inline bool runs_on_new_time(const trigger& t) {
  if (auto* c = t.target<cron_trigger>()) return cron_is_wildcard(c->expression());
  if (t.target<interval_trigger>()) return true;
  auto all = [](const std::vector<trigger>& children) {
    for (const auto& c : children)
      if (!runs_on_new_time(c)) return false;
    return !children.empty();
  };
  if (auto* a = t.target<any_of_trigger>()) return all(a->children());
  if (auto* a = t.target<all_of_trigger>()) return all(a->children());
  return false;
}

/// The next fire time of schedule `s` after the wall clock stepped back by `back` to `now`, or
/// nullopt to leave it as stored. A schedule that runs on the new time (runs_on_new_time, or
/// any schedule when `back` >= clock_correction) gets its first fire time after `now`; any
/// other gets its first fire time after both `now` and its last_fire, so a fire time that ran
/// does not run again. Only an earlier next fire is returned (a backward step never delays).
inline std::optional<time_point> next_after_backward_step(const schedule_record& s, time_point now,
                                                          duration back) {
  if (!s.next_fire || !s.spec.trigger) return std::nullopt;  // exhausted, or unreadable
  auto after = now;
  const bool repeat = back >= clock_correction || runs_on_new_time(s.spec.trigger);
  if (!repeat && s.last_fire && *s.last_fire > after) after = *s.last_fire;
  const auto n = next_within(s.spec.trigger, after, s.spec.options);
  if (!n || *n >= *s.next_fire) return std::nullopt;
  return n;
}

/// The fire time a run is stored with. One job per (schedule, fire time) is kept, and after a
/// backward step a schedule may run again at a fire time that ran before it (one not after its
/// last_fire): that run is stored 1 microsecond after the trigger's fire time, so that it is a
/// new job rather than a duplicate the store would drop. Every other run keeps the trigger's time.
inline time_point stored_fire_time(time_point fire, const std::optional<time_point>& last_fire) {
  return last_fire && fire <= *last_fire ? fire + duration{1} : fire;
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
