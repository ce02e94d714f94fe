/// @file trigger/cron.hpp
/// `punctual::cron_trigger`: fire times from a cron expression in a time zone, with a
/// documented daylight-saving policy.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "punctual/config.hpp"
#include "punctual/detail/cron_spec.hpp"
#include "punctual/detail/cron_walk.hpp"
#include "punctual/detail/trigger_text.hpp"
#include "punctual/error.hpp"
#include "punctual/time.hpp"
#include "punctual/zone.hpp"

PUNCTUAL_BEGIN_NAMESPACE

/// A trigger that fires at the wall-clock times a cron expression selects, in a time zone.
///
/// **Fields.** 5 fields `minute hour day-of-month month day-of-week` (fires at second 0);
/// 6 fields put `second` first; 7 fields add `year` (1970 to PUNCTUAL_MAX_YEAR) last. Or one
/// macro: `@yearly` = `@annually` (`0 0 1 1 *`), `@monthly` (`0 0 1 * *`), `@weekly`
/// (`0 0 * * 0`), `@daily` = `@midnight` (`0 0 * * *`), `@hourly` (`0 * * * *`).
///
/// **Values.** `*` (all), `?` (day-of-month and day-of-week only, same as `*`), `a`, `a-b`,
/// `*/n`, `a/n` (a to the end of the range), `a-b/n`, and comma lists of these. Months accept
/// `JAN`-`DEC`, days of week `SUN`-`SAT` (any case); `0` and `7` are both Sunday. A reversed
/// range wraps around: hours `22-2` are 22,23,0,1,2, `FRI-MON` is Friday to Monday (not in the
/// year field, where it is an error).
///
/// **Specials.** Day-of-month: `L` (last day), `L-n` (n days before the last day, n 0-30), `LW`
/// (last weekday Mon-Fri), `nW` (the weekday nearest to day n, never leaving the month: `1W`
/// on a Saturday 1st is Monday 3rd, `31W` on a Sunday 31st is Friday 29th; in a month without
/// day n it matches nothing). Day-of-week: `xL` / `FRIL` (last weekday x of the month),
/// `x#n` / `FRI#2` (n-th weekday x, n 1-5, matching nothing in months without one), and a lone
/// `L`, which means the last day of the week: Saturday (as croncpp; some crons read Sunday).
///
/// **Days.** Vixie cron's (and cronie's) rule: a day-of-month or day-of-week field that starts
/// with `*` (`*`, `*/2`, `*/10`, `*,15`) or is `?` is *unrestricted*. When both fields are
/// restricted a day matches if either matches (`0 0 13 * FRI` fires on every 13th and every
/// Friday). Otherwise a day must match both: an unrestricted field still filters by its values,
/// so `0 0 13 * */2` fires on a 13th that is a Sunday, Tuesday, Thursday or Saturday, and
/// `0 0 */10 * FRI` on a Friday that is the 1st, 11th, 21st or 31st; a plain `*` or `?`
/// matches every day, so the other field alone decides. A full range such as `0-6` or `1-31`
/// is restricted (`0 0 13 * 0-6` fires every day). Some libraries differ: croncpp counts `*/2`
/// as restricted (OR), ccronexpr and supertinycron always need both fields to match (AND).
///
/// **Time zones and DST** (the default policy; both halves can be changed with dst_policy):
///  - a wall-clock time that does not exist (spring forward) fires once, at the first instant
///    after the gap: a daily 02:30 job still runs that day (`gap=shift`); `gap=skip` drops it;
///    several such times in one gap (e.g. every minute) collapse into that one fire;
///  - a wall-clock time that occurs twice (fall back) fires on the first pass only, except
///    when the hour field matches all 24 hours, where both passes fire, so an
///    every-15-minutes job keeps its rhythm (`overlap=auto`); `overlap=once` / `overlap=twice`
///    force one behaviour.
///
/// **Errors.** Bad input throws parse_error naming the field ("minute field", ...), the
/// offending text (whole characters), its 1-based column in characters and why
/// (`61 is out of range 0-59`, `step 0 ...`, `week number must be 1-5`, `unknown name FOO ...`,
/// `unexpected U+FF13 '３' (expected a number)`, `expected 5, 6 or 7 fields, got 4`). An
/// expression that can never fire (`0 0 30 2 *`, Feb 29 in non-leap years only, `5#5` in a
/// single month that has no fifth Friday, ...) is rejected with reason "can never fire: ...".
///
/// **Cost.** next() works on per-field bitsets with carry (never second by second); it is
/// bounded by PUNCTUAL_MAX_YEAR and returns nullopt when nothing remains. It allocates nothing.
///
/// The zone is held by reference: use zones from locate_zone()/utc_zone() (they live for the
/// whole process) or keep your own time_zone alive as long as the trigger.
///
/// Thread safety: immutable; const members are safe from any thread.
///
/// @code
/// punctual::cron_trigger t("0 9 * * MON-FRI", "Europe/Berlin");
/// auto when = t.next(clock.now());   // next weekday 09:00 in Berlin, as a UTC instant
/// @endcode
class cron_trigger {
 public:
  /// Parses `expression` (5, 6 or 7 fields, or a macro) for `zone` under `policy`. Throws
  /// parse_error whose columns are 1-based into `expression`.
  explicit cron_trigger(std::string_view expression, const time_zone& zone = utc_zone(),
                        dst_policy policy = {})
      : zone_(&zone), policy_(policy) {
    detail::cron_token tokens[8];
    const std::size_t n = detail::cron_split(expression, tokens, 8);
    init(expression, tokens, n < 8 ? n : 8, n);
  }

