/// @file options_text.hpp
/// The text form of schedule_options: `misfire=30s coalesce=all max_catch_up=10 timeout=5m`.
/// SQL stores persist options this way, and crontab `#@ key=value` option lines use the same
/// keys and values.
///
/// | key | value | default |
/// |---|---|---|
/// | `misfire` | duration >= 0, or `none` | `none` (late runs always run) |
/// | `coalesce` | `latest`, `earliest`, `all` | `latest` |
/// | `max_catch_up` | whole number | `100` |
/// | `max_running` | whole number >= 1 | `1` |
/// | `overlap` | `skip`, `queue`, `replace` | `skip` |
/// | `jitter` | duration >= 0 | `0s` |
/// | `timeout` | duration > 0, or `none` | `none` |
/// | `retries` | whole number | `0` |
/// | `retry_backoff` | duration >= 0 | `1s` |
/// | `retry_backoff_max` | duration >= 0 | `5m` |
/// | `start` | ISO 8601 instant with offset | none |
/// | `end` | ISO 8601 instant with offset, not before `start` | none |
/// | `on_abandoned` | `record`, `rerun` | `record` |
///
/// Durations are written as parse_duration() reads them (`90s`, `1h30m`, `250ms`), instants as
/// parse_iso() reads them (`2026-01-01T00:00:00Z`).
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "punctual/config.hpp"
#include "punctual/detail/trigger_text.hpp"
#include "punctual/error.hpp"
#include "punctual/schedule.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

/// Every option key, in canonical order.
inline constexpr std::string_view schedule_option_keys[] = {
    "misfire", "coalesce",      "max_catch_up",      "max_running", "overlap", "jitter",      "timeout",
    "retries", "retry_backoff", "retry_backoff_max", "start",       "end",     "on_abandoned"};

inline std::string schedule_option_key_list() {
  std::string list;
  for (auto k : schedule_option_keys) {
    if (!list.empty()) list += ", ";
    list += k;
  }
  return list;
}

inline std::string schedule_option_field(std::string_view key) { return "option " + std::string(key); }

/// Parses a whole number in [min, UINT32_MAX]; errors name column 1 of `value`.
inline std::uint32_t parse_option_count(std::string_view key, std::string_view value, std::uint32_t min) {
  std::uint64_t v = 0;
  const char* b = value.data();
  const char* e = b + value.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (value.empty() || ec == std::errc::invalid_argument || (p != e && ec == std::errc{}))
    throw parse_error(schedule_option_field(key), std::string(value), 1, "expected a whole number");
  if (ec == std::errc::result_out_of_range || v > 0xFFFFFFFFULL)
    throw parse_error(schedule_option_field(key), std::string(value), 1, "is too large (at most 4294967295)");
  if (v < min)
    throw parse_error(schedule_option_field(key), std::string(value), 1,
                      "must be at least " + std::to_string(min));
  return static_cast<std::uint32_t>(v);
}

/// Parses a duration; `positive` demands > 0, else >= 0. Errors carry columns into `value`.
inline duration parse_option_duration(std::string_view key, std::string_view value, bool positive) {
  duration d;
  try {
    d = parse_duration(value);
  } catch (const parse_error& e) {
    throw parse_error(schedule_option_field(key), std::string(value), e.column() == 0 ? 1 : e.column(),
                      "not a duration: " + e.reason());
  }
  if (d.count() < 0 || (positive && d.count() == 0))
    throw parse_error(schedule_option_field(key), std::string(value), 1,
                      positive ? "must be longer than 0" : "must not be negative");
  return d;
}

inline time_point parse_option_instant(std::string_view key, std::string_view value) {
  try {
    return parse_iso(value);
  } catch (const parse_error& e) {
    throw parse_error(schedule_option_field(key), std::string(value), e.column() == 0 ? 1 : e.column(),
                      "not an ISO 8601 instant: " + e.reason());
  }
}

template <class F>
auto parse_option_enum(std::string_view key, std::string_view value, F&& f) -> decltype(f(value, key)) {
  try {
    return f(value, key);
  } catch (const parse_error& e) {
    throw parse_error(schedule_option_field(key), std::string(value), 1, e.reason());
  }
}

}  // namespace detail

