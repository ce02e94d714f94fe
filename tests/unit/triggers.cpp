// Interval, once, calendar-interval and combinator triggers, jitter, and parse_trigger.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "punctual/error.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/calendar_interval.hpp"
#include "punctual/trigger/combine.hpp"
#include "punctual/trigger/cron.hpp"
#include "punctual/trigger/interval.hpp"
#include "punctual/trigger/jitter.hpp"
#include "punctual/trigger/once.hpp"
#include "punctual/trigger/parse.hpp"
#include "punctual/trigger/trigger.hpp"
#include "punctual/zone.hpp"

using namespace std::chrono_literals;
using punctual::parse_error;
using punctual::time_point;
namespace chr = std::chrono;

namespace {

time_point at(const char* iso) { return punctual::parse_iso(iso); }

std::string iso(std::optional<time_point> t) { return t ? punctual::format_iso(*t) : std::string("never"); }

// The first `n` fires strictly after `after`, as ISO text (UTC).
std::vector<std::string> fires(const punctual::trigger& t, time_point after, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const auto f = t.next(after);
    if (!f) break;
    out.push_back(punctual::format_iso(*f));
    after = *f;
  }
  return out;
}

// Same, with the offset of `zone_name`.
std::vector<std::string> local_fires(const punctual::trigger& t, const char* zone_name, time_point after,
                                     int n) {
  const auto& z = punctual::locate_zone(zone_name);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const auto f = t.next(after);
    if (!f) break;
    out.push_back(punctual::format_iso(*f, z));
    after = *f;
  }
  return out;
}

// Runs `f`, which must throw parse_error, and returns it.
template <class F>
parse_error error_of(F&& f) {
  try {
    f();
  } catch (const parse_error& e) {
    return e;
  }
  FAIL("expected a parse_error");
  throw std::logic_error("unreachable");
}

parse_error parse_fails(const std::string& text) {
  return error_of([&] { (void)punctual::parse_trigger(text); });
}

// 1-based column of the first occurrence of `needle` in `text`.
std::size_t column_of(const std::string& text, const std::string& needle) { return text.find(needle) + 1; }