  /// Same, with the zone given by IANA name (locate_zone); throws parse_error for an unknown
  /// zone (field "time zone").
  cron_trigger(std::string_view expression, std::string_view zone_name, dst_policy policy = {})
      : cron_trigger(expression, locate_zone(zone_name), policy) {}

  /// The first fire time strictly after `after` (whole seconds), or nullopt when the trigger
  /// will never fire again. Never allocates; terminates quickly for any input.
  std::optional<time_point> next(time_point after) const {
    if (zone_->is_utc()) return detail::cron_next_utc(spec_, after);
    return detail::cron_next_in_zone(spec_, *zone_, policy_, after);
  }

  /// Canonical text: `cron:<expression>[ tz=<zone>][ gap=skip][ overlap=once|twice]`. The zone
  /// is left out when it is UTC, the policy parts when they are the defaults (gap=shift,
  /// overlap=auto). parse_canonical() (after the "cron:") or parse_trigger() turn it back
  /// into an equal trigger.
  std::string to_string() const {
    std::string s = "cron:";
    s += expression_;
    if (!zone_->is_utc()) {
      s += " tz=";
      s += zone_->name();
    }
    if (policy_.gap == dst_gap::skip) s += " gap=skip";
    if (policy_.overlap == dst_overlap::once) s += " overlap=once";
    if (policy_.overlap == dst_overlap::twice) s += " overlap=twice";
    return s;
  }

  /// Parses a canonical body (the text after "cron:"): the expression's fields, then options
  /// `tz=<zone>`, `gap=shift|skip`, `overlap=auto|once|twice` in any order. Options are the
  /// trailing words that contain '='. Throws parse_error with columns 1-based into `body`.
  static cron_trigger parse_canonical(std::string_view body) {
    const std::vector<detail::text_word> words = detail::split_words(body);
    std::size_t n = words.size();
    while (n > 0 && words[n - 1].text.find('=') != std::string_view::npos) --n;
    const time_zone* zone = &utc_zone();
    dst_policy policy;
    bool seen_tz = false, seen_gap = false, seen_overlap = false;
    for (std::size_t i = n; i < words.size(); ++i) {
      const detail::text_word& w = words[i];
      const std::string_view key = detail::word_key(w);
      const detail::text_word v = detail::word_value(w);
      auto twice = [&](bool& seen) {
        if (seen)
          throw parse_error("cron trigger", std::string(w.text), w.column, std::string(key) + " given twice");
        seen = true;
      };
      if (key == "tz") {
        twice(seen_tz);
        zone = &detail::parse_nested(v.column - 1, [&]() -> const time_zone& { return locate_zone(v.text); });
      } else if (key == "gap") {
        twice(seen_gap);
        if (auto g = dst_gap_from_string(v.text))
          policy.gap = *g;
        else
          throw parse_error("cron trigger", std::string(v.text), v.column, "gap must be shift or skip");
      } else if (key == "overlap") {
        twice(seen_overlap);
        if (auto o = dst_overlap_from_string(v.text))
          policy.overlap = *o;
        else
          throw parse_error("cron trigger", std::string(v.text), v.column,
                            "overlap must be auto, once or twice");
      } else {
        detail::unknown_key("cron trigger", w, {"tz", "gap", "overlap"});
      }
    }
    detail::cron_token tokens[8];
    for (std::size_t i = 0; i < n && i < 8; ++i) tokens[i] = {words[i].pos, words[i].text.size()};
    // the expression is a prefix of body: columns stay the same, messages quote only it
    const std::size_t end = n == 0 ? 0 : words[n - 1].pos + words[n - 1].text.size();
    return cron_trigger(body.substr(0, end), tokens, n < 8 ? n : 8, n, *zone, policy);
  }

  /// The expression as given, with blanks normalized to single spaces between fields.
  const std::string& expression() const noexcept { return expression_; }
  /// The time zone the expression is evaluated in.
  const time_zone& zone() const noexcept { return *zone_; }
  /// The daylight-saving policy.
  dst_policy policy() const noexcept { return policy_; }

  /// Equal when expression, zone and policy are equal (and so are the canonical texts).
  friend bool operator==(const cron_trigger& a, const cron_trigger& b) {
    return a.expression_ == b.expression_ && a.policy_ == b.policy_ &&
           (a.zone_ == b.zone_ || (a.zone_->is_utc() && b.zone_->is_utc()) ||
            a.zone_->name() == b.zone_->name());
  }

 private:
  cron_trigger(std::string_view text, const detail::cron_token* tokens, std::size_t stored, std::size_t count,
               const time_zone& zone, dst_policy policy)
      : zone_(&zone), policy_(policy) {
    init(text, tokens, stored, count);
  }

  void init(std::string_view text, const detail::cron_token* tokens, std::size_t stored, std::size_t count) {
    spec_ = detail::cron_parser(text).parse(tokens, count);
    std::size_t size = 0;
    for (std::size_t i = 0; i < stored; ++i) size += tokens[i].len + 1;
    expression_.reserve(size);
    for (std::size_t i = 0; i < stored; ++i) {
      if (i != 0) expression_ += ' ';
      expression_.append(text.substr(tokens[i].pos, tokens[i].len));
    }
  }

  detail::cron_spec spec_;
  std::string expression_;
  const time_zone* zone_;
  dst_policy policy_;
};

/// Convenience: `punctual::cron("0 9 * * MON-FRI", "Europe/Berlin")`. Same as the
/// cron_trigger constructor taking a zone name.
inline cron_trigger cron(std::string_view expression, std::string_view zone = "UTC", dst_policy policy = {}) {
  return cron_trigger(expression, zone, policy);
}

PUNCTUAL_END_NAMESPACE
