/// @file time.hpp
/// Instants, durations and clocks. Every instant in punctual is UTC with microsecond
/// resolution; local time only exists inside triggers and for display.
#pragma once

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/error.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// A UTC instant, microsecond resolution.
using time_point = std::chrono::sys_time<std::chrono::microseconds>;
/// An elapsed duration, microsecond resolution.
using duration = std::chrono::microseconds;
/// A civil (wall-clock) time in some zone, microsecond resolution.
using local_time = std::chrono::local_time<std::chrono::microseconds>;

/// Where punctual reads "now" from. The scheduler never reads the system clock directly,
/// so tests can drive time with a manual_clock.
///
/// Thread safety: `now()` may be called from any thread.
class clock {
 public:
  virtual ~clock() = default;
  /// The current instant.
  virtual time_point now() const = 0;
  /// Time elapsed since some fixed origin, on a clock that steps never move (the steady
  /// clock): the scheduler measures timeouts and backoffs with it, and finds steps of now() by
  /// comparing the two. The default reads now(), so a clock that does not override it has
  /// neither (its steps move its timeouts, and are not seen as steps).
  virtual duration elapsed() const { return now().time_since_epoch(); }
  /// Registers `on_jump`, called (on the thread that moved the clock) whenever the clock is
  /// moved other than by the passage of time — so a sleeper can re-read it. Returns a handle
  /// for unsubscribe(). The system clock never calls it: sleepers bound their waits instead.
  virtual std::uint64_t subscribe(std::function<void()> on_jump) {
    (void)on_jump;
    return 0;
  }
  /// Removes a callback registered with subscribe().
  virtual void unsubscribe(std::uint64_t handle) { (void)handle; }
  /// True when the clock moves with real time by itself (the system clock). A clock that only
  /// moves when told (manual_clock) returns false: sleepers then wait for its jump
  /// notification (bounded by their own maximum wait), not for real time to pass.
  virtual bool advances_by_itself() const { return true; }
};

/// The real wall clock (`std::chrono::system_clock`), truncated to microseconds.
class system_clock final : public clock {
 public:
  time_point now() const override {
    return std::chrono::time_point_cast<duration>(std::chrono::system_clock::now());
  }
  /// `std::chrono::steady_clock`.
  duration elapsed() const override {
    return std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch());
  }
  /// One shared instance.
  static system_clock& instance() {
    static system_clock c;
    return c;
  }
};

/// A clock that only moves when told to. Tests use it to drive the scheduler through hours
/// of schedule in microseconds, without sleeping. advance() is the passage of time (now() and
/// elapsed() move together); step() is a step of the wall clock alone (an NTP step, a user
/// setting the date); set() moves to an instant: forwards as the passage of time, backwards as
/// a step.
///
/// Thread safety: all members may be called from any thread; subscribers are called outside
/// the internal lock.
class manual_clock final : public clock {
 public:
  explicit manual_clock(time_point start = time_point{}) : now_(start) {}

  time_point now() const override { return now_.load(); }
  /// Starts at zero; moved by advance() and by set() forwards, never by step().
  duration elapsed() const override { return elapsed_.load(); }
  /// Moves the clock to `t` and notifies subscribers: forwards, time passes (elapsed() moves
  /// too); backwards, the wall clock steps back (elapsed() stays).
  void set(time_point t) {
    {
      std::lock_guard lock(mutex_);
      const auto was = now_.load();
      if (t > was) elapsed_.store(elapsed_.load() + (t - was));
      now_.store(t);
    }
    notify();
  }
  /// Moves the clock forward by `d` (time passes: elapsed() moves too) and notifies subscribers.
  void advance(duration d) {
    {
      std::lock_guard lock(mutex_);  // one writer at a time: no lost advance
      now_.store(now_.load() + d);
      elapsed_.store(elapsed_.load() + d);
    }
    notify();
  }
  /// Steps the wall clock by `d` (negative: backwards) without time passing: now() moves,
  /// elapsed() does not. Notifies subscribers.
  void step(duration d) {
    {
      std::lock_guard lock(mutex_);
      now_.store(now_.load() + d);
    }
    notify();
  }
  std::uint64_t subscribe(std::function<void()> on_jump) override {
    std::lock_guard lock(mutex_);
    subscribers_.emplace_back(++next_handle_, std::move(on_jump));
    return next_handle_;
  }
  void unsubscribe(std::uint64_t handle) override {
    std::lock_guard lock(mutex_);
    std::erase_if(subscribers_, [&](const auto& s) { return s.first == handle; });
  }
  bool advances_by_itself() const override { return false; }