chr::year_month_day ymd(int y, unsigned m, unsigned d) { return chr::year{y} / chr::month{m} / chr::day{d}; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// interval_trigger

TEST_CASE("interval without a start is anchored at the Unix epoch", "[trigger][interval]") {
  const punctual::interval_trigger t{30min};
  CHECK(iso(t.next(at("2026-01-01T10:10:00Z"))) == "2026-01-01T10:30:00Z");
  CHECK(iso(t.next(at("2026-01-01T10:59:59.999999Z"))) == "2026-01-01T11:00:00Z");
  CHECK(iso(t.next(at("1969-12-31T23:50:00Z"))) == "1970-01-01T00:00:00Z");
  CHECK(iso(t.next(at("1969-12-31T23:00:00Z"))) == "1969-12-31T23:30:00Z");
  // Before the epoch as far as time goes, still on the 30-minute grid.
  const auto first = t.next(time_point::min());
  REQUIRE(first);
  CHECK(*first - time_point::min() <= 30min);
  CHECK(first->time_since_epoch() % 30min == punctual::duration{0});
}

TEST_CASE("interval next is strictly after the given instant", "[trigger][interval]") {
  const punctual::interval_trigger t{1h, at("2026-01-01T00:00:07Z")};
  CHECK(iso(t.next(at("2026-01-01T05:00:07Z"))) == "2026-01-01T06:00:07Z");
  CHECK(iso(t.next(at("2026-01-01T05:00:06.999999Z"))) == "2026-01-01T05:00:07Z");
}

TEST_CASE("interval fires at start when asked before it", "[trigger][interval]") {
  const punctual::interval_trigger t{90s, at("2026-06-01T12:00:00Z")};
  CHECK(iso(t.next(at("2020-01-01T00:00:00Z"))) == "2026-06-01T12:00:00Z");
  CHECK(iso(t.next(time_point::min())) == "2026-06-01T12:00:00Z");
  CHECK(fires(t, at("2026-06-01T12:00:00Z"), 3) ==
        std::vector<std::string>{"2026-06-01T12:01:30Z", "2026-06-01T12:03:00Z", "2026-06-01T12:04:30Z"});
}

TEST_CASE("interval end is inclusive", "[trigger][interval]") {
  const punctual::interval_trigger t{10min, at("2026-01-01T00:00:00Z"), at("2026-01-01T00:20:00Z")};
  CHECK(fires(t, at("2025-12-31T00:00:00Z"), 10) ==
        std::vector<std::string>{"2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z"});
  const punctual::interval_trigger u{10min, at("2026-01-01T00:00:00Z"), at("2026-01-01T00:19:59Z")};
  CHECK(fires(u, at("2025-12-31T00:00:00Z"), 10).size() == 2);
}

TEST_CASE("interval next is arithmetic: far-off and extreme instants are exact and fast",
          "[trigger][interval]") {
  const punctual::interval_trigger t{1us * 7, at("2000-01-01T00:00:00Z")};
  const auto far = at("9999-12-31T23:59:59Z");
  const auto n = t.next(far);
  REQUIRE(n);
  const auto since = (*n - at("2000-01-01T00:00:00Z")).count();
  CHECK(since % 7 == 0);
  CHECK(*n > far);
  CHECK(*n - far <= 7us);
  // No overflow next to the ends of the representable range.
  CHECK_FALSE(t.next(time_point::max()));
  const auto edge = t.next(time_point::max() - 3us);
  CHECK((!edge || *edge > time_point::max() - 3us));
  const punctual::interval_trigger before_epoch{1h, at("0001-01-01T00:00:00Z")};
  const auto late = before_epoch.next(time_point::max() - 2h);
  REQUIRE(late);
  CHECK(*late > time_point::max() - 2h);
}

TEST_CASE("interval fires thousands of years apart are shown with their true years",
          "[trigger][interval][iso]") {
  // `@every 902147483648s` (about 28587 years): its fires after 2026 fall in years 30557,
  // 59145 and 87733; the second used to be shown as -6391-10-31 (year_month_day wraps at 32767).
  const punctual::interval_trigger t{902147483648s};
  std::vector<std::string> shown;
  for (auto f = t.next(at("2026-12-07T00:00:00Z")); f && shown.size() < 3; f = t.next(*f))
    shown.push_back(punctual::format_iso(*f));
  CHECK(shown == std::vector<std::string>{"+30557-11-30T19:14:08Z", "+59145-10-31T14:28:16Z",
                                          "+87733-09-30T09:42:24Z"});
  // In a zone with daylight saving time too (its rule is applied in every year).
  const auto& berlin = punctual::locate_zone("Europe/Berlin");
  CHECK(punctual::format_iso(*t.next(at("2026-12-07T00:00:00Z")), berlin) == "+30557-11-30T20:14:08+01:00");
  CHECK(punctual::format_iso(time_point{2 * 902147483648s}, berlin) == "+59145-10-31T15:28:16+01:00");
}

TEST_CASE("interval counts elapsed time across a DST change", "[trigger][interval][dst]") {
  // 2026-10-25 in Berlin has 25 hours: an hourly interval fires 25 times that local day.
  const punctual::interval_trigger t{1h};
  const auto& berlin = punctual::locate_zone("Europe/Berlin");
  const auto day_start = at("2026-10-25T00:00:00+02:00");
  const auto day_end = at("2026-10-26T00:00:00+01:00");
  int count = 0;
  for (auto f = t.next(day_start - 1us); f && *f < day_end; f = t.next(*f)) ++count;
  CHECK(count == 25);
  CHECK(punctual::format_iso(*t.next(at("2026-10-25T02:30:00+02:00")), berlin) ==
        "2026-10-25T02:00:00+01:00");
}

TEST_CASE("interval rejects a non-positive interval and an end before the start",
          "[trigger][interval][error]") {
  CHECK_THROWS_AS(punctual::interval_trigger{0s}, parse_error);
  CHECK_THROWS_AS(punctual::interval_trigger{-5s}, parse_error);
  CHECK_THROWS_AS((punctual::interval_trigger{1s, at("2026-01-02T00:00:00Z"), at("2026-01-01T00:00:00Z")}),
                  parse_error);
}

TEST_CASE("interval canonical text", "[trigger][interval][text]") {
  CHECK(punctual::interval_trigger{30s}.to_string() == "interval:30s");
  CHECK(punctual::interval_trigger{90min, at("2026-01-01T00:00:00+01:00")}.to_string() ==
        "interval:1h30m start=2025-12-31T23:00:00Z");
  CHECK(punctual::interval_trigger{1500ms, std::nullopt, at("2026-01-01T00:00:00.25Z")}.to_string() ==
        "interval:1s500ms end=2026-01-01T00:00:00.250Z");
  const auto p = punctual::interval_trigger::parse_canonical(
      "1h30m  end=2026-02-01T00:00:00Z start=2026-01-01T01:00:00+01:00");
  CHECK(p == punctual::interval_trigger{90min, at("2026-01-01T00:00:00Z"), at("2026-02-01T00:00:00Z")});
}

TEST_CASE("interval text errors name field, column and reason", "[trigger][interval][error]") {
  {
    const std::string text = "interval:0s";
    const auto e = parse_fails(text);
    CHECK(e.field() == "interval trigger");
    CHECK(e.column() == column_of(text, "0s"));
    CHECK(e.reason() == "the interval must be positive");
    CHECK(std::string(e.what()).find(text) != std::string::npos);
  }
  {
    const std::string text = "interval:30x";
    const auto e = parse_fails(text);
    CHECK(e.field() == "duration");
    CHECK(e.column() == column_of(text, "x"));
  }
  {
    const std::string text = "interval:30s every=2";
    const auto e = parse_fails(text);
    CHECK(e.column() == column_of(text, "every"));
    CHECK(e.reason().find("start=") != std::string::npos);
  }
  {
    const std::string text = "interval:30s start=2026-13-01T00:00:00Z";
    const auto e = parse_fails(text);
    CHECK(e.field() == "ISO 8601 time");
    CHECK(e.column() == column_of(text, "13"));
  }
  {
    const std::string text = "interval:30s start=2026-01-01T00:00:00";
    const auto e = parse_fails(text);
    CHECK(e.column() == column_of(text, "2026"));
    CHECK(e.reason().find("offset") != std::string::npos);
  }
  {
    const std::string text = "interval:30s start=2026-01-01T00:00:00Z start=2026-01-01T00:00:00Z";
    CHECK(parse_fails(text).reason() == "given twice");
    CHECK(parse_fails(text).column() == text.rfind("start") + 1);
  }
  {
    const std::string text = "interval:1s start=2026-01-02T00:00:00Z end=2026-01-01T00:00:00Z";
    const auto e = parse_fails(text);
    CHECK(e.column() == column_of(text, "end="));
    CHECK(e.reason() == "the end is before the start");
  }
  CHECK(parse_fails("interval:").column() == 10);
  CHECK(parse_fails("interval:start=2026-01-01T00:00:00Z").column() == 10);
}

// ---------------------------------------------------------------------------------------------
// once_trigger

TEST_CASE("once fires exactly once, strictly after", "[trigger][once]") {
  const punctual::once_trigger t{at("2026-03-29T01:00:00Z")};
  CHECK(iso(t.next(at("2026-03-29T00:59:59Z"))) == "2026-03-29T01:00:00Z");
  CHECK(iso(t.next(time_point::min())) == "2026-03-29T01:00:00Z");
  CHECK_FALSE(t.next(at("2026-03-29T01:00:00Z")));
  CHECK_FALSE(t.next(at("2027-01-01T00:00:00Z")));
}

TEST_CASE("once canonical text is UTC with Z", "[trigger][once][text]") {
  CHECK(punctual::once_trigger{at("2026-03-29T03:00:00+02:00")}.to_string() == "once:2026-03-29T01:00:00Z");
  CHECK(punctual::once_trigger{at("2026-03-29T03:00:00.000250+02:00")}.to_string() ==
        "once:2026-03-29T01:00:00.000250Z");
  CHECK(punctual::once_trigger::parse_canonical("2026-03-29T03:00:00+02:00") ==
        punctual::once_trigger{at("2026-03-29T01:00:00Z")});
}

TEST_CASE("once text errors", "[trigger][once][error]") {
  const std::string text = "once:2026-02-30T00:00:00Z";
  const auto e = parse_fails(text);
  CHECK(e.field() == "ISO 8601 time");
  CHECK(e.column() == column_of(text, "30"));
  CHECK(parse_fails("once:").field() == "once trigger");
  CHECK(parse_fails("once:2026-01-01T00:00:00Z junk").column() ==
        column_of("once:2026-01-01T00:00:00Z junk", " junk"));
}

// ---------------------------------------------------------------------------------------------
// calendar_interval_trigger

TEST_CASE("calendar monthly on the 31st clamps to the month end without drifting", "[trigger][calendar]") {
  const punctual::calendar_interval_trigger t{{.months = 1}, ymd(2026, 1, 31), 9h};
  CHECK(fires(t, at("2026-01-01T00:00:00Z"), 6) ==
        std::vector<std::string>{"2026-01-31T09:00:00Z", "2026-02-28T09:00:00Z", "2026-03-31T09:00:00Z",
                                 "2026-04-30T09:00:00Z", "2026-05-31T09:00:00Z", "2026-06-30T09:00:00Z"});
  // Leap year: February 29.
  const punctual::calendar_interval_trigger leap{{.months = 1}, ymd(2028, 1, 31), 0h};
  CHECK(fires(leap, at("2028-02-01T00:00:00Z"), 2) ==
        std::vector<std::string>{"2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z"});
}

TEST_CASE("calendar yearly on February 29 fires on the 28th in common years", "[trigger][calendar]") {
  const punctual::calendar_interval_trigger t{{.years = 1}, ymd(2024, 2, 29), 12h};
  CHECK(fires(t, at("2024-01-01T00:00:00Z"), 6) ==
        std::vector<std::string>{"2024-02-29T12:00:00Z", "2025-02-28T12:00:00Z", "2026-02-28T12:00:00Z",
                                 "2027-02-28T12:00:00Z", "2028-02-29T12:00:00Z", "2029-02-28T12:00:00Z"});
  // Century rule: 2100 is not a leap year, 2400 is beyond PUNCTUAL_MAX_YEAR; 2000-style check on 2096/2104.
  CHECK(iso(t.next(at("2100-01-01T00:00:00Z"))) == "2100-02-28T12:00:00Z");
  CHECK(iso(t.next(at("2104-01-01T00:00:00Z"))) == "2104-02-29T12:00:00Z");
}

TEST_CASE("calendar day and week steps", "[trigger][calendar]") {
  const punctual::calendar_interval_trigger weekly{{.weeks = 2}, ymd(2026, 1, 5), 8h + 30min};
  CHECK(fires(weekly, at("2026-01-01T00:00:00Z"), 3) ==
        std::vector<std::string>{"2026-01-05T08:30:00Z", "2026-01-19T08:30:00Z", "2026-02-02T08:30:00Z"});
  const punctual::calendar_interval_trigger days{{.weeks = 1, .days = 3}, ymd(2026, 1, 1), 0h};
  CHECK(fires(days, at("2026-01-01T00:00:00Z"), 2) ==
        std::vector<std::string>{"2026-01-11T00:00:00Z", "2026-01-21T00:00:00Z"});
  CHECK(days.days() == 10);
  CHECK(days.months() == 0);
}

TEST_CASE("calendar next jumps to the right period and matches step-by-step enumeration",
          "[trigger][calendar]") {
  const std::vector<punctual::calendar_interval_trigger> triggers = {
      {{.months = 1}, ymd(2001, 1, 31), 23h + 59min},
      {{.years = 1, .months = 5}, ymd(2003, 8, 30), 6h},
      {{.days = 3}, ymd(2000, 2, 28), 1h},
      {{.weeks = 5}, ymd(2010, 12, 31), 0h},
      {{.months = 2}, ymd(2020, 1, 29), 2h + 30min, "Europe/Berlin"},
      {{.days = 1},
       ymd(2020, 1, 1),
       1h + 30min,
       "America/New_York",
       {.overlap = punctual::dst_overlap::twice}},
      {{.days = 1}, ymd(2020, 1, 1), 2h + 30min, "Europe/Berlin", {.gap = punctual::dst_gap::skip}},
  };
  std::mt19937_64 rng(12345);
  for (const auto& t : triggers) {
    // Oracle: every fire from fire 0 on, by enumeration.
    std::vector<time_point> all;
    for (auto f = t.next(time_point::min()); f && *f < at("2060-01-01T00:00:00Z"); f = t.next(*f))
      all.push_back(*f);
    REQUIRE(all.size() > 30);
    for (std::size_t i = 1; i < all.size(); ++i) REQUIRE(all[i - 1] < all[i]);
    std::uniform_int_distribution<std::int64_t> pick(
        all.front().time_since_epoch().count() - 86'400'000'000LL, all.back().time_since_epoch().count() - 1);
    for (int i = 0; i < 2000; ++i) {
      const time_point after{punctual::duration{pick(rng)}};
      const auto expected = std::upper_bound(all.begin(), all.end(), after);
      REQUIRE(expected != all.end());
      const auto got = t.next(after);
      INFO(t.to_string() << " after " << punctual::format_iso(after));
      REQUIRE(got);
      REQUIRE(*got == *expected);
    }
    // Independent check of the enumeration: in UTC, fire k is date_of(k) at `at`; in a zone,
    // every fire shows `at` on the local clock except where `at` fell in a gap (then the
    // first instant after the gap, on the same local date).
    for (std::size_t k = 0; k < all.size(); ++k) {
      if (t.zone().is_utc()) {
        const auto d = t.date_of(static_cast<std::int64_t>(k));
        REQUIRE(d);
        REQUIRE(all[k] == time_point{chr::sys_days{*d}} + t.at());
      } else {
        const auto local = t.zone().to_local(all[k]);
        const auto tod = local - chr::floor<chr::days>(local);
        if (tod != t.at()) {
          INFO(punctual::format_iso(all[k], t.zone()));
          REQUIRE(t.zone().resolve(chr::floor<chr::days>(local) + t.at()).kind ==
                  punctual::local_info::nonexistent);
        }
      }
    }
  }
}

TEST_CASE("calendar end date is inclusive; no fire past PUNCTUAL_MAX_YEAR", "[trigger][calendar]") {
  const punctual::calendar_interval_trigger t{{.days = 1}, ymd(2026, 1, 1), 10h, "UTC", {}, ymd(2026, 1, 3)};
  CHECK(fires(t, at("2025-01-01T00:00:00Z"), 10) ==
        std::vector<std::string>{"2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z", "2026-01-03T10:00:00Z"});
  const punctual::calendar_interval_trigger yearly{{.years = 1}, ymd(2026, 7, 1), 0h};
  const auto last = yearly.next(at("2299-01-01T00:00:00Z"));
  CHECK(iso(last) == "2299-07-01T00:00:00Z");
  CHECK_FALSE(yearly.next(*last));
  CHECK_FALSE(yearly.next(time_point::max()));
}

TEST_CASE("calendar DST in Europe/Berlin: gap shift and skip", "[trigger][calendar][dst]") {
  // 2026-03-29: 02:00 -> 03:00 local.
  const punctual::calendar_interval_trigger shift{{.days = 1}, ymd(2026, 3, 27), 2h + 30min, "Europe/Berlin"};
  CHECK(local_fires(shift, "Europe/Berlin", at("2026-03-28T00:00:00Z"), 3) ==
        std::vector<std::string>{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00",
                                 "2026-03-30T02:30:00+02:00"});
  const punctual::calendar_interval_trigger skip{
      {.days = 1}, ymd(2026, 3, 27), 2h + 30min, "Europe/Berlin", {.gap = punctual::dst_gap::skip}};
  CHECK(local_fires(skip, "Europe/Berlin", at("2026-03-28T00:00:00Z"), 2) ==
        std::vector<std::string>{"2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00"});
  // A time outside the gap is unaffected by the policy.
  const punctual::calendar_interval_trigger nine{
      {.days = 1}, ymd(2026, 3, 27), 9h, "Europe/Berlin", {.gap = punctual::dst_gap::skip}};
  CHECK(local_fires(nine, "Europe/Berlin", at("2026-03-28T12:00:00Z"), 2) ==
        std::vector<std::string>{"2026-03-29T09:00:00+02:00", "2026-03-30T09:00:00+02:00"});
}

TEST_CASE("calendar DST in Europe/Berlin: overlap auto, once and twice", "[trigger][calendar][dst]") {
  // 2026-10-25: 03:00 -> 02:00 local, so 02:30 happens at +02:00 and again at +01:00.
  const auto from = at("2026-10-24T12:00:00Z");
  for (auto overlap : {punctual::dst_overlap::automatic, punctual::dst_overlap::once}) {
    const punctual::calendar_interval_trigger t{
        {.days = 1}, ymd(2026, 10, 1), 2h + 30min, "Europe/Berlin", {.overlap = overlap}};
    CHECK(local_fires(t, "Europe/Berlin", from, 2) ==
          std::vector<std::string>{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"});
  }
  const punctual::calendar_interval_trigger twice{
      {.days = 1}, ymd(2026, 10, 1), 2h + 30min, "Europe/Berlin", {.overlap = punctual::dst_overlap::twice}};
  CHECK(local_fires(twice, "Europe/Berlin", from, 3) ==
        std::vector<std::string>{"2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00",
                                 "2026-10-26T02:30:00+01:00"});
  // Asked between the two passes, the second pass is next.
  CHECK(punctual::format_iso(*twice.next(at("2026-10-25T02:45:00+02:00")),
                             punctual::locate_zone("Europe/Berlin")) == "2026-10-25T02:30:00+01:00");
}

TEST_CASE("calendar DST in America/New_York", "[trigger][calendar][dst]") {
  // 2026-03-08: 02:00 -> 03:00; 2026-11-01: 02:00 -> 01:00.
  const punctual::calendar_interval_trigger spring{
      {.weeks = 1}, ymd(2026, 3, 1), 2h + 15min, "America/New_York"};
  CHECK(local_fires(spring, "America/New_York", at("2026-03-02T00:00:00Z"), 2) ==
        std::vector<std::string>{"2026-03-08T03:00:00-04:00", "2026-03-15T02:15:00-04:00"});
  const punctual::calendar_interval_trigger sunday{{.weeks = 1},
                                                   ymd(2026, 10, 18),
                                                   1h + 30min,
                                                   "America/New_York",
                                                   {.overlap = punctual::dst_overlap::twice}};
  CHECK(local_fires(sunday, "America/New_York", at("2026-10-26T00:00:00Z"), 3) ==
        std::vector<std::string>{"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00",
                                 "2026-11-08T01:30:00-05:00"});
  CHECK(iso(sunday.next(at("2026-10-26T00:00:00Z"))) == "2026-11-01T05:30:00Z");
}

TEST_CASE("calendar rejects bad settings", "[trigger][calendar][error]") {
  CHECK_THROWS_AS((punctual::calendar_interval_trigger{{}, ymd(2026, 1, 1)}), parse_error);
  CHECK_THROWS_AS((punctual::calendar_interval_trigger{{.months = 1, .days = 1}, ymd(2026, 1, 1)}),
                  parse_error);
  CHECK_THROWS_AS((punctual::calendar_interval_trigger{{.days = -1}, ymd(2026, 1, 1)}), parse_error);
  CHECK_THROWS_AS((punctual::calendar_interval_trigger{{.days = 1}, ymd(2026, 2, 30)}), parse_error);
  CHECK_THROWS_AS((punctual::calendar_interval_trigger{{.days = 1}, ymd(2026, 1, 1), 24h}), parse_error);
  CHECK_THROWS_AS((punctual::calendar_interval_trigger{{.days = 1}, ymd(2026, 1, 1), 0h, "Mars/Olympus"}),
                  parse_error);
  CHECK_THROWS_AS(
      (punctual::calendar_interval_trigger{{.days = 1}, ymd(2026, 1, 2), 0h, "UTC", {}, ymd(2026, 1, 1)}),
      parse_error);
}

TEST_CASE("calendar canonical text is normalised and complete", "[trigger][calendar][text]") {
  CHECK(punctual::calendar_interval_trigger({.months = 1}, ymd(2026, 1, 31), 9h).to_string() ==
        "calendar:months=1 at=09:00:00 start=2026-01-31");
  CHECK(punctual::calendar_interval_trigger({.months = 14}, ymd(2026, 1, 31), 9h).to_string() ==
        "calendar:years=1 months=2 at=09:00:00 start=2026-01-31");
  CHECK(
      punctual::calendar_interval_trigger({.days = 15}, ymd(2026, 1, 1), 9h + 1s + 500ms, "Europe/Berlin",
                                          {punctual::dst_gap::skip, punctual::dst_overlap::twice},
                                          ymd(2027, 1, 1))
          .to_string() ==
      "calendar:weeks=2 days=1 at=09:00:01.500000 start=2026-01-01 end=2027-01-01 tz=Europe/Berlin gap=skip "
      "overlap=twice");
  const auto p = punctual::calendar_interval_trigger::parse_canonical(
      "overlap=once tz=America/New_York start=2026-03-01 days=14 at=07:05");
  CHECK(p.to_string() == "calendar:weeks=2 at=07:05:00 start=2026-03-01 tz=America/New_York overlap=once");
  CHECK(p.days() == 14);
  CHECK(p.at() == 7h + 5min);
  CHECK(p.policy() == punctual::dst_policy{punctual::dst_gap::shift, punctual::dst_overlap::once});
}

TEST_CASE("calendar text errors name field, column and reason", "[trigger][calendar][error]") {
  struct bad {
    std::string text;
    std::string where;  // text whose first occurrence is the expected column
    std::string field;
  };
  const std::vector<bad> cases = {
      {"calendar:months=1 days=2 start=2026-01-01", "days", "calendar trigger"},
      {"calendar:months=0 start=2026-01-01", "months", "calendar trigger"},
      {"calendar:months=x start=2026-01-01", "x", "calendar trigger"},
      {"calendar:months=1 start=2026-01-01 every=3", "every", "calendar trigger"},
      {"calendar:months=1 start=2026-01-01 months=2", "months=2", "calendar trigger"},
      {"calendar:months=1 start=2026-02-30", "30", "ISO 8601 time"},
      {"calendar:months=1 start=2026-02-03T10:00", "2026-02-03T", "calendar trigger"},
      {"calendar:months=1 at=25:00 start=2026-01-01", "25", "time of day"},
      {"calendar:months=1 at=09:7 start=2026-01-01", "7", "time of day"},
      {"calendar:months=1 start=2026-01-01 tz=Mars/Olympus", "Mars", "time zone"},
      {"calendar:months=1 start=2026-01-01 gap=later", "later", "calendar trigger"},
      {"calendar:months=1 start=2026-01-01 overlap=", "overlap", "calendar trigger"},
      {"calendar:months=1 start=2026-01-02 end=2026-01-01", "end=", "calendar trigger"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    const auto e = parse_fails(c.text);
    CHECK(e.field() == c.field);
    CHECK(e.column() == column_of(c.text, c.where) + (c.where == "overlap" ? 8 : 0));
    CHECK_FALSE(e.reason().empty());
  }
  CHECK(parse_fails("calendar:start=2026-01-01").reason().find("years=") != std::string::npos);
  CHECK(parse_fails("calendar:days=1").reason().find("start=") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// combinators

TEST_CASE("any_of fires at the earliest child fire, shared instants once", "[trigger][combine]") {
  const punctual::any_of_trigger t{{punctual::interval_trigger{2h}, punctual::interval_trigger{3h},
                                    punctual::once_trigger{at("2026-01-01T00:30:00Z")}}};
  CHECK(fires(t, at("2026-01-01T00:00:00Z"), 6) ==
        std::vector<std::string>{"2026-01-01T00:30:00Z", "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z",
                                 "2026-01-01T04:00:00Z", "2026-01-01T06:00:00Z", "2026-01-01T08:00:00Z"});
}

TEST_CASE("any_of ends when every child has ended", "[trigger][combine]") {
  const punctual::any_of_trigger t{{punctual::once_trigger{at("2026-01-01T00:00:00Z")},
                                    punctual::once_trigger{at("2026-01-02T00:00:00Z")}}};
  CHECK(fires(t, at("2025-01-01T00:00:00Z"), 5) ==
        std::vector<std::string>{"2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"});
}

TEST_CASE("all_of fires only where every child fires", "[trigger][combine]") {
  const punctual::all_of_trigger t{{punctual::interval_trigger{2h}, punctual::interval_trigger{3h}}};
  CHECK(fires(t, at("2026-01-01T00:00:00Z"), 3) ==
        std::vector<std::string>{"2026-01-01T06:00:00Z", "2026-01-01T12:00:00Z", "2026-01-01T18:00:00Z"});
  // The 31st of a month that is also every-10-days from Jan 1 2026 (Jan 31, then ...).
  const punctual::all_of_trigger dates{
      {punctual::calendar_interval_trigger{{.months = 1}, ymd(2026, 1, 31), 0h},
       punctual::calendar_interval_trigger{{.days = 10}, ymd(2026, 1, 1), 0h}}};
  const auto f = dates.next(at("2026-01-01T00:00:00Z"));
  REQUIRE(f);
  CHECK(iso(f) == "2026-01-31T00:00:00Z");
  const auto g = dates.next(*f);
  REQUIRE(g);
  // Every common fire is a fire of both children.
  for (const auto& child : dates.children()) CHECK(child.next(*g - 1us) == g);
  const punctual::all_of_trigger aligned{
      {punctual::once_trigger{at("2026-01-01T05:00:00Z")}, punctual::interval_trigger{1h}}};
  CHECK(iso(aligned.next(at("2026-01-01T00:00:00Z"))) == "2026-01-01T05:00:00Z");
  const punctual::all_of_trigger unaligned{
      {punctual::once_trigger{at("2026-01-01T05:00:01Z")}, punctual::interval_trigger{1h}}};
  CHECK_FALSE(unaligned.next(at("2026-01-01T00:00:00Z")));
}

TEST_CASE("all_of gives up after max_rounds instead of looping forever", "[trigger][combine]") {
  // Two hourly intervals one second apart never coincide.
  const punctual::all_of_trigger t{
      {punctual::interval_trigger{1h}, punctual::interval_trigger{1h, at("1970-01-01T00:00:01Z")}}};
  CHECK_FALSE(t.next(at("2026-01-01T00:00:00Z")));
  // Coinciding only after more than max_rounds rounds also counts as never.
  const punctual::all_of_trigger far{{punctual::interval_trigger{1h}, punctual::interval_trigger{1h + 1us}}};
  CHECK_FALSE(far.next(at("1970-01-01T00:00:00Z")));
}

TEST_CASE("combinators reject empty children", "[trigger][combine][error]") {
  CHECK_THROWS_AS(punctual::any_of_trigger{std::vector<punctual::trigger>{}}, parse_error);
  CHECK_THROWS_AS(punctual::all_of_trigger{std::vector<punctual::trigger>{punctual::trigger{}}}, parse_error);
  CHECK(parse_fails("any_of()").column() == 8);
  CHECK(parse_fails("all_of(interval:1h;)").column() == 20);
}

TEST_CASE("combinator text nests and reports nested columns", "[trigger][combine][text]") {
  const punctual::any_of_trigger t{
      {punctual::interval_trigger{1h},
       punctual::all_of_trigger{
           {punctual::once_trigger{at("2026-01-01T00:00:00Z")}, punctual::interval_trigger{2h}}}}};
  CHECK(t.to_string() == "any_of(interval:1h; all_of(once:2026-01-01T00:00:00Z; interval:2h))");
  {
    const std::string text = "any_of(interval:1h; all_of(once:2026-01-01T00:00:00Z; interval:0s))";
    const auto e = parse_fails(text);
    CHECK(e.field() == "interval trigger");
    CHECK(e.column() == column_of(text, "0s"));
  }
  {
    const std::string text = "any_of(interval:1h; interval:2h";
    const auto e = parse_fails(text);
    CHECK(e.field() == "any_of trigger");
    CHECK(e.reason().find("')'") != std::string::npos);
  }
  {
    const std::string text = "all_of(interval:1h) interval:2h";
    CHECK(parse_fails(text).column() == column_of(text, " interval:2h"));
  }
  {
    std::string deep = "interval:1h";
    for (int i = 0; i < 40; ++i) deep = "any_of(" + deep + ")";
    CHECK(parse_fails(deep).reason().find("nest") != std::string::npos);
    std::string ok = "interval:1h";
    for (int i = 0; i < 20; ++i) ok = "all_of(" + ok + ")";
    CHECK(punctual::parse_trigger(ok).to_string() == ok);
  }
}

// ---------------------------------------------------------------------------------------------
// jitter

TEST_CASE("jitter multiply-shift matches 128-bit arithmetic", "[trigger][jitter]") {
  __extension__ using u128 = unsigned __int128;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t a = rng(), b = i % 3 == 0 ? ~std::uint64_t{0} : rng() >> (i % 64);
    REQUIRE(punctual::detail::mul_high(a, b) == static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64));
  }
}

TEST_CASE("jitter stays within [fire, min(fire + max, next - 1us)]", "[trigger][jitter]") {
  const auto fire = at("2026-01-01T00:00:00Z");
  std::mt19937_64 rng(2024);
  for (const auto max : {punctual::duration{1}, punctual::duration{10s}, punctual::duration{1h}}) {
    for (const std::optional<time_point> next :
         {std::optional<time_point>{}, std::optional<time_point>{fire + 5s},
          std::optional<time_point>{fire + 2us}}) {
      time_point lo = time_point::max(), hi = time_point::min();
      const auto bound = next ? std::min(fire + max, *next - 1us) : fire + max;
      for (int i = 0; i < 20000; ++i) {
        const auto j = punctual::apply_jitter(fire, next, max, rng());
        REQUIRE(j >= fire);
        REQUIRE(j <= bound);
        lo = std::min(lo, j);
        hi = std::max(hi, j);
      }
      // Both ends are reachable: the extremes of the random range map to them.
      CHECK(punctual::apply_jitter(fire, next, max, 0) == fire);
      CHECK(punctual::apply_jitter(fire, next, max, ~std::uint64_t{0}) == bound);
      // And the samples spread over the whole range.
      CHECK(lo - fire <= (bound - fire) / 100);
      CHECK(bound - hi <= (bound - fire) / 100);
    }
  }
}

TEST_CASE("jitter is uniform and deterministic", "[trigger][jitter]") {
  const auto fire = at("2026-01-01T00:00:00Z");
  const auto max = punctual::duration{10s};
  std::mt19937_64 rng(99);
  std::array<int, 10> buckets{};
  constexpr int samples = 100000;
  for (int i = 0; i < samples; ++i) {
    const auto r = rng();
    const auto j = punctual::apply_jitter(fire, std::nullopt, max, r);
    REQUIRE(j == punctual::apply_jitter(fire, std::nullopt, max, r));
    const auto bucket = static_cast<std::size_t>((j - fire) * 10 / (max + 1us));
    ++buckets[bucket];
  }
  for (int b : buckets) CHECK(std::abs(b - samples / 10) < samples / 100);
}

TEST_CASE("jitter leaves the fire alone when there is no room", "[trigger][jitter]") {
  const auto fire = at("2026-01-01T00:00:00Z");
  CHECK(punctual::apply_jitter(fire, std::nullopt, 0s, 12345) == fire);
  CHECK(punctual::apply_jitter(fire, std::nullopt, -5s, 12345) == fire);
  CHECK(punctual::apply_jitter(fire, fire + 1us, 5s, ~std::uint64_t{0}) == fire);
  CHECK(punctual::apply_jitter(fire, fire, 5s, ~std::uint64_t{0}) == fire);
  CHECK(punctual::apply_jitter(fire, fire - 1s, 5s, ~std::uint64_t{0}) == fire);
  CHECK(punctual::apply_jitter(time_point::max() - 3us, std::nullopt, 1h, ~std::uint64_t{0}) ==
        time_point::max());
}

TEST_CASE("jitter with a random generator is bounded and reproducible", "[trigger][jitter]") {
  const auto fire = at("2026-01-01T00:00:00Z");
  std::mt19937_64 a(5), b(5);
  std::minstd_rand small(5);  // a generator narrower than 64 bits
  for (int i = 0; i < 1000; ++i) {
    const auto x = punctual::apply_jitter(fire, fire + 3s, 10s, a);
    CHECK(x == punctual::apply_jitter(fire, fire + 3s, 10s, b));
    CHECK(x >= fire);
    CHECK(x < fire + 3s);
    const auto y = punctual::apply_jitter(fire, std::nullopt, 10s, small);
    CHECK(y >= fire);
    CHECK(y <= fire + 10s);
  }
}

// ---------------------------------------------------------------------------------------------
// parse_trigger

TEST_CASE("parse_trigger dispatches on the prefix", "[trigger][parse]") {
  CHECK(punctual::parse_trigger("interval:30s").target<punctual::interval_trigger>() != nullptr);
  CHECK(punctual::parse_trigger("once:2026-01-01T00:00:00Z").target<punctual::once_trigger>() != nullptr);
  CHECK(punctual::parse_trigger("calendar:days=1 start=2026-01-01")
            .target<punctual::calendar_interval_trigger>() != nullptr);
  CHECK(punctual::parse_trigger("any_of(interval:1s)").target<punctual::any_of_trigger>() != nullptr);
  CHECK(punctual::parse_trigger("all_of(interval:1s)").target<punctual::all_of_trigger>() != nullptr);
  CHECK(punctual::parse_trigger("cron:0 9 * * *").target<punctual::cron_trigger>() != nullptr);
  CHECK(punctual::parse_trigger("  interval:30s  ").target<punctual::interval_trigger>() != nullptr);
}

TEST_CASE("parse_trigger reads text without a prefix as a cron expression in UTC", "[trigger][parse]") {
  const auto t = punctual::parse_trigger("0 9 * * MON-FRI");
  REQUIRE(t.target<punctual::cron_trigger>() != nullptr);
  CHECK((t == punctual::trigger(punctual::cron_trigger("0 9 * * MON-FRI", "UTC", {}))));
  // Friday 2026-01-02 -> Monday 2026-01-05 09:00 UTC.
  CHECK(iso(t.next(at("2026-01-02T10:00:00Z"))) == "2026-01-05T09:00:00Z");
  CHECK(iso(punctual::parse_trigger("@daily").next(at("2026-01-02T10:00:00Z"))) == "2026-01-03T00:00:00Z");
}

TEST_CASE("parse_trigger rejects unknown kinds, listing the known ones", "[trigger][parse][error]") {
  for (const std::string text : {"every:30s", "  weekly(MON)", "Interval:30s"}) {
    INFO(text);
    const auto e = parse_fails(text);
    CHECK(e.field() == "trigger kind");
    CHECK(e.column() == text.find_first_not_of(' ') + 1);
    for (const char* kind : {"cron:", "interval:", "once:", "calendar:", "any_of", "all_of"})
      CHECK(e.reason().find(kind) != std::string::npos);
  }
  CHECK(parse_fails("").reason() == "is empty");
  CHECK(parse_fails("   ").field() == "trigger");
}

TEST_CASE("parse_trigger columns count from the start of the whole text", "[trigger][parse][error]") {
  {
    const std::string text = "cron:61 * * * *";
    const auto e = parse_fails(text);
    CHECK(e.column() == column_of(text, "61"));
    CHECK(std::string(e.what()).find("\"" + text + "\"") != std::string::npos);
  }
  {
    const std::string text = "61 * * * *";
    CHECK(parse_fails(text).column() == 1);
  }
  {
    const std::string text = "  any_of(cron:0 9 * * *; 0 61 * * *)";
    CHECK(parse_fails(text).column() == column_of(text, "61"));
  }
  {
    const std::string text = "all_of(cron:0 9 * * * tz=Mars/Olympus; interval:1h)";
    const auto e = parse_fails(text);
    CHECK(e.field() == "time zone");
    CHECK(e.column() >= column_of(text, "tz="));
    CHECK(e.column() <= column_of(text, "Mars"));
  }
}

TEST_CASE("parse_trigger(t.to_string()) == t for every kind", "[trigger][parse][text]") {
  const std::vector<std::string> sources = {
      "interval:30s",
      "interval:1h30m start=2026-01-01T00:00:00Z",
      "interval:250ms end=2026-01-01T00:00:00.000001Z",
      "interval:1d start=2026-01-01T00:00:00-05:00 end=2027-01-01T00:00:00+14:00",
      "once:2026-03-29T03:00:00+02:00",
      "once:1970-01-01T00:00:00Z",
      "calendar:months=1 at=09:00:00 start=2026-01-31",
      "calendar:years=2 months=6 at=23:59:59.999999 start=2024-02-29 end=2099-12-31",
      "calendar:days=21 start=2026-01-01 tz=Europe/Berlin gap=skip overlap=twice",
      "calendar:weeks=1 days=1 at=01:30 start=2026-10-01 tz=America/New_York overlap=once",
      "calendar:years=1 start=2026-01-01 tz=UTC gap=shift overlap=auto",
      "0 9 * * MON-FRI",
      "*/15 * * * *",
      "@hourly",
      "cron:0 9 * * MON-FRI",
      "0 0 L * *",
      "any_of(interval:1h; once:2026-01-01T00:00:00Z)",
      "all_of(0 0 13 * *; 0 0 * * FRI)",
      "any_of(all_of(interval:2h; interval:3h); any_of(calendar:months=3 start=2026-01-01; "
      "once:2030-01-01T00:00:00Z); "
      "*/5 * * * *)",
  };
  for (const auto& s : sources) {
    INFO(s);
    const auto t = punctual::parse_trigger(s);
    const auto text = t.to_string();
    const auto again = punctual::parse_trigger(text);
    CHECK((again == t));
    CHECK(again.to_string() == text);
    // Same behaviour, too.
    auto a = at("2026-01-01T00:00:00Z");
    for (int i = 0; i < 5; ++i) {
      const auto x = t.next(a), y = again.next(a);
      CHECK(x == y);
      if (!x) break;
      a = *x;
    }
  }
  // Built from code, too.
  const punctual::trigger built = punctual::any_of_trigger{
      {punctual::calendar_interval_trigger{
           {.months = 1}, ymd(2026, 1, 31), 9h, "Europe/Berlin", {.gap = punctual::dst_gap::skip}},
       punctual::all_of_trigger{{punctual::interval_trigger{90s, at("2026-01-01T00:00:00Z")},
                                 punctual::cron_trigger("0 0 * * *", "Europe/Berlin", {})}}}};
  CHECK((punctual::parse_trigger(built.to_string()) == built));
}