/// Sets the option `key` of `o` from its text `value` (see the table in the file comment).
/// Throws parse_error: for an unknown key, field "schedule option" with the key as text and
/// column 0; for a bad value, field "option <key>" with the value as text and a 1-based column
/// into `value`. `o` is unchanged when it throws. Used by parse_schedule_options and by the
/// crontab parser's `#@ key=value` lines (which does not check `end` against `start`).
inline void apply_schedule_option(schedule_options& o, std::string_view key, std::string_view value) {
  using namespace detail;
  if (key == "misfire") {
    o.misfire_grace =
        value == "none" ? std::nullopt : std::optional(parse_option_duration(key, value, false));
  } else if (key == "coalesce") {
    o.coalesce = parse_option_enum(key, value, [](auto v, auto k) { return parse_coalesce_policy(v, k); });
  } else if (key == "max_catch_up") {
    o.max_catch_up = parse_option_count(key, value, 0);
  } else if (key == "max_running") {
    o.max_running = parse_option_count(key, value, 1);
  } else if (key == "overlap") {
    o.overlap = parse_option_enum(key, value, [](auto v, auto k) { return parse_overlap_policy(v, k); });
  } else if (key == "jitter") {
    o.max_jitter = parse_option_duration(key, value, false);
  } else if (key == "timeout") {
    o.timeout = value == "none" ? std::nullopt : std::optional(parse_option_duration(key, value, true));
  } else if (key == "retries") {
    o.retries = parse_option_count(key, value, 0);
  } else if (key == "retry_backoff") {
    o.retry_backoff = parse_option_duration(key, value, false);
  } else if (key == "retry_backoff_max") {
    o.retry_backoff_max = parse_option_duration(key, value, false);
  } else if (key == "start") {
    o.start = parse_option_instant(key, value);
  } else if (key == "end") {
    o.end = parse_option_instant(key, value);
  } else if (key == "on_abandoned") {
    o.on_abandoned =
        parse_option_enum(key, value, [](auto v, auto k) { return parse_abandoned_policy(v, k); });
  } else {
    throw parse_error("schedule option", std::string(key), 0,
                      "unknown option (expected one of: " + schedule_option_key_list() + ")");
  }
}

/// The text form of `o`: space-separated `key=value` words for the options that differ from
/// their defaults, in the canonical order of the table above ("" for default options).
/// parse_schedule_options(to_string(o)) == o for every `o` that parse_schedule_options accepts
/// (max_running >= 1, no negative durations, timeout > 0, end not before start).
inline std::string to_string(const schedule_options& o) {
  const schedule_options d;
  std::string out;
  auto add = [&](std::string_view key, const std::string& value) {
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    out += value;
  };
  if (o.misfire_grace) add("misfire", format_duration(*o.misfire_grace));
  if (o.coalesce != d.coalesce) add("coalesce", std::string(to_string(o.coalesce)));
  if (o.max_catch_up != d.max_catch_up) add("max_catch_up", std::to_string(o.max_catch_up));
  if (o.max_running != d.max_running) add("max_running", std::to_string(o.max_running));
  if (o.overlap != d.overlap) add("overlap", std::string(to_string(o.overlap)));
  if (o.max_jitter != d.max_jitter) add("jitter", format_duration(o.max_jitter));
  if (o.timeout) add("timeout", format_duration(*o.timeout));
  if (o.retries != d.retries) add("retries", std::to_string(o.retries));
  if (o.retry_backoff != d.retry_backoff) add("retry_backoff", format_duration(o.retry_backoff));
  if (o.retry_backoff_max != d.retry_backoff_max)
    add("retry_backoff_max", format_duration(o.retry_backoff_max));
  if (o.start) add("start", format_iso(*o.start));
  if (o.end) add("end", format_iso(*o.end));
  if (o.on_abandoned != d.on_abandoned) add("on_abandoned", std::string(to_string(o.on_abandoned)));
  return out;
}

/// Parses the text form (space- or tab-separated `key=value` words, any order, each key at
/// most once; blank text gives the defaults). Throws parse_error whose message quotes `text`
/// and whose 1-based column points at the bad word: an unknown key, a word without `=`, a
/// repeated key, a bad value (column inside the value), or an `end` before `start`.
///
/// @code
/// auto o = punctual::parse_schedule_options("misfire=30s coalesce=all max_catch_up=10");
/// @endcode
inline schedule_options parse_schedule_options(std::string_view text) {
  const std::string whole(text);
  schedule_options o;
  unsigned seen = 0;
  std::size_t end_column = 0;
  for (const auto& w : detail::split_words(text)) {
    const auto eq = w.text.find('=');
    if (eq == std::string_view::npos || eq == 0)
      throw parse_error("schedule option", std::string(w.text), w.column, "expected key=value", whole);
    const std::string_view key = w.text.substr(0, eq);
    const std::string_view value = w.text.substr(eq + 1);
    std::size_t index = 0;
    while (index < std::size(detail::schedule_option_keys) && detail::schedule_option_keys[index] != key)
      ++index;
    if (index == std::size(detail::schedule_option_keys))
      throw parse_error("schedule option", std::string(key), w.column,
                        "unknown option (expected one of: " + detail::schedule_option_key_list() + ")",
                        whole);
    if (seen & (1U << index))
      throw parse_error("schedule option", std::string(key), w.column, "is given more than once", whole);
    seen |= 1U << index;
    const std::size_t value_column = detail::word_value(w).column;
    if (key == "end") end_column = value_column;
    try {
      apply_schedule_option(o, key, value);
    } catch (const parse_error& e) {
      throw detail::shift_error(e, value_column - 1, whole);
    }
  }
  if (o.start && o.end && *o.end < *o.start)
    throw parse_error(detail::schedule_option_field("end"), format_iso(*o.end), end_column, "is before start",
                      whole);
  return o;
}

PUNCTUAL_END_NAMESPACE