 private:
  void notify() {
    std::vector<std::function<void()>> copy;
    {
      std::lock_guard lock(mutex_);
      for (auto& s : subscribers_) copy.push_back(s.second);
    }
    for (auto& f : copy) f();
  }

  mutable std::mutex mutex_;
  std::atomic<time_point> now_;
  std::atomic<duration> elapsed_{};
  std::uint64_t next_handle_ = 0;
  std::vector<std::pair<std::uint64_t, std::function<void()>>> subscribers_;
};

namespace detail {

inline void append_padded(std::string& out, long long v, int width) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v < 0 ? -v : v);
  (void)ec;
  if (v < 0) out += '-';
  for (int n = static_cast<int>(p - buf); n < width; ++n) out += '0';
  out.append(buf, p);
}

/// A proleptic Gregorian date whose year may be any 64-bit value: std::chrono::year_month_day
/// holds years -32767..32767 only and wraps outside them, but a time_point reaches past year
/// 290000 (an `@every` of thousands of years gets there in a few steps).
struct civil_date {
  std::int64_t year = 1970;
  unsigned month = 1;  ///< 1..12
  unsigned day = 1;    ///< 1..31
};

/// The date of day `z`, counted from 1970-01-01 (negative before it). Counts in 400-year eras
/// of 146097 days, each taken to start on March 1 so that the leap day ends the era's years.
constexpr civil_date civil_from_days(std::int64_t z) noexcept {
  const std::int64_t shifted = z + 719468;  // days since 0000-03-01
  const std::int64_t era = (shifted >= 0 ? shifted : shifted - 146096) / 146097;
  const std::int64_t day_of_era = shifted - era * 146097;  // [0, 146096]
  const std::int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;  // [0, 399]
  const std::int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const std::int64_t month_from_march = (5 * day_of_year + 2) / 153;  // March = 0
  civil_date d;
  d.day = static_cast<unsigned>(day_of_year - (153 * month_from_march + 2) / 5 + 1);
  d.month = static_cast<unsigned>(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
  d.year = year_of_era + era * 400 + (d.month <= 2 ? 1 : 0);  // January and February end the year
  return d;
}

}  // namespace detail

/// Formats a civil time plus a UTC offset as ISO 8601: `2026-03-29T03:00:00+02:00`.
/// Sub-second digits appear only when non-zero (`.250`, or `.000250` for microseconds).
/// An offset of zero is written `Z` when `z_for_utc` is set, else `+00:00`.
/// Every instant a time_point holds is written with its true year: years before 0 with a
/// minus sign (`-0001`), years after 9999 in ISO 8601's expanded form with a plus sign and as
/// many digits as they need (`+30557-10-31T...`), which parse_iso does not read back.
inline std::string format_iso(local_time t, std::chrono::seconds offset, bool z_for_utc = false) {
  using namespace std::chrono;
  // The day and the time of day in microseconds, with no conversion of the day back to a
  // time_point (which overflows for the earliest instants).
  constexpr std::int64_t us_per_day = 86'400'000'000;
  std::int64_t day = t.time_since_epoch().count() / us_per_day;
  std::int64_t us_of_day = t.time_since_epoch().count() % us_per_day;
  if (us_of_day < 0) {
    us_of_day += us_per_day;
    --day;
  }
  const auto date = detail::civil_from_days(day);
  const microseconds tod{us_of_day};
  const hh_mm_ss<microseconds> hms{tod};
  std::string out;
  out.reserve(32);
  if (date.year > 9999) out += '+';
  detail::append_padded(out, date.year, 4);
  out += '-';
  detail::append_padded(out, date.month, 2);
  out += '-';
  detail::append_padded(out, date.day, 2);
  out += 'T';
  detail::append_padded(out, hms.hours().count(), 2);
  out += ':';
  detail::append_padded(out, hms.minutes().count(), 2);
  out += ':';
  detail::append_padded(out, hms.seconds().count(), 2);
  const auto us = hms.subseconds().count();
  if (us != 0) {
    out += '.';
    if (us % 1000 == 0)
      detail::append_padded(out, us / 1000, 3);
    else
      detail::append_padded(out, us, 6);
  }
  if (offset.count() == 0 && z_for_utc) {
    out += 'Z';
  } else {
    auto off = offset.count();
    out += off < 0 ? '-' : '+';
    off = off < 0 ? -off : off;
    detail::append_padded(out, off / 3600, 2);
    out += ':';
    detail::append_padded(out, off / 60 % 60, 2);
    if (off % 60 != 0) {
      out += ':';
      detail::append_padded(out, off % 60, 2);
    }
  }
  return out;
}

