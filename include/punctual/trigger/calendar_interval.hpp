/// @file trigger/calendar_interval.hpp
/// `calendar_interval_trigger`: every N years/months/weeks/days at a wall-clock time in a zone.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "punctual/config.hpp"
#include "punctual/detail/trigger_text.hpp"
#include "punctual/detail/utf8.hpp"
#include "punctual/error.hpp"
#include "punctual/time.hpp"
#include "punctual/zone.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// The step of a calendar_interval_trigger. Either a month-based step (`years` and/or
/// `months`) or a day-based step (`weeks` and/or `days`), never both kinds: "1 month and 3
/// days" has no single meaning once month ends are clamped. Each count is 0..100000 and the
/// step must not be zero.
struct calendar_period {
  int years = 0;
  int months = 0;
  int weeks = 0;
  int days = 0;
};

/// Fires on the local dates `start + k * period` (k = 0, 1, 2, ...) at the wall-clock time
/// `at` in a time zone — the calendar-aware counterpart of interval_trigger ("every 2 weeks at
/// 09:00 Berlin time" stays at 09:00 across daylight-saving changes).
///
/// - **Anchored, not cumulative**: fire k is computed from `start` directly, so a monthly
///   trigger started on Jan 31 fires Jan 31, Feb 28 (29 in leap years), Mar 31, Apr 30, ...:
///   a day that does not exist in a month is **clamped to that month's last day**, and the
///   clamp never carries over to later months.
/// - `end` is a local date and **inclusive**: the fire scheduled on `end` happens.
/// - Dates after December 31 of PUNCTUAL_MAX_YEAR are never produced.
/// - Daylight saving (`dst_policy`): a wall-clock time inside a spring-forward gap fires at
///   the first instant after the gap (`gap=shift`, default) or not at all that day
///   (`gap=skip`); a wall-clock time that occurs twice fires on the first pass
///   (`overlap=auto`, the default, and `overlap=once`) or on both passes (`overlap=twice`).
/// - next() jumps to the right k arithmetically: constant time, however far from `start`.
///
/// Canonical text (settings in this order; `end`, `tz` (left out for UTC), `gap` (shift) and
/// `overlap` (auto) only when not the default; the step normalised to years+months or weeks+days):
/// `calendar:months=1 at=09:00:00 start=2026-01-31 end=2027-01-01 tz=Europe/Berlin gap=skip overlap=twice`
///
/// @code
/// punctual::calendar_interval_trigger t{{.weeks = 2}, std::chrono::year{2026} / 1 / 5,
///                                       std::chrono::hours{9}, "Europe/Berlin"};
/// @endcode
class calendar_interval_trigger {
 public:
  /// Throws parse_error (field "calendar trigger") for a zero, negative, too large or mixed
  /// period, an invalid `start`/`end` date, `end` before `start`, or `at` outside [0, 24h);
  /// and (field "time zone") for an unknown zone.
  calendar_interval_trigger(calendar_period every, std::chrono::year_month_day start, duration at = {},
                            std::string_view zone_name = "UTC", dst_policy policy = {},
                            std::optional<std::chrono::year_month_day> end = std::nullopt)
      : start_(start), at_(at), end_(end), zone_(&locate_zone(zone_name)), policy_(policy) {
    constexpr int max_count = 100000;
    for (int v : {every.years, every.months, every.weeks, every.days})
      if (v < 0 || v > max_count) fail("period", "each count must be between 0 and 100000");
    months_ = static_cast<std::int64_t>(every.years) * 12 + every.months;
    days_ = static_cast<std::int64_t>(every.weeks) * 7 + every.days;
    if (months_ != 0 && days_ != 0)
      fail("period", "combine years with months, or weeks with days, not months with days");
    if (months_ == 0 && days_ == 0) fail("period", "the period must not be zero");
    if (!start_.ok() || static_cast<int>(start_.year()) < 0)
      fail("start", "expected a valid date in year 0000 or later");
    if (end_ && !end_->ok()) fail("end", "no such date");
    if (end_ && std::chrono::sys_days{*end_} < std::chrono::sys_days{start_})
      fail("end", "the end is before the start");
    if (at_.count() < 0 || at_ >= std::chrono::hours{24})
      fail("at", "the time of day must be in 00:00:00-23:59:59");
  }

