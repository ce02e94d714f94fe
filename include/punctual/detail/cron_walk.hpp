/// @file detail/cron_walk.hpp
/// Internals of cron_trigger: next fire time in a time zone, applying the DST policy. A
/// template over the zone type (anything with `zone_segment segment(time_point) const`) so
/// that tests can drive it with synthetic transitions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "punctual/config.hpp"
#include "punctual/detail/cron_spec.hpp"
#include "punctual/time.hpp"
#include "punctual/zone.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

inline constexpr std::int64_t cron_us = 1'000'000;

/// Instants before this one behave like it in next(): no fire time can precede it.
inline constexpr std::int64_t cron_earliest_us = (cron_day_number(1970, 1, 1) - 3) * 86400 * cron_us;
/// Instants at or after this one have no fire time after them (past the end of the last year
/// in every zone, whatever its offset).
inline constexpr std::int64_t cron_latest_us =
    (cron_day_number(cron_last_year + 1, 1, 1) + 3) * 86400 * cron_us;

/// First fire time strictly after `after` for a UTC (or any zero-offset) zone.
inline std::optional<time_point> cron_next_utc(const cron_spec& spec, time_point after) noexcept {
  const std::int64_t a = after.time_since_epoch().count();
  if (a >= cron_latest_us) return std::nullopt;
  const std::int64_t c = spec.first_at_or_after(a < 0 ? 0 : cron_floor_div(a, cron_us) + 1);
  if (c == cron_never) return std::nullopt;
  return time_point{std::chrono::seconds{c}};
}

/// First fire time strictly after `after` in `zone` under `policy` (see cron_trigger for the
/// policy in words). Walks the zone's constant-offset segments starting with the one that
/// holds `after`; in each segment [b, e) with offset o it takes the civil candidates c in
/// [b + o, e + o) (in the first segment: c > local time of `after`):
///  - a candidate right after a backward transition (previous offset op > o) with c < b + op
///    is a second pass; it fires only if both passes are wanted;
///  - candidates in the gap [e + o, e + on) before a forward transition (next offset on > o)
///    do not exist: with dst_gap::shift the first of them makes the trigger fire at e (once),
///    with dst_gap::skip they are ignored.
/// In UTC there is a single segment, so this is one civil search.
template <class Zone>
std::optional<time_point> cron_next_in_zone(const cron_spec& spec, const Zone& zone, dst_policy policy,
                                            time_point after) {
  std::int64_t a = after.time_since_epoch().count();
  if (a >= cron_latest_us) return std::nullopt;
  if (a < cron_earliest_us) {
    a = cron_earliest_us;
    after = time_point{duration{a}};
  }
  constexpr std::int64_t max_shift = 26 * 3600 * cron_us;  // no offset change in tzdata is larger
  const bool both_passes =
      policy.overlap == dst_overlap::twice || (policy.overlap == dst_overlap::automatic && spec.all_hours());

  // memo of the last civil search: nothing matches in [memo_from, memo_c), memo_c matches
  std::int64_t memo_from = 0;
  std::int64_t memo_c = -1;
  auto find = [&](std::int64_t from) {
    if (from < 0) from = 0;
    if (memo_c >= 0 && from >= memo_from && from <= memo_c) return memo_c;
    memo_from = from;
    memo_c = spec.first_at_or_after(from);
    return memo_c;
  };

  zone_segment seg = zone.segment(after);
  for (int walked = 0; walked < 100'000; ++walked) {
    const std::int64_t o = static_cast<std::int64_t>(seg.offset.count()) * cron_us;
    const std::int64_t b = seg.begin.time_since_epoch().count();
    const std::int64_t e = seg.end.time_since_epoch().count();
    const bool has_begin = seg.begin != time_point::min() && b > cron_earliest_us;
    const bool has_end = seg.end != time_point::max() && e < cron_latest_us;
    if (has_begin && b >= cron_latest_us) return std::nullopt;
    const std::int64_t lo =
        walked == 0 ? cron_floor_div(a + o, cron_us) + 1 : (has_begin ? cron_ceil_div(b + o, cron_us) : 0);
    const std::int64_t hi = has_end ? cron_ceil_div(e + o, cron_us) : cron_never;  // exclusive

    bool prev_known = false;
    std::int64_t op = 0;
    std::int64_t c = find(lo);
    while (c < hi) {
      const std::int64_t instant = c * cron_us - o;
      if (!both_passes && has_begin && instant - b < max_shift) {
        if (!prev_known) {
          op = static_cast<std::int64_t>(zone.segment(seg.begin - duration{1}).offset.count()) * cron_us;
          prev_known = true;
        }
        if (op > o) {
          const std::int64_t second_pass_end = cron_ceil_div(b + op, cron_us);
          if (c < second_pass_end) {
            c = find(second_pass_end);
            continue;
          }
        }
      }
      return time_point{duration{instant}};
    }
    if (c == cron_never || !has_end) return std::nullopt;
    const zone_segment next = zone.segment(seg.end);
    const std::int64_t on = static_cast<std::int64_t>(next.offset.count()) * cron_us;
    if (policy.gap == dst_gap::shift && on > o && c * cron_us < e + on) return seg.end;
    seg = next;
  }
  return std::nullopt;  // unreachable for sane zone data: a few segments per year at most
}

}  // namespace detail

PUNCTUAL_END_NAMESPACE
