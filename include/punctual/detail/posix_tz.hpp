/// @file detail/posix_tz.hpp
/// POSIX TZ strings as found in the footer of TZif files (RFC 8536 section 3.3), e.g.
/// `CET-1CEST,M3.5.0,M10.5.0/3` or `<+1030>-10:30<+11>-11,M10.1.0,M4.1.0`, including the
/// RFC 8536 extension that lets a rule's time range over -167..167 hours. Internal.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "punctual/config.hpp"
#include "punctual/error.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE
namespace detail {

/// Days since 1970-01-01 of a proleptic Gregorian date; valid for any year an int64 of
/// seconds can reach (no std::chrono::year range limit).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<std::int64_t>(y - era * 400);                       // [0, 399]
  const std::int64_t mp = m > 2 ? m - 3 : m + 9;                                   // March = 0
  const std::int64_t doy = (153 * mp + 2) / 5 + static_cast<std::int64_t>(d) - 1;  // [0, 365]
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                  // [0, 146096]
  return era * 146097 + doe - 719468;
}

/// The proleptic Gregorian year that contains day `z` (days since 1970-01-01).
constexpr std::int64_t year_from_days(std::int64_t z) noexcept { return civil_from_days(z).year; }

constexpr bool is_leap_year(std::int64_t y) noexcept { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

/// floor(a / b) for b > 0.
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  return a / b - ((a % b != 0 && (a < 0)) ? 1 : 0);
}

/// One end of a daylight-saving period: a day of the year plus a local time of day.
struct posix_date {
  enum kind_t : std::uint8_t {
    julian1,         ///< `Jn`: day 1..365, February 29 never counted
    julian0,         ///< `n`: day 0..365, February 29 counted in leap years
    month_week_day,  ///< `Mm.w.d`: weekday d (0 = Sunday) of week w (5 = last) of month m
  };
  kind_t kind = month_week_day;
  std::uint16_t day = 0;     ///< julian1 / julian0
  std::uint8_t month = 1;    ///< month_week_day: 1..12
  std::uint8_t week = 1;     ///< month_week_day: 1..5
  std::uint8_t weekday = 0;  ///< month_week_day: 0..6
  std::int32_t time = 7200;  ///< seconds after local midnight, -167h..167h

  /// Days since 1970-01-01 of this date in year `y`.
  constexpr std::int64_t days_in(std::int64_t y) const noexcept {
    switch (kind) {
      case julian1: {
        std::int64_t d = days_from_civil(y, 1, 1) + day - 1;
        if (day >= 60 && is_leap_year(y)) ++d;  // skip February 29
        return d;
      }
      case julian0: return days_from_civil(y, 1, 1) + day;
      case month_week_day:
      default: {
        constexpr std::uint8_t length[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        const std::int64_t first = days_from_civil(y, month, 1);
        const std::int64_t first_wd = ((first + 4) % 7 + 7) % 7;  // 1970-01-01 was a Thursday
        std::int64_t d = first + (weekday - first_wd + 7) % 7 + 7 * (week - 1);
        const std::int64_t next_month = first + length[month - 1] + (month == 2 && is_leap_year(y) ? 1 : 0);
        while (d >= next_month) d -= 7;  // week 5 means "last"
        return d;
      }
    }
  }
};

/// A parsed POSIX TZ string. Offsets are seconds east of UTC (the opposite sign of the text).
struct posix_tz {
  std::string std_abbrev;
  std::int32_t std_offset = 0;
  bool has_dst = false;
  std::string dst_abbrev;
  std::int32_t dst_offset = 0;
  posix_date start;  ///< DST begins (local standard time)
  posix_date end;    ///< DST ends (local daylight time)

