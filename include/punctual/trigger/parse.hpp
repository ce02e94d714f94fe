/// @file trigger/parse.hpp
/// `parse_trigger`: turns any trigger's canonical text back into a trigger.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/detail/trigger_text.hpp"
#include "punctual/detail/utf8.hpp"
#include "punctual/error.hpp"
#include "punctual/trigger/calendar_interval.hpp"
#include "punctual/trigger/combine.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/trigger/interval.hpp"
#include "punctual/trigger/once.hpp"
#include "punctual/trigger/trigger.hpp"
#include "punctual/zone.hpp"

PUNCTUAL_BEGIN_NAMESPACE

namespace detail {

/// Combinators may nest this deep; deeper text is rejected rather than risking the stack.
inline constexpr int max_trigger_nesting = 32;

inline trigger parse_trigger_text(std::string_view text, int depth);

/// Parses the part of `s` after "any_of(" / "all_of(" (which starts at index 7 of `s`) into
/// children; columns are relative to `s`.
inline std::vector<trigger> parse_trigger_children(std::string_view s, int depth) {
  const std::string field = std::string(s.substr(0, 6)) + " trigger";
  if (depth >= max_trigger_nesting)
    throw parse_error(field, "", 1,
                      "combinators nest deeper than " + std::to_string(max_trigger_nesting) + " levels");
  std::vector<trigger> children;
  int level = 1;
  std::size_t piece = 7;
  auto add = [&](std::size_t stop) {
    const auto child = s.substr(piece, stop - piece);
    children.push_back(
        parse_nested(utf8_column(s, piece) - 1, [&] { return parse_trigger_text(child, depth + 1); }));
  };
  for (std::size_t i = 7; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '(') {
      ++level;
    } else if (c == ')') {
      if (--level == 0) {
        if (i + 1 != s.size())
          throw parse_error(field, std::string(s.substr(i + 1)), utf8_column(s, i + 1),
                            "unexpected text after the closing ')'");
        add(i);
        return children;
      }
    } else if (c == ';' && level == 1) {
      add(i);
      piece = i + 1;
    }
  }
  throw parse_error(field, std::string(s), utf8_column(s, s.size()),
                    "expected ')' to close \"" + std::string(s.substr(0, 7)) + "\"");
}

/// parse_trigger without the whole-text decoration; columns are relative to `text`.
inline trigger parse_trigger_text(std::string_view text, int depth) {
  std::size_t b = 0, e = text.size();
  while (b < e && (text[b] == ' ' || text[b] == '\t')) ++b;
  while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t')) --e;
  if (b == e) throw parse_error("trigger", "", 0, "is empty");
  const std::string_view s = text.substr(b, e - b);  // b bytes of blanks are b characters
  auto with_prefix = [&](std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; };

  if (with_prefix("cron:"))
    return parse_nested(b + 5, [&] { return trigger(cron_trigger::parse_canonical(s.substr(5))); });
  if (with_prefix("interval:"))
    return parse_nested(b + 9, [&] { return trigger(interval_trigger::parse_canonical(s.substr(9))); });
  if (with_prefix("once:"))
    return parse_nested(b + 5, [&] { return trigger(once_trigger::parse_canonical(s.substr(5))); });
  if (with_prefix("calendar:"))
    return parse_nested(b + 9,
                        [&] { return trigger(calendar_interval_trigger::parse_canonical(s.substr(9))); });
  if (with_prefix("any_of("))
    return parse_nested(b, [&] { return trigger(any_of_trigger(parse_trigger_children(s, depth))); });
  if (with_prefix("all_of("))
    return parse_nested(b, [&] { return trigger(all_of_trigger(parse_trigger_children(s, depth))); });

  // "word:" or "word(" that is none of the above: an unknown kind, not a cron expression.
  std::size_t i = 0;
  auto ident = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  while (i < s.size() && (ident(s[i]) || (i > 0 && s[i] >= '0' && s[i] <= '9'))) ++i;
  if (i > 0 && i < s.size() && (s[i] == ':' || s[i] == '('))
    throw parse_error("trigger kind", std::string(s.substr(0, i + 1)), b + 1,
                      "unknown kind (expected cron:, interval:, once:, calendar:, any_of(...), all_of(...) "
                      "or a bare cron expression)");

  // No prefix: a cron expression or macro, in UTC.
  return parse_nested(b, [&] { return trigger(cron_trigger(s, "UTC", dst_policy{})); });
}

}  // namespace detail

/// Parses a trigger's canonical text (what `to_string()` returns) into a trigger:
///
/// | text | trigger |
/// |---|---|
/// | `cron:0 9 * * MON-FRI tz=Europe/Berlin` | cron_trigger |
/// | `interval:30s start=2026-01-01T00:00:00Z` | interval_trigger |
/// | `once:2026-03-29T01:00:00Z` | once_trigger |
/// | `calendar:months=1 at=09:00:00 start=2026-01-31` | calendar_interval_trigger |
/// | `any_of(<trigger>; <trigger>; ...)` | any_of_trigger (nests) |
/// | `all_of(<trigger>; <trigger>; ...)` | all_of_trigger (nests) |
/// | `0 9 * * *`, `@daily` (no prefix) | cron_trigger in UTC with the default DST policy |
///
/// Guarantees `parse_trigger(t.to_string()) == t` for every trigger kind above. Leading and
/// trailing blanks are ignored. Throws parse_error whose column is 1-based into `text` (also
/// for errors inside nested children) and whose message quotes `text`.
inline trigger parse_trigger(std::string_view text) {
  try {
    return detail::parse_trigger_text(text, 0);
  } catch (const parse_error& e) {
    throw detail::shift_error(e, 0, std::string(text));
  }
}

PUNCTUAL_END_NAMESPACE