  /// The step in months (years count 12); 0 for a day-based step.
  std::int64_t months() const noexcept { return months_; }
  /// The step in days (weeks count 7); 0 for a month-based step.
  std::int64_t days() const noexcept { return days_; }
  /// The local date of fire 0.
  std::chrono::year_month_day start() const noexcept { return start_; }
  /// The wall-clock time of day of every fire.
  duration at() const noexcept { return at_; }
  /// The last local date that may fire (inclusive), if any.
  const std::optional<std::chrono::year_month_day>& end() const noexcept { return end_; }
  /// The zone the dates and `at` are read in.
  const time_zone& zone() const noexcept { return *zone_; }
  /// The daylight-saving policy.
  dst_policy policy() const noexcept { return policy_; }

  /// The local date of fire k (clamped to the month end), or nullopt past PUNCTUAL_MAX_YEAR.
  std::optional<std::chrono::year_month_day> date_of(std::int64_t k) const {
    using namespace std::chrono;
    year_month_day d;
    if (months_ != 0) {
      const std::int64_t index = static_cast<std::int64_t>(static_cast<int>(start_.year())) * 12 +
                                 (static_cast<unsigned>(start_.month()) - 1) + k * months_;
      const std::int64_t y = index / 12;  // index >= 0 for years >= 0; dates start at year 0
      if (y > PUNCTUAL_MAX_YEAR) return std::nullopt;
      const year_month ym{year{static_cast<int>(y)}, month{static_cast<unsigned>(index % 12 + 1)}};
      const auto last = year_month_day_last{ym.year(), month_day_last{ym.month()}}.day();
      d = year_month_day{ym.year(), ym.month(), start_.day() < last ? start_.day() : last};
    } else {
      const std::int64_t offset = k * days_;
      if (offset > 366LL * (PUNCTUAL_MAX_YEAR + 1)) return std::nullopt;
      d = year_month_day{sys_days{start_} + std::chrono::days{offset}};
      if (static_cast<int>(d.year()) > PUNCTUAL_MAX_YEAR) return std::nullopt;
    }
    return d;
  }

  /// The first fire strictly after `after`, or nullopt past `end` / PUNCTUAL_MAX_YEAR.
  std::optional<time_point> next(time_point after) const {
    using namespace std::chrono;
    const sys_days start_day{start_};
    // Zone offsets are well under a day, so these guards avoid converting extreme instants.
    if (after > time_point{sys_days{year{PUNCTUAL_MAX_YEAR + 1} / 1 / 3}}) return std::nullopt;
    std::int64_t k = 0;
    if (after >= time_point{start_day - std::chrono::days{2}}) {
      const year_month_day ld{floor<std::chrono::days>(zone_->to_local(after))};
      if (months_ != 0) {
        // Start one month before after's local month: every earlier fire is weeks before it.
        const std::int64_t ms = (static_cast<int>(ld.year()) - static_cast<int>(start_.year())) * 12LL +
                                (static_cast<int>(static_cast<unsigned>(ld.month())) -
                                 static_cast<int>(static_cast<unsigned>(start_.month()))) -
                                1;
        k = ms > 0 ? ms / months_ : 0;
      } else {
        // Start two days before after's local date: every earlier fire is days before it.
        const std::int64_t ds = (local_days{ld} - local_days{start_}).count() - 2;
        k = ds > 0 ? ds / days_ : 0;
      }
    }
    // At most a few rounds: fire dates grow by at least a day per step.
    for (;; ++k) {
      const auto d = date_of(k);
      if (!d || (end_ && sys_days{*d} > sys_days{*end_})) return std::nullopt;
      const local_info info = zone_->resolve(local_days{*d} + at_);
      switch (info.kind) {
        case local_info::unique:
          if (info.first > after) return info.first;
          break;
        case local_info::nonexistent:
          if (policy_.gap == dst_gap::shift && info.first > after) return info.first;
          break;
        case local_info::ambiguous:
          if (info.first > after) return info.first;
          if (policy_.overlap == dst_overlap::twice && info.second > after) return info.second;
          break;
      }
    }
  }