/// Formats a UTC instant as ISO 8601 with a `Z` suffix: `2026-03-29T01:00:00Z`.
inline std::string format_iso(time_point t) {
  return format_iso(local_time{t.time_since_epoch()}, std::chrono::seconds{0}, true);
}

/// The result of parsing ISO 8601 text: the civil time written and, if the text had one, its
/// UTC offset (`Z` is offset zero).
struct iso_parts {
  local_time local;
  std::optional<std::chrono::seconds> offset;
};

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`, `YYYY-MM-DDTHH:MM:SS[.ffffff]` (a space may stand
/// for `T`; a comma for the decimal point; fraction digits past the sixth are dropped), optionally
/// followed by `Z` or `±HH:MM` / `±HHMM` / `±HH`. Throws parse_error naming the column of the first
/// bad character — for a number out of range (month 13, hour 24, ...) the column where it starts.
inline iso_parts parse_iso_parts(std::string_view text) {
  using namespace std::chrono;
  std::size_t i = 0;
  const std::string whole(text);
  auto fail = [&](std::string why) -> iso_parts {
    throw parse_error("ISO 8601 time", whole, i + 1, std::move(why));
  };
  auto digits = [&](int n, long long& out) {
    out = 0;
    for (int k = 0; k < n; ++k) {
      if (i >= text.size() || text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i++] - '0');
    }
    return true;
  };
  // Reads an n-digit number no larger than max. When the number is out of range, `i` is moved back
  // to its first digit so that the error names the column where the field starts.
  auto bounded = [&](int n, long long max, long long& out) {
    const std::size_t start = i;
    if (!digits(n, out)) return false;
    if (out > max) {
      i = start;
      return false;
    }
    return true;
  };
  auto expect = [&](char c) {
    if (i < text.size() && text[i] == c) {
      ++i;
      return true;
    }
    return false;
  };
  long long y, mo, d, h = 0, mi = 0, s = 0, us = 0;
  if (!digits(4, y)) return fail("expected a 4-digit year");
  if (!expect('-') || !digits(2, mo)) return fail("expected -MM (month)");
  if (!expect('-') || !digits(2, d)) return fail("expected -DD (day)");
  const year_month_day ymd{year{static_cast<int>(y)}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.month().ok()) {
    i = 5;
    return fail("no such month");
  }
  if (!ymd.ok()) {
    i = 8;
    return fail("no such day in that month");
  }
  if (i < text.size() && (text[i] == 'T' || text[i] == 't' || text[i] == ' ')) {
    ++i;
    if (!bounded(2, 23, h)) return fail("expected an hour 00-23");
    if (!expect(':') || !bounded(2, 59, mi)) return fail("expected :MM (minute 00-59)");
    if (expect(':')) {
      if (!bounded(2, 59, s)) return fail("expected a second 00-59");
      if (expect('.') || expect(',')) {
        int n = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
          if (n < 6) us = us * 10 + (text[i] - '0');
          ++n;
          ++i;
        }
        if (n == 0) return fail("expected fraction digits");
        for (; n < 6; ++n) us *= 10;
      }
    }
  }
  iso_parts out;
  out.local = local_days{ymd} + hours{h} + minutes{mi} + seconds{s} + microseconds{us};
  if (i == text.size()) return out;
  if (text[i] == 'Z' || text[i] == 'z') {
    ++i;
    out.offset = seconds{0};
  } else if (text[i] == '+' || text[i] == '-') {
    const int sign = text[i] == '-' ? -1 : 1;
    ++i;
    long long oh, om = 0;
    if (!bounded(2, 23, oh)) return fail("expected an offset hour 00-23");
    if (expect(':') || i < text.size()) {
      if (!bounded(2, 59, om)) return fail("expected offset minutes 00-59");
    }
    out.offset = seconds{sign * (oh * 3600 + om * 60)};
  }
  if (i != text.size()) return fail("unexpected text after the time");
  return out;
}

/// Parses an ISO 8601 instant that carries its offset (`Z` or `±HH:MM`), see parse_iso_parts.
/// Throws parse_error if the offset is missing.
inline time_point parse_iso(std::string_view text) {
  const auto p = parse_iso_parts(text);
  if (!p.offset)
    throw parse_error("ISO 8601 time", std::string(text), 0, "needs a UTC offset such as Z or +02:00");
  return time_point{p.local.time_since_epoch()} - *p.offset;
}

/// Formats a duration compactly with the units d, h, m, s, ms, us: `1h30m`, `500ms`, `0s`.
/// parse_duration(format_duration(d)) == d for every d.
inline std::string format_duration(duration d) {
  using namespace std::chrono;
  if (d.count() == 0) return "0s";
  std::string out;
  // The magnitude as unsigned, so that duration::min() (whose negation overflows) works too.
  std::uint64_t us = static_cast<std::uint64_t>(d.count());
  if (d.count() < 0) {
    out += '-';
    us = 0 - us;
  }
  struct unit {
    std::uint64_t size;
    const char* name;
  };
  static constexpr unit units[] = {{86'400'000'000ULL, "d"}, {3'600'000'000ULL, "h"}, {60'000'000ULL, "m"},
                                   {1'000'000ULL, "s"},      {1'000ULL, "ms"},        {1ULL, "us"}};
  for (const auto& u : units) {
    if (us >= u.size) {
      out += std::to_string(us / u.size);
      out += u.name;
      us %= u.size;
    }
  }
  return out;
}

/// Parses a duration written as a sequence of number+unit pairs: `90s`, `1h30m`, `1.5h`,
/// `250ms`, `2d`, `1w`; units w, d, h, m (or min), s, ms, us. A bare `0` is accepted; a leading
/// `-` negates the whole. Whole numbers are summed exactly; a fraction is rounded to the nearest
/// microsecond. Throws parse_error (field "duration") naming the bad column when the text is
/// empty, a number or unit is missing or unknown, or the total does not fit in a duration.
inline duration parse_duration(std::string_view text) {
  const std::string whole(text);
  if (text == "0") return duration{0};
  if (text.empty()) throw parse_error("duration", whole, 0, "is empty");
  std::size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative) ++i;
  if (i == text.size()) throw parse_error("duration", whole, i + 1, "expected a number");
  // The magnitude is summed in microseconds. The most negative duration is one microsecond longer
  // than the most positive one, so that format_duration(duration::min()) parses back.
  const std::uint64_t limit =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + (negative ? 1U : 0U);
  std::uint64_t total = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    std::uint64_t integer = 0;
    bool overflow = false;
    bool any = false;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      const auto digit = static_cast<std::uint64_t>(text[i++] - '0');
      if (integer > (limit - digit) / 10)
        overflow = true;
      else
        integer = integer * 10 + digit;
      any = true;
    }
    long double fraction = 0;
    if (i < text.size() && text[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        fraction += scale * (text[i++] - '0');
        scale /= 10;
        any = true;
      }
    }
    if (!any) throw parse_error("duration", whole, start + 1, "expected a number");
    const std::size_t ustart = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z'))) ++i;
    const std::string_view u = text.substr(ustart, i - ustart);
    std::uint64_t unit_us;
    if (u == "w")
      unit_us = 604'800'000'000ULL;
    else if (u == "d")
      unit_us = 86'400'000'000ULL;
    else if (u == "h")
      unit_us = 3'600'000'000ULL;
    else if (u == "m" || u == "min")
      unit_us = 60'000'000ULL;
    else if (u == "s")
      unit_us = 1'000'000ULL;
    else if (u == "ms")
      unit_us = 1'000ULL;
    else if (u == "us")
      unit_us = 1ULL;
    else if (u.empty())
      throw parse_error("duration", whole, ustart + 1, "missing unit (w, d, h, m, s, ms or us)");
    else
      throw parse_error("duration", whole, ustart + 1,
                        "unknown unit \"" + std::string(u) + "\" (use w, d, h, m, s, ms or us)");
    // integer * unit_us <= limit < 2^63 and the rounded fraction is at most unit_us, so `part`
    // cannot wrap around.
    if (overflow || integer > limit / unit_us) throw parse_error("duration", whole, start + 1, "is too long");
    const std::uint64_t part =
        integer * unit_us + static_cast<std::uint64_t>(fraction * static_cast<long double>(unit_us) + 0.5L);
    if (part > limit - total) throw parse_error("duration", whole, start + 1, "is too long");
    total += part;
  }
  if (!negative) return duration{static_cast<std::int64_t>(total)};
  if (total == 0) return duration{0};
  return duration{-static_cast<std::int64_t>(total - 1) - 1};
}

PUNCTUAL_END_NAMESPACE