  /// UTC second at which DST begins in year `y`.
  constexpr std::int64_t dst_start_utc(std::int64_t y) const noexcept {
    return start.days_in(y) * 86400 + start.time - std_offset;
  }
  /// UTC second at which DST ends in year `y`.
  constexpr std::int64_t dst_end_utc(std::int64_t y) const noexcept {
    return end.days_in(y) * 86400 + end.time - dst_offset;
  }
};

/// A rule-generated change: at UTC second `at`, the offset becomes `offset`.
struct posix_event {
  std::int64_t at;
  std::int32_t offset;
};

/// Writes the DST start and end events of years [y0, y0 + n) into `out` (2n entries), sorted by
/// time. Ties keep year order and, within a year, start before end, so a rule whose DST ends
/// exactly when next year's begins (all-year DST) resolves to DST.
template <std::size_t N>
constexpr void posix_events(const posix_tz& tz, std::int64_t y0, std::array<posix_event, N>& out) noexcept {
  static_assert(N % 2 == 0);
  for (std::size_t k = 0; k < N / 2; ++k) {
    const std::int64_t y = y0 + static_cast<std::int64_t>(k);
    out[2 * k] = {tz.dst_start_utc(y), tz.dst_offset};
    out[2 * k + 1] = {tz.dst_end_utc(y), tz.std_offset};
  }
  // insertion sort, stable: tiny and allocation-free
  for (std::size_t i = 1; i < N; ++i) {
    const posix_event e = out[i];
    std::size_t j = i;
    while (j > 0 && out[j - 1].at > e.at) {
      out[j] = out[j - 1];
      --j;
    }
    out[j] = e;
  }
}

/// Parses a POSIX TZ string (the RFC 8536 footer dialect). Throws parse_error (field
/// "POSIX TZ string") with the 1-based column of the problem.
inline posix_tz parse_posix_tz(std::string_view text) {
  std::size_t i = 0;
  auto fail = [&](const char* why) -> void {
    throw parse_error("POSIX TZ string", std::string(text), i + 1, why);
  };
  auto is_alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  auto abbrev = [&](std::string& out) {
    if (i < text.size() && text[i] == '<') {
      const std::size_t b = ++i;
      while (i < text.size() && (is_alpha(text[i]) || is_digit(text[i]) || text[i] == '+' || text[i] == '-'))
        ++i;
      if (i >= text.size() || text[i] != '>') fail("expected '>' closing a quoted abbreviation");
      if (i == b) fail("empty abbreviation");
      out.assign(text.substr(b, i - b));
      ++i;
    } else {
      const std::size_t b = i;
      while (i < text.size() && is_alpha(text[i])) ++i;
      if (i == b) fail("expected a time zone abbreviation");
      out.assign(text.substr(b, i - b));
    }
  };
  auto number = [&](int max_digits, long max_value) -> long {
    if (i >= text.size() || !is_digit(text[i])) fail("expected a number");
    const std::size_t first = i;
    long v = 0;
    int n = 0;
    while (i < text.size() && is_digit(text[i])) {
      if (++n > max_digits) fail("number has too many digits");
      v = v * 10 + (text[i++] - '0');
    }
    if (v > max_value) {
      i = first;
      fail("number out of range");
    }
    return v;
  };
  // [+-]hh[:mm[:ss]] in seconds; hours up to max_hours
  auto hms = [&](long max_hours) -> std::int32_t {
    long sign = 1;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) sign = text[i++] == '-' ? -1 : 1;
    long v = number(3, max_hours) * 3600;
    if (i < text.size() && text[i] == ':') {
      ++i;
      v += number(2, 59) * 60;
      if (i < text.size() && text[i] == ':') {
        ++i;
        v += number(2, 59);
      }
    }
    return static_cast<std::int32_t>(sign * v);
  };
  auto date = [&](posix_date& d) {
    if (i < text.size() && text[i] == 'J') {
      ++i;
      d.kind = posix_date::julian1;
      const std::size_t at = i;
      d.day = static_cast<std::uint16_t>(number(3, 365));
      if (d.day == 0) {
        i = at;
        fail("Julian day must be 1-365");
      }
    } else if (i < text.size() && text[i] == 'M') {
      ++i;
      d.kind = posix_date::month_week_day;
      const std::size_t at = i;
      d.month = static_cast<std::uint8_t>(number(2, 12));
      if (d.month == 0) {
        i = at;
        fail("month must be 1-12");
      }
      if (i >= text.size() || text[i] != '.') fail("expected '.' after the month");
      ++i;
      const std::size_t wat = i;
      d.week = static_cast<std::uint8_t>(number(1, 5));
      if (d.week == 0) {
        i = wat;
        fail("week must be 1-5");
      }
      if (i >= text.size() || text[i] != '.') fail("expected '.' after the week");
      ++i;
      d.weekday = static_cast<std::uint8_t>(number(1, 6));
    } else {
      d.kind = posix_date::julian0;
      d.day = static_cast<std::uint16_t>(number(3, 365));
    }
    d.time = 7200;
    if (i < text.size() && text[i] == '/') {
      ++i;
      d.time = hms(167);
    }
  };

  posix_tz tz;
  abbrev(tz.std_abbrev);
  tz.std_offset = -hms(24);
  if (i == text.size()) return tz;
  tz.has_dst = true;
  abbrev(tz.dst_abbrev);
  tz.dst_offset = tz.std_offset + 3600;
  if (i < text.size() && text[i] != ',') tz.dst_offset = -hms(24);
  if (i == text.size()) {
    // No rule: POSIX leaves it to the implementation; use the US rule, as glibc's default does.
    tz.start = posix_date{posix_date::month_week_day, 0, 3, 2, 0, 7200};
    tz.end = posix_date{posix_date::month_week_day, 0, 11, 1, 0, 7200};
    return tz;
  }
  if (text[i] != ',') fail("expected ',' before the DST start rule");
  ++i;
  date(tz.start);
  if (i >= text.size() || text[i] != ',') fail("expected ',' before the DST end rule");
  ++i;
  date(tz.end);
  if (i != text.size()) fail("unexpected text after the rule");
  return tz;
}

}  // namespace detail
PUNCTUAL_END_NAMESPACE