  /// Canonical text, see the class comment.
  std::string to_string() const {
    std::string out = "calendar:";
    auto put = [&](const char* key, std::int64_t v) {
      if (v == 0) return;
      if (out.size() > 9) out += ' ';
      out += key;
      out += '=';
      out += std::to_string(v);
    };
    put("years", months_ / 12);
    put("months", months_ % 12);
    put("weeks", days_ / 7);
    put("days", days_ % 7);
    out += " at=" + format_time_of_day(at_);
    out += " start=" + format_date(start_);
    if (end_) out += " end=" + format_date(*end_);
    if (!zone_->is_utc()) out += " tz=" + zone_->name();
    if (policy_.gap == dst_gap::skip) out += " gap=skip";
    if (policy_.overlap == dst_overlap::once) out += " overlap=once";
    if (policy_.overlap == dst_overlap::twice) out += " overlap=twice";
    return out;
  }

  /// Parses the text after `calendar:` — space-separated settings in any order:
  /// `years=N` `months=N` `weeks=N` `days=N` (the step; see calendar_period),
  /// `at=HH:MM[:SS[.ffffff]]` (default 00:00:00), `start=YYYY-MM-DD` (required),
  /// `end=YYYY-MM-DD`, `tz=ZONE` (default UTC), `gap=shift|skip`, `overlap=auto|once|twice`.
  /// Columns in a thrown parse_error are 1-based into `body`.
  static calendar_interval_trigger parse_canonical(std::string_view body) {
    using namespace std::chrono;
    const std::string field = "calendar trigger";
    calendar_period period;
    duration at{};
    std::optional<year_month_day> start, end;
    std::string zone = "UTC";
    dst_policy policy;
    bool seen[11] = {};
    const detail::text_word* period_word = nullptr;
    const detail::text_word* end_word = nullptr;
    const auto words = detail::split_words(body);
    for (const auto& w : words) {
      const auto key = detail::word_key(w);
      const auto v = detail::word_value(w);
      static constexpr std::string_view keys[] = {"years", "months", "weeks", "days", "at",
                                                  "start", "end",    "tz",    "gap",  "overlap"};
      std::size_t which = 0;
      while (which < 10 && keys[which] != key) ++which;
      if (which == 10)
        detail::unknown_key(
            field, w,
            {"years=", "months=", "weeks=", "days=", "at=", "start=", "end=", "tz=", "gap=", "overlap="});
      if (seen[which]) throw parse_error(field, std::string(w.text), w.column, "given twice");
      seen[which] = true;
      if (v.text.empty())
        throw parse_error(field, std::string(w.text), v.column, "expected a value after '='");
      switch (which) {
        case 0:
        case 1:
        case 2:
        case 3: {
          int n = 0;
          for (char c : v.text) {
            if (c < '0' || c > '9' || n > 100000)
              throw parse_error(field, std::string(w.text), v.column, "expected a count 0-100000");
            n = n * 10 + (c - '0');
          }
          if (n > 100000)
            throw parse_error(field, std::string(w.text), v.column, "expected a count 0-100000");
          (which == 0   ? period.years
           : which == 1 ? period.months
           : which == 2 ? period.weeks
                        : period.days) = n;
          if (!period_word) period_word = &w;
          if ((period.years || period.months) && (period.weeks || period.days))
            throw parse_error(field, std::string(w.text), w.column,
                              "combine years with months, or weeks with days, not months with days");
          break;
        }
        case 4: at = parse_time_of_day(v); break;
        case 5: start = parse_date(v); break;
        case 6:
          end = parse_date(v);
          end_word = &w;
          break;
        case 7:
          detail::parse_nested(v.column - 1, [&] { return &locate_zone(v.text); });
          zone = std::string(v.text);
          break;
        case 8:
          if (auto g = dst_gap_from_string(v.text))
            policy.gap = *g;
          else
            throw parse_error(field, std::string(w.text), v.column, "expected gap=shift or gap=skip");
          break;
        case 9:
          if (auto o = dst_overlap_from_string(v.text))
            policy.overlap = *o;
          else
            throw parse_error(field, std::string(w.text), v.column,
                              "expected overlap=auto, overlap=once or overlap=twice");
          break;
        default: break;
      }
    }
    if (!period_word)
      throw parse_error(field, std::string(body), 0, "expected a step: years=, months=, weeks= or days=");
    if (period.years == 0 && period.months == 0 && period.weeks == 0 && period.days == 0)
      throw parse_error(field, std::string(period_word->text), period_word->column,
                        "the period must not be zero");
    if (!start) throw parse_error(field, std::string(body), 0, "expected start=YYYY-MM-DD");
    if (end && sys_days{*end} < sys_days{*start})
      throw parse_error(field, std::string(end_word->text), end_word->column, "the end is before the start");
    return calendar_interval_trigger(period, *start, at, zone, policy, end);
  }

