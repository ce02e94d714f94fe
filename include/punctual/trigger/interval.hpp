/// @file trigger/interval.hpp
/// `interval_trigger`: fires every fixed amount of elapsed time.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "punctual/config.hpp"
#include "punctual/detail/trigger_text.hpp"
#include "punctual/error.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// Fires at `start + k * every` for k = 0, 1, 2, ... — elapsed (UTC) time, so daylight-saving
/// changes never move it: a 1h interval fires 25 times on a fall-back day.
///
/// - Without a start the Unix epoch (1970-01-01T00:00:00Z) sets the phase: the trigger fires
///   at every `epoch + k * every`, k any integer (before 1970 too), so `every 30m` fires on
///   the hour and half hour (UTC) and two processes agree without sharing state. With a start,
///   the first fire is the start itself.
/// - The end, if any, is **inclusive**: a fire exactly at `end` happens.
/// - `every` must be positive, and `end` must not be before `start` (parse_error otherwise).
/// - next() is constant-time (one division), whatever the distance from the anchor.
///
/// Canonical text: `interval:30s[ start=2026-01-01T00:00:00Z][ end=2026-12-31T00:00:00Z]`
/// (the duration as format_duration() writes it, instants in UTC with `Z`).
///
/// @code
/// punctual::interval_trigger t{std::chrono::minutes{30}};
/// t.next(punctual::parse_iso("2026-01-01T10:10:00Z"));  // 2026-01-01T10:30:00Z
/// @endcode
class interval_trigger {
 public:
  /// Throws parse_error (field "interval trigger") when `every` <= 0 or `end` < `start`.
  explicit interval_trigger(duration every, std::optional<time_point> start = std::nullopt,
                            std::optional<time_point> end = std::nullopt)
      : every_(every), start_(start), end_(end) {
    if (every_.count() <= 0)
      throw parse_error("interval trigger", format_duration(every_), 0, "the interval must be positive");
    if (start_ && end_ && *end_ < *start_)
      throw parse_error("interval trigger", format_iso(*end_), 0, "the end is before the start");
  }

  /// The interval between fires.
  duration every() const noexcept { return every_; }
  /// The anchor given, if any (the Unix epoch is used without one).
  const std::optional<time_point>& start() const noexcept { return start_; }
  /// The last instant at which the trigger may fire (inclusive), if any.
  const std::optional<time_point>& end() const noexcept { return end_; }

  /// The first `start + k * every` strictly after `after` (k >= 0; any k without a start), or
  /// nullopt past the end.
  std::optional<time_point> next(time_point after) const {
    const time_point anchor = start_.value_or(time_point{});
    const auto step = static_cast<std::uint64_t>(every_.count());
    // Unsigned arithmetic: the true distance fits in 64 bits even when the signed one would
    // overflow (e.g. `after` near time_point::max() and the anchor before 1970).
    const auto a = static_cast<std::uint64_t>(after.time_since_epoch().count());
    const auto b = static_cast<std::uint64_t>(anchor.time_since_epoch().count());
    std::uint64_t add;  // candidate - after, in [1, step]
    if (after >= anchor) {
      add = step - (a - b) % step;
    } else if (start_) {
      add = b - a;  // the first fire is the start itself
    } else {
      const std::uint64_t rem = (b - a) % step;  // no start: fires before the epoch too
      add = rem == 0 ? step : rem;
    }
    const auto room = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - a;
    if (add > room) return std::nullopt;
    // a + add <= INT64_MAX here; summing unsigned avoids a signed overflow when add > INT64_MAX.
    const time_point candidate{duration{static_cast<std::int64_t>(a + add)}};
    if (end_ && candidate > *end_) return std::nullopt;
    return candidate;
  }

  /// Canonical text, e.g. `interval:1h30m start=2026-01-01T00:00:00Z`.
  std::string to_string() const {
    std::string out = "interval:" + format_duration(every_);
    if (start_) out += " start=" + format_iso(*start_);
    if (end_) out += " end=" + format_iso(*end_);
    return out;
  }

  /// Parses the text after `interval:` (e.g. `30s start=2026-01-01T00:00:00+01:00`): a
  /// duration, then optional `start=` and `end=` ISO 8601 instants with an offset, in any
  /// order. Columns in a thrown parse_error are 1-based into `body`.
  static interval_trigger parse_canonical(std::string_view body) {
    constexpr std::string_view field = "interval trigger";
    const auto words = detail::split_words(body);
    if (words.empty())
      throw parse_error(std::string(field), std::string(body), 0, "expected an interval such as 30s");
    const auto& first = words.front();
    if (!detail::word_key(first).empty())
      throw parse_error(std::string(field), std::string(first.text), first.column,
                        "expected the interval (such as 30s) before any setting");
    const duration every = detail::parse_nested(first.column - 1, [&] { return parse_duration(first.text); });
    if (every.count() <= 0)
      throw parse_error(std::string(field), std::string(first.text), first.column,
                        "the interval must be positive");
    std::optional<time_point> start, end;
    const detail::text_word* end_word = nullptr;
    for (std::size_t i = 1; i < words.size(); ++i) {
      const auto& w = words[i];
      const auto key = detail::word_key(w);
      std::optional<time_point>* slot = nullptr;
      if (key == "start")
        slot = &start;
      else if (key == "end") {
        slot = &end;
        end_word = &w;
      } else
        detail::unknown_key(field, w, {"start=", "end="});
      if (*slot) throw parse_error(std::string(field), std::string(w.text), w.column, "given twice");
      const auto v = detail::word_value(w);
      *slot = detail::parse_nested(v.column - 1, [&] { return parse_iso(v.text); });
    }
    if (start && end && *end < *start)
      throw parse_error(std::string(field), std::string(end_word->text), end_word->column,
                        "the end is before the start");
    return interval_trigger(every, start, end);
  }

  friend bool operator==(const interval_trigger&, const interval_trigger&) = default;

 private:
  duration every_;
  std::optional<time_point> start_;
  std::optional<time_point> end_;
};

PUNCTUAL_END_NAMESPACE
