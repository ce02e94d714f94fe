/// @file trigger/once.hpp
/// `once_trigger`: fires exactly once, at a given instant.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "punctual/config.hpp"
#include "punctual/detail/trigger_text.hpp"
#include "punctual/error.hpp"
#include "punctual/time.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// Fires once, at `at`; next(after) is `at` while `after < at`, then nullopt.
///
/// Canonical text: `once:2026-03-29T01:00:00Z` (UTC with `Z`; sub-second digits only when
/// non-zero). Parsing accepts any offset: `once:2026-03-29T03:00:00+02:00` is the same trigger.
class once_trigger {
 public:
  /// A trigger that fires at `at`.
  explicit once_trigger(time_point at) noexcept : at_(at) {}

  /// The instant it fires at.
  time_point at() const noexcept { return at_; }

  /// `at` if it is strictly after `after`, else nullopt.
  std::optional<time_point> next(time_point after) const noexcept {
    if (after < at_) return at_;
    return std::nullopt;
  }

  /// Canonical text, e.g. `once:2026-03-29T01:00:00Z`.
  std::string to_string() const { return "once:" + format_iso(at_); }

  /// Parses the text after `once:`: an ISO 8601 instant with an offset (`Z` or `±HH:MM`).
  /// Columns in a thrown parse_error are 1-based into `body`.
  static once_trigger parse_canonical(std::string_view body) {
    std::size_t b = 0, e = body.size();
    while (b < e && body[b] == ' ') ++b;
    while (e > b && body[e - 1] == ' ') --e;
    if (b == e)
      throw parse_error("once trigger", "", 0, "expected an ISO 8601 instant such as 2026-03-29T01:00:00Z");
    return once_trigger(detail::parse_nested(b, [&] { return parse_iso(body.substr(b, e - b)); }));
  }

  friend bool operator==(const once_trigger&, const once_trigger&) = default;

 private:
  time_point at_;
};

PUNCTUAL_END_NAMESPACE