  /// Equal when every setting is (zones by name; all UTC-like zones are equal).
  friend bool operator==(const calendar_interval_trigger& a, const calendar_interval_trigger& b) {
    return a.months_ == b.months_ && a.days_ == b.days_ && a.start_ == b.start_ && a.at_ == b.at_ &&
           a.end_ == b.end_ && a.policy_ == b.policy_ &&
           (a.zone_ == b.zone_ || (a.zone_->is_utc() && b.zone_->is_utc()) ||
            a.zone_->name() == b.zone_->name());
  }

 private:
  [[noreturn]] static void fail(const char* what, const char* why) {
    throw parse_error(std::string("calendar trigger ") + what, "", 0, why);
  }

  static std::string format_date(std::chrono::year_month_day d) {
    std::string out;
    detail::append_padded(out, static_cast<int>(d.year()), 4);
    out += '-';
    detail::append_padded(out, static_cast<unsigned>(d.month()), 2);
    out += '-';
    detail::append_padded(out, static_cast<unsigned>(d.day()), 2);
    return out;
  }

  static std::string format_time_of_day(duration t) {
    const std::chrono::hh_mm_ss<duration> hms{t};
    std::string out;
    detail::append_padded(out, hms.hours().count(), 2);
    out += ':';
    detail::append_padded(out, hms.minutes().count(), 2);
    out += ':';
    detail::append_padded(out, hms.seconds().count(), 2);
    if (const auto us = hms.subseconds().count(); us != 0) {
      out += '.';
      detail::append_padded(out, us, 6);
    }
    return out;
  }

  static std::chrono::year_month_day parse_date(const detail::text_word& v) {
    const auto parts = detail::parse_nested(v.column - 1, [&] { return parse_iso_parts(v.text); });
    if (v.text.size() != 10)
      throw parse_error("calendar trigger", std::string(v.text), v.column, "expected a date YYYY-MM-DD");
    return std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(parts.local)};
  }

  static duration parse_time_of_day(const detail::text_word& v) {
    const std::string_view t = v.text;
    std::size_t i = 0;
    auto fail_at = [&](const char* why) -> duration {
      throw parse_error("time of day", std::string(t), v.column + detail::utf8_column(t, i) - 1, why);
    };
    // Reads two digits no larger than max; on a bad value `i` stays at the first digit.
    auto two = [&](long long max, long long& out) {
      if (i + 2 > t.size() || t[i] < '0' || t[i] > '9' || t[i + 1] < '0' || t[i + 1] > '9') return false;
      out = (t[i] - '0') * 10 + (t[i + 1] - '0');
      if (out > max) return false;
      i += 2;
      return true;
    };
    long long h = 0, m = 0, s = 0, us = 0;
    if (!two(23, h)) return fail_at("expected an hour 00-23");
    if (i >= t.size() || t[i] != ':') return fail_at("expected :MM");
    ++i;
    if (!two(59, m)) return fail_at("expected a minute 00-59");
    if (i < t.size()) {
      if (t[i] != ':') return fail_at("expected :SS");
      ++i;
      if (!two(59, s)) return fail_at("expected a second 00-59");
      if (i < t.size()) {
        if (t[i] != '.') return fail_at("expected .ffffff or the end");
        ++i;
        int n = 0;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9' && n < 6) {
          us = us * 10 + (t[i++] - '0');
          ++n;
        }
        if (n == 0 || i != t.size()) return fail_at("expected 1-6 fraction digits");
        for (; n < 6; ++n) us *= 10;
      }
    }
    return std::chrono::hours{h} + std::chrono::minutes{m} + std::chrono::seconds{s} + duration{us};
  }

  std::int64_t months_ = 0;
  std::int64_t days_ = 0;
  std::chrono::year_month_day start_;
  duration at_;
  std::optional<std::chrono::year_month_day> end_;
  const time_zone* zone_;
  dst_policy policy_;
};

PUNCTUAL_END_NAMESPACE
