// cron_trigger: syntax, semantics, errors, DST policy, canonical text.

#include "punctual/trigger/cron.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "punctual/detail/cron_spec.hpp"
#include "punctual/detail/cron_walk.hpp"
#include "punctual/error.hpp"
#include "punctual/time.hpp"
#include "punctual/trigger/trigger.hpp"
#include "punctual/zone.hpp"

namespace {

using punctual::cron_trigger;
using punctual::dst_gap;
using punctual::dst_overlap;
using punctual::dst_policy;
using punctual::parse_error;
using punctual::time_point;
using namespace std::chrono_literals;

time_point at(std::string_view iso) { return punctual::parse_iso(iso); }

std::string show(const std::optional<time_point>& t, const punctual::time_zone& z) {
  if (!t) return "never";
  return z.is_utc() ? punctual::format_iso(*t) : punctual::format_iso(*t, z);
}

// The next `n` fire times after `from`, each formatted in the trigger's zone.
std::vector<std::string> fires(const cron_trigger& t, std::string_view from, int n) {
  std::vector<std::string> out;
  std::optional<time_point> cur = at(from);
  for (int i = 0; i < n; ++i) {
    cur = t.next(*cur);
    out.push_back(show(cur, t.zone()));
    if (!cur) break;
  }
  return out;
}

std::string first(std::string_view expr, std::string_view from) {
  const cron_trigger t(expr);
  return show(t.next(at(from)), t.zone());
}

struct expected_error {
  std::string field;
  std::string text;
  std::size_t column;
  std::string reason;  // the reason must start with this
};

expected_error error_of(std::string_view expr) {
  try {
    const cron_trigger t(expr);
  } catch (const parse_error& e) {
    return {e.field(), e.text(), e.column(), e.reason()};
  }
  return {"(accepted)", "", 0, ""};
}

void check_error(std::string_view expr, const expected_error& want) {
  INFO("expression: \"" << expr << "\"");
  const expected_error got = error_of(expr);
  CHECK(got.field == want.field);
  CHECK(got.text == want.text);
  CHECK(got.column == want.column);
  CHECK(got.reason.substr(0, want.reason.size()) == want.reason);
}

punctual::detail::cron_spec spec_of(std::string_view expr) {
  punctual::detail::cron_token tokens[8];
  const std::size_t n = punctual::detail::cron_split(expr, tokens, 8);
  return punctual::detail::cron_parser(expr).parse(tokens, n);
}

}  // namespace

static_assert(punctual::trigger_like<cron_trigger>);

// ---------------------------------------------------------------------------------------------
// syntax

TEST_CASE("cron: five fields fire at second 0, six put seconds first, seven add the year", "[cron]") {
  CHECK(first("5 9 * * *", "2026-01-01T00:00:00Z") == "2026-01-01T09:05:00Z");
  CHECK(first("30 5 9 * * *", "2026-01-01T00:00:00Z") == "2026-01-01T09:05:30Z");
  CHECK(first("30 5 9 * * * 2027", "2026-01-01T00:00:00Z") == "2027-01-01T09:05:30Z");
  CHECK(fires(cron_trigger("*/20 * * * * *"), "2026-01-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-01T00:00:20Z", "2026-01-01T00:00:40Z", "2026-01-01T00:01:00Z",
                                 "2026-01-01T00:01:20Z"});
}

TEST_CASE("cron: next() is strictly after, also for instants between whole seconds", "[cron]") {
  const cron_trigger t("0 9 * * *");
  CHECK(show(t.next(at("2026-01-01T09:00:00Z")), t.zone()) == "2026-01-02T09:00:00Z");
  CHECK(show(t.next(at("2026-01-01T08:59:59.999999Z")), t.zone()) == "2026-01-01T09:00:00Z");
  CHECK(show(t.next(at("2026-01-01T09:00:00.000001Z")), t.zone()) == "2026-01-02T09:00:00Z");
  const cron_trigger s("* * * * * *");
  CHECK(show(s.next(at("2026-01-01T09:00:00.5Z")), s.zone()) == "2026-01-01T09:00:01Z");
}

TEST_CASE("cron: ranges, steps and lists", "[cron]") {
  CHECK(fires(cron_trigger("10-12 0 * * *"), "2026-01-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-01T00:10:00Z", "2026-01-01T00:11:00Z", "2026-01-01T00:12:00Z",
                                 "2026-01-02T00:10:00Z"});
  // a/n: from a to the end of the range
  CHECK(fires(cron_trigger("50/4 0 * * *"), "2026-01-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-01T00:50:00Z", "2026-01-01T00:54:00Z", "2026-01-01T00:58:00Z",
                                 "2026-01-02T00:50:00Z"});
  // a-b/n
  CHECK(fires(cron_trigger("0 1-10/4 * * *"), "2026-01-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-01T01:00:00Z", "2026-01-01T05:00:00Z", "2026-01-01T09:00:00Z",
                                 "2026-01-02T01:00:00Z"});
  // lists mixing all forms
  CHECK(fires(cron_trigger("0 0 1,10-11,*/15 * *"), "2026-02-01T00:00:00Z", 5) ==
        std::vector<std::string>{"2026-02-10T00:00:00Z", "2026-02-11T00:00:00Z", "2026-02-16T00:00:00Z",
                                 "2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z"});
  // */n on day-of-month starts at 1, on months at 1 (January)
  CHECK(fires(cron_trigger("0 0 1 */5 *"), "2026-01-01T00:00:00Z", 3) ==
        std::vector<std::string>{"2026-06-01T00:00:00Z", "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z"});
  // a step as large as the range selects only its start
  CHECK(fires(cron_trigger("*/60 * * * *"), "2026-01-01T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"});
}

TEST_CASE("cron: reversed ranges wrap around the field's cycle", "[cron]") {
  CHECK(fires(cron_trigger("0 22-2 * * *"), "2026-01-01T12:00:00Z", 6) ==
        std::vector<std::string>{"2026-01-01T22:00:00Z", "2026-01-01T23:00:00Z", "2026-01-02T00:00:00Z",
                                 "2026-01-02T01:00:00Z", "2026-01-02T02:00:00Z", "2026-01-02T22:00:00Z"});
  CHECK(fires(cron_trigger("0 22-2/2 * * *"), "2026-01-01T12:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-01T22:00:00Z", "2026-01-02T00:00:00Z", "2026-01-02T02:00:00Z",
                                 "2026-01-02T22:00:00Z"});
  // FRI-MON: Friday, Saturday, Sunday, Monday (2026-01-01 is a Thursday)
  CHECK(fires(cron_trigger("0 0 * * FRI-MON"), "2026-01-01T00:00:00Z", 5) ==
        std::vector<std::string>{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z",
                                 "2026-01-05T00:00:00Z", "2026-01-09T00:00:00Z"});
  CHECK(fires(cron_trigger("0 0 30-2 * *"), "2026-01-15T00:00:00Z", 5) ==
        std::vector<std::string>{"2026-01-30T00:00:00Z", "2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z",
                                 "2026-02-02T00:00:00Z", "2026-03-01T00:00:00Z"});
  CHECK(fires(cron_trigger("0 0 1 NOV-FEB *"), "2026-03-01T00:00:00Z", 5) ==
        std::vector<std::string>{"2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z",
                                 "2027-02-01T00:00:00Z", "2027-11-01T00:00:00Z"});
  check_error("0 0 0 * * * 2030-2020", {"year field", "2030-2020", 13, "reversed range 2030-2020"});
}

TEST_CASE("cron: month and day names in any case, 0 and 7 are Sunday", "[cron]") {
  CHECK(first("0 0 1 feb *", "2026-01-01T00:00:00Z") == "2026-02-01T00:00:00Z");
  CHECK(first("0 0 1 Dec *", "2026-01-01T00:00:00Z") == "2026-12-01T00:00:00Z");
  CHECK(first("0 0 1 jan-MAR/2 *", "2026-01-01T00:00:00Z") == "2026-03-01T00:00:00Z");
  CHECK(first("0 0 * * sun", "2026-01-01T00:00:00Z") == "2026-01-04T00:00:00Z");
  CHECK(first("0 0 * * 0", "2026-01-01T00:00:00Z") == "2026-01-04T00:00:00Z");
  CHECK(first("0 0 * * 7", "2026-01-01T00:00:00Z") == "2026-01-04T00:00:00Z");
  CHECK(first("0 0 * * Wed", "2026-01-01T00:00:00Z") == "2026-01-07T00:00:00Z");
  CHECK(fires(cron_trigger("0 0 * * 5-7"), "2026-01-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z",
                                 "2026-01-09T00:00:00Z"});
  CHECK(fires(cron_trigger("0 0 * * */2"), "2026-01-01T00:00:00Z", 4) ==  // Sun, Tue, Thu, Sat
        std::vector<std::string>{"2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-06T00:00:00Z",
                                 "2026-01-08T00:00:00Z"});
}

TEST_CASE("cron: '?' is '*' in the day fields", "[cron]") {
  CHECK(first("0 0 ? * MON", "2026-01-01T00:00:00Z") == "2026-01-05T00:00:00Z");
  CHECK(first("0 0 13 * ?", "2026-01-01T00:00:00Z") == "2026-01-13T00:00:00Z");
  CHECK(first("0 0 ? * ?", "2026-01-01T00:00:00Z") == "2026-01-02T00:00:00Z");
}

TEST_CASE("cron: macros", "[cron]") {
  const std::pair<const char*, const char*> cases[] = {
      {"@yearly", "2027-01-01T00:00:00Z"},  {"@annually", "2027-01-01T00:00:00Z"},
      {"@monthly", "2026-06-01T00:00:00Z"}, {"@weekly", "2026-05-17T00:00:00Z"},
      {"@daily", "2026-05-16T00:00:00Z"},   {"@midnight", "2026-05-16T00:00:00Z"},
      {"@hourly", "2026-05-15T13:00:00Z"},  {"@DAILY", "2026-05-16T00:00:00Z"},
      {"@Hourly", "2026-05-15T13:00:00Z"},
  };
  for (const auto& [macro, want] : cases) {
    INFO(macro);
    CHECK(first(macro, "2026-05-15T12:30:00Z") == want);  // a Friday
    CHECK(cron_trigger(std::string("  ") + macro + " ").expression() == macro);
  }
  check_error("@reboot", {"cron expression", "@reboot", 1, "@reboot is not supported"});
  check_error("@fortnightly", {"cron expression", "@fortnightly", 1, "unknown macro @fortnightly"});
  check_error("@daily 5", {"cron expression", "5", 8, "a macro such as @daily must stand alone"});
}

// ---------------------------------------------------------------------------------------------
// day-of-month and day-of-week specials

TEST_CASE("cron: L is the last day of every month length", "[cron]") {
  CHECK(fires(cron_trigger("0 0 L * *"), "2026-01-15T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z",
                                 "2026-04-30T00:00:00Z"});
  CHECK(first("0 0 L 2 *", "2028-01-01T00:00:00Z") == "2028-02-29T00:00:00Z");
  CHECK(first("0 0 L 2 *", "2100-01-01T00:00:00Z") == "2100-02-28T00:00:00Z");  // 2100 is not a leap year
  CHECK(first("0 0 L 2 *", "2000-01-01T00:00:00Z") == "2000-02-29T00:00:00Z");  // 2000 is
  // L-n: n days before the last day
  CHECK(fires(cron_trigger("0 0 L-2 * *"), "2026-01-01T00:00:00Z", 3) ==
        std::vector<std::string>{"2026-01-29T00:00:00Z", "2026-02-26T00:00:00Z", "2026-03-29T00:00:00Z"});
  CHECK(first("0 0 L-0 * *", "2026-01-01T00:00:00Z") == "2026-01-31T00:00:00Z");
  // L-30 only exists in 31-day months (day 1)
  CHECK(fires(cron_trigger("0 0 L-30 * *"), "2026-01-02T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z"});
}

TEST_CASE("cron: LW is the last weekday of the month", "[cron]") {
  // Jan 2026 ends on a Saturday, Feb 2026 on a Saturday, May 2026 on a Sunday, Aug 2026 on a Monday
  CHECK(fires(cron_trigger("0 0 LW * *"), "2026-01-01T00:00:00Z", 8) ==
        std::vector<std::string>{"2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-31T00:00:00Z",
                                 "2026-04-30T00:00:00Z", "2026-05-29T00:00:00Z", "2026-06-30T00:00:00Z",
                                 "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"});
}

TEST_CASE("cron: nW is the weekday nearest to day n, never leaving the month", "[cron]") {
  // Aug 1 2026 is a Saturday: Monday the 3rd (not Friday July 31)
  CHECK(first("0 0 1W 8 *", "2026-01-01T00:00:00Z") == "2026-08-03T00:00:00Z");
  // Feb 1 2026 is a Sunday: Monday the 2nd
  CHECK(first("0 0 1W 2 *", "2026-01-01T00:00:00Z") == "2026-02-02T00:00:00Z");
  // May 31 2026 is a Sunday: Friday the 29th (not Monday June 1)
  CHECK(first("0 0 31W 5 *", "2026-01-01T00:00:00Z") == "2026-05-29T00:00:00Z");
  // Saturday -> Friday before, Sunday -> Monday after, weekday -> itself
  CHECK(first("0 0 14W 2 *", "2026-01-01T00:00:00Z") == "2026-02-13T00:00:00Z");  // Sat 14
  CHECK(first("0 0 15W 2 *", "2026-01-01T00:00:00Z") == "2026-02-16T00:00:00Z");  // Sun 15
  CHECK(first("0 0 16W 2 *", "2026-01-01T00:00:00Z") == "2026-02-16T00:00:00Z");  // Mon 16
  // 31W matches nothing in months without a 31st
  CHECK(fires(cron_trigger("0 0 31W * *"), "2026-03-31T00:00:00Z", 3) ==
        std::vector<std::string>{"2026-05-29T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"});
  // 30W in Feb never matches, so this can never fire
  check_error("0 0 30W 2 *", {"cron expression", "0 0 30W 2 *", 0, "can never fire"});
}

TEST_CASE("cron: xL is the last weekday x of the month, x#n the n-th", "[cron]") {
  CHECK(fires(cron_trigger("0 0 * * 5L"), "2026-01-01T00:00:00Z", 3) ==
        std::vector<std::string>{"2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-27T00:00:00Z"});
  CHECK(first("0 0 * * FRIL", "2026-01-01T00:00:00Z") == "2026-01-30T00:00:00Z");
  CHECK(first("0 0 * * friL", "2026-01-01T00:00:00Z") == "2026-01-30T00:00:00Z");
  CHECK(first("0 0 * * 0L", "2026-01-01T00:00:00Z") == "2026-01-25T00:00:00Z");
  CHECK(first("0 0 * * 7L", "2026-01-01T00:00:00Z") == "2026-01-25T00:00:00Z");
  CHECK(fires(cron_trigger("0 0 * * MON#2"), "2026-01-01T00:00:00Z", 3) ==
        std::vector<std::string>{"2026-01-12T00:00:00Z", "2026-02-09T00:00:00Z", "2026-03-09T00:00:00Z"});
  CHECK(first("0 0 * * 1#1", "2026-02-01T00:00:00Z") == "2026-02-02T00:00:00Z");
  // a fifth Friday only exists in some months: January and May 2026
  CHECK(fires(cron_trigger("0 0 * * 5#5"), "2026-01-01T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-01-30T00:00:00Z", "2026-05-29T00:00:00Z"});
  // lists of specials
  CHECK(fires(cron_trigger("0 0 * * 1#1,5L"), "2026-01-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-05T00:00:00Z", "2026-01-30T00:00:00Z", "2026-02-02T00:00:00Z",
                                 "2026-02-27T00:00:00Z"});
  CHECK(fires(cron_trigger("0 0 1,L,15W * *"), "2026-02-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-02-16T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z",
                                 "2026-03-16T00:00:00Z"});
}

TEST_CASE("cron: a lone L in day-of-week is Saturday, the last day of the week", "[cron]") {
  CHECK(fires(cron_trigger("0 0 * * L"), "2026-01-01T00:00:00Z", 3) ==
        std::vector<std::string>{"2026-01-03T00:00:00Z", "2026-01-10T00:00:00Z", "2026-01-17T00:00:00Z"});
  CHECK(first("0 0 ? * l", "2026-01-01T00:00:00Z") == "2026-01-03T00:00:00Z");
}

TEST_CASE("cron: restricted day-of-month and day-of-week match with OR", "[cron]") {
  // every 13th and every Friday (Fri 2, Fri 9, Tue 13, Fri 16)
  CHECK(fires(cron_trigger("0 0 13 * FRI"), "2026-01-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z",
                                 "2026-01-16T00:00:00Z"});
  // one '*' (or '?') lets the other decide alone
  CHECK(fires(cron_trigger("0 0 13 * *"), "2026-01-01T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z"});
  CHECK(fires(cron_trigger("0 0 * * FRI"), "2026-01-01T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z"});
  // specials take part in the OR as well: the last day or any Sunday
  CHECK(fires(cron_trigger("0 0 L * SUN"), "2026-01-20T00:00:00Z", 3) ==
        std::vector<std::string>{"2026-01-25T00:00:00Z", "2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z"});
  // a full range still counts as restricted (as in Vixie cron): every day
  CHECK(fires(cron_trigger("0 0 13 * 0-6"), "2026-01-01T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"});
  // ranges and lists are restricted too: every 1st to 3rd and every Friday
  CHECK(fires(cron_trigger("0 0 1-3 * 5"), "2026-01-01T00:00:00Z", 5) ==
        std::vector<std::string>{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-09T00:00:00Z",
                                 "2026-01-16T00:00:00Z", "2026-01-23T00:00:00Z"});
}

TEST_CASE("cron: a day field starting with '*' is unrestricted, so both day fields must match", "[cron]") {
  // Vixie cron / cronie: `*/2` in day-of-week does not make the OR apply; the 13ths that are a
  // Sunday, Tuesday, Thursday or Saturday (Tue Jan 13, Sat Jun 13, Thu Aug 13, Sun Sep 13, ...)
  CHECK(fires(cron_trigger("0 0 13 * */2"), "2026-01-01T00:00:00Z", 5) ==
        std::vector<std::string>{"2026-01-13T00:00:00Z", "2026-06-13T00:00:00Z", "2026-08-13T00:00:00Z",
                                 "2026-09-13T00:00:00Z", "2026-10-13T00:00:00Z"});
  // the Fridays that are a 1st, 11th, 21st or 31st
  CHECK(fires(cron_trigger("0 0 */10 * FRI"), "2026-01-01T00:00:00Z", 6) ==
        std::vector<std::string>{"2026-05-01T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-21T00:00:00Z",
                                 "2026-09-11T00:00:00Z", "2026-12-11T00:00:00Z", "2027-01-01T00:00:00Z"});
  // both star-prefixed: odd days that are a Sunday or Wednesday (*/3: Sun, Wed, Sat) ...
  CHECK(fires(cron_trigger("0 0 */2 * */3"), "2026-01-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-03T00:00:00Z", "2026-01-07T00:00:00Z", "2026-01-11T00:00:00Z",
                                 "2026-01-17T00:00:00Z"});
  // ... while the same values written without '*' are restricted: either matches
  CHECK(fires(cron_trigger("0 0 1-31/2 * 0-6/3"), "2026-01-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-05T00:00:00Z",
                                 "2026-01-07T00:00:00Z"});
  // a list that starts with '*' is unrestricted as well (and matches every day)
  CHECK(fires(cron_trigger("0 0 *,13 * FRI"), "2026-01-01T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z"});
  // specials in the other field take part in the AND: the last day of the month, if it is a
  // Sunday or Saturday (*/6)
  CHECK(fires(cron_trigger("0 0 L * */6"), "2026-01-01T00:00:00Z", 4) ==
        std::vector<std::string>{"2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z", "2026-05-31T00:00:00Z",
                                 "2026-10-31T00:00:00Z"});
  // '?' is unrestricted exactly like '*'
  CHECK(fires(cron_trigger("0 0 13 * ?"), "2026-01-01T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z"});
  CHECK(fires(cron_trigger("0 0 ? * */2"), "2026-01-01T00:00:00Z", 3) ==
        std::vector<std::string>{"2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-06T00:00:00Z"});
}

// An independent statement of each special's meaning, checked day by day over 14 years.
TEST_CASE("cron: day specials agree with a day-by-day reference over many years", "[cron]") {
  using namespace std::chrono;
  struct day_info {
    year_month_day ymd;
    unsigned d, len, wd;  // day, month length, weekday (0 = Sunday)
    sys_days date;
  };
  auto weekday_of = [](sys_days s) { return weekday{s}.c_encoding(); };
  auto is_weekday = [&](sys_days s) { return weekday_of(s) >= 1 && weekday_of(s) <= 5; };
  auto nearest_weekday = [&](const day_info& x, unsigned n) {
    if (n > x.len) return false;
    // the weekday (Mon-Fri) of the same month closest to day n
    unsigned best = 0, best_dist = 99;
    for (unsigned k = 1; k <= x.len; ++k) {
      const sys_days s = x.date - days{x.d} + days{k};
      const unsigned dist = k > n ? k - n : n - k;
      if (is_weekday(s) && dist < best_dist) best = k, best_dist = dist;
    }
    return x.d == best;
  };
  auto last_weekday = [&](const day_info& x) {
    if (!is_weekday(x.date)) return false;
    for (unsigned k = x.d + 1; k <= x.len; ++k)
      if (is_weekday(x.date + days{k - x.d})) return false;
    return true;
  };
  auto count_weekday = [&](const day_info& x, unsigned wd, bool from_end) {
    unsigned c = 0;
    for (unsigned k = 1; k <= x.len; ++k) {
      const sys_days s = x.date - days{x.d} + days{k};
      if (weekday_of(s) == wd && (from_end ? k >= x.d : k <= x.d)) ++c;
    }
    return c;
  };
  const std::vector<std::pair<const char*, std::function<bool(const day_info&)>>> cases = {
      {"0 0 L * *", [](const day_info& x) { return x.d == x.len; }},
      {"0 0 L-3 * *", [](const day_info& x) { return x.d + 3 == x.len; }},
      {"0 0 LW * *", last_weekday},
      {"0 0 1W * *", [&](const day_info& x) { return nearest_weekday(x, 1); }},
      {"0 0 15W * *", [&](const day_info& x) { return nearest_weekday(x, 15); }},
      {"0 0 30W * *", [&](const day_info& x) { return nearest_weekday(x, 30); }},
      {"0 0 31W * *", [&](const day_info& x) { return nearest_weekday(x, 31); }},
      {"0 0 * * 5L", [&](const day_info& x) { return x.wd == 5 && count_weekday(x, 5, true) == 1; }},
      {"0 0 * * 0L", [&](const day_info& x) { return x.wd == 0 && count_weekday(x, 0, true) == 1; }},
      {"0 0 * * 1#2", [&](const day_info& x) { return x.wd == 1 && count_weekday(x, 1, false) == 2; }},
      {"0 0 * * 5#5", [&](const day_info& x) { return x.wd == 5 && count_weekday(x, 5, false) == 5; }},
      {"0 0 * * L", [](const day_info& x) { return x.wd == 6; }},
      {"0 0 13 * 5", [](const day_info& x) { return x.d == 13 || x.wd == 5; }},
      {"0 0 1,15 * MON-FRI",
       [](const day_info& x) { return x.d == 1 || x.d == 15 || (x.wd >= 1 && x.wd <= 5); }},
      {"0 0 L * 0", [](const day_info& x) { return x.d == x.len || x.wd == 0; }},
      {"0 0 29 2 *", [](const day_info& x) { return x.d == 29 && x.ymd.month() == February; }},
      {"0 0 ? * SAT-MON", [](const day_info& x) { return x.wd == 6 || x.wd == 0 || x.wd == 1; }},
      {"0 0 25-5 * ?", [](const day_info& x) { return x.d >= 25 || x.d <= 5; }},
      {"0 0 */10 * *", [](const day_info& x) { return x.d % 10 == 1; }},
      // a day field starting with '*' makes both fields decide together (AND)
      {"0 0 13 * */2", [](const day_info& x) { return x.d == 13 && x.wd % 2 == 0; }},
      {"0 0 */10 * FRI", [](const day_info& x) { return x.d % 10 == 1 && x.wd == 5; }},
      {"0 0 */2 * */3", [](const day_info& x) { return x.d % 2 == 1 && x.wd % 3 == 0; }},
      {"0 0 LW * */2", [&](const day_info& x) { return last_weekday(x) && x.wd % 2 == 0; }},
      {"0 0 */7 * 5#2",
       [&](const day_info& x) { return x.d % 7 == 1 && x.wd == 5 && count_weekday(x, 5, false) == 2; }},
  };
  const sys_days begin = 2019y / January / 1, end = 2033y / January / 1;
  for (const auto& [expr, matches] : cases) {
    INFO(expr);
    const cron_trigger t(expr);
    std::vector<sys_days> want, got;
    for (sys_days s = begin; s < end; s += days{1}) {
      const year_month_day ymd{s};
      const unsigned len = static_cast<unsigned>((ymd.year() / ymd.month() / last).day());
      const day_info x{ymd, static_cast<unsigned>(ymd.day()), len, weekday_of(s), s};
      if (matches(x)) want.push_back(s);
    }
    for (auto n = t.next(punctual::time_point{begin} - 1s); n && *n < punctual::time_point{end};
         n = t.next(*n))
      got.push_back(floor<days>(*n));
    CHECK(got == want);
    CHECK(want.size() >= 4);
  }
}

// ---------------------------------------------------------------------------------------------
// calendar edges

TEST_CASE("cron: February 29 comes every four years, skipping 2100", "[cron]") {
  CHECK(first("0 0 29 2 *", "2024-02-29T00:00:00Z") == "2028-02-29T00:00:00Z");
  CHECK(fires(cron_trigger("0 0 29 2 *"), "2096-03-01T00:00:00Z", 2) ==
        std::vector<std::string>{"2104-02-29T00:00:00Z", "2108-02-29T00:00:00Z"});
  CHECK(first("0 0 29 2 *", "1999-01-01T00:00:00Z") == "2000-02-29T00:00:00Z");
}

TEST_CASE("cron: year boundaries carry through every field", "[cron]") {
  CHECK(first("0 0 1 1 *", "2025-12-31T23:59:59Z") == "2026-01-01T00:00:00Z");
  CHECK(first("59 59 23 31 12 *", "2025-12-31T23:59:58Z") == "2025-12-31T23:59:59Z");
  CHECK(first("59 59 23 31 12 *", "2025-12-31T23:59:59Z") == "2026-12-31T23:59:59Z");
  CHECK(first("* * * * * *", "2025-12-31T23:59:59Z") == "2026-01-01T00:00:00Z");
  CHECK(first("0 0 31 12 *", "2026-12-31T00:00:00Z") == "2027-12-31T00:00:00Z");
}

TEST_CASE("cron: the year field and the end of time", "[cron]") {
  CHECK(fires(cron_trigger("0 0 0 1 1 * 2030,2032"), "2026-01-01T00:00:00Z", 3) ==
        std::vector<std::string>{"2030-01-01T00:00:00Z", "2032-01-01T00:00:00Z", "never"});
  CHECK(fires(cron_trigger("0 0 0 1 1 * 2040/50"), "2026-01-01T00:00:00Z", 3) ==
        std::vector<std::string>{"2040-01-01T00:00:00Z", "2090-01-01T00:00:00Z", "2140-01-01T00:00:00Z"});
  // years in the past of `after` are simply over; 1999 is a valid year
  CHECK(first("0 0 0 * * * 1999", "2026-01-01T00:00:00Z") == "never");
  CHECK(first("0 0 0 * * * 1999", "1998-06-01T00:00:00Z") == "1999-01-01T00:00:00Z");
  // the last second that can fire
  const std::string last_year = std::to_string(PUNCTUAL_MAX_YEAR);
  CHECK(first("* * * * * * " + last_year, last_year + "-12-31T23:59:58Z") == last_year + "-12-31T23:59:59Z");
  CHECK(first("* * * * * * " + last_year, last_year + "-12-31T23:59:59Z") == "never");
  CHECK(first("* * * * *", last_year + "-12-31T23:59:00Z") == "never");
  CHECK(first("0 0 1 1 *", last_year + "-01-01T00:00:00Z") == "never");
  // any instant works, even the extremes
  const cron_trigger t("0 0 1 1 *");
  CHECK(show(t.next(time_point::min()), t.zone()) == "1970-01-01T00:00:00Z");
  CHECK(show(t.next(time_point{}), t.zone()) == "1971-01-01T00:00:00Z");
  CHECK_FALSE(t.next(time_point::max()).has_value());
  const cron_trigger b("0 0 1 1 *", "Europe/Berlin");
  CHECK(show(b.next(time_point::min()), b.zone()) == "1970-01-01T00:00:00+01:00");
  CHECK_FALSE(b.next(time_point::max()).has_value());
  check_error("0 0 0 1 1 * 1969", {"year field", "1969", 13, "1969 is out of range 1970-" + last_year});
  check_error("0 0 0 1 1 * " + std::to_string(PUNCTUAL_MAX_YEAR + 1),
              {"year field", std::to_string(PUNCTUAL_MAX_YEAR + 1), 13,
               std::to_string(PUNCTUAL_MAX_YEAR + 1) + " is out of range 1970-" + last_year});
}

TEST_CASE("cron: expressions that can never fire are rejected when parsed", "[cron]") {
  check_error("0 0 30 2 *", {"cron expression", "0 0 30 2 *", 0,
                             "can never fire: day-of-month 30 does not occur in month 2"});
  check_error("0 0 31 4,6,9,11 *", {"cron expression", "0 0 31 4,6,9,11 *", 0, "can never fire"});
  check_error("0 0 0 29 2 * 2100",
              {"cron expression", "0 0 0 29 2 * 2100", 0, "can never fire: February 29"});
  check_error("0 0 0 ? 2 FRI#5 2026", {"cron expression", "0 0 0 ? 2 FRI#5 2026", 0, "can never fire"});
  check_error("0 0 L-29 2 *", {"cron expression", "0 0 L-29 2 *", 0, "can never fire"});
  // ... but not when some month or year allows them
  CHECK_NOTHROW(cron_trigger("0 0 29 2 *"));
  CHECK_NOTHROW(cron_trigger("0 0 31 4,5 *"));
  CHECK_NOTHROW(cron_trigger("0 0 0 29 2 * 2100-2104"));
  CHECK_NOTHROW(cron_trigger("0 0 * * 5#5"));
  CHECK_NOTHROW(cron_trigger("0 0 0 ? 2 SUN#5 2032"));  // Feb 2032 has five Sundays
  CHECK_NOTHROW(cron_trigger("0 0 30 2 MON"));          // OR: every Monday of February
  CHECK(first("0 0 30 2 MON", "2026-01-01T00:00:00Z") == "2026-02-02T00:00:00Z");
}

TEST_CASE("cron: a star-prefixed day field (AND) can make an expression impossible", "[cron]") {
  // with `*/2` both day fields must match, so a day that February lacks is never reached
  check_error("0 0 30 2 */2", {"cron expression", "0 0 30 2 */2", 0,
                               "can never fire: day-of-month 30 does not occur in month 2"});
  check_error("0 0 31 2,4 */3", {"cron expression", "0 0 31 2,4 */3", 0,
                                 "can never fire: day-of-month 31 does not occur in month 2,4"});
  check_error("0 0 0 29 2 */2 2100",
              {"cron expression", "0 0 0 29 2 */2 2100", 0, "can never fire: February 29"});
  // 2028-02-29 is a Tuesday, and */3 is Sunday, Wednesday, Saturday
  check_error("0 0 0 29 2 */3 2028",
              {"cron expression", "0 0 0 29 2 */3 2028", 0, "can never fire: no date from 1970 to"});
  CHECK(first("0 0 0 29 2 */2 2028", "2026-01-01T00:00:00Z") == "2028-02-29T00:00:00Z");
  // February 2026 has no Friday on the 1st, 11th or 21st
  check_error("0 0 0 */10 2 FRI 2026",
              {"cron expression", "0 0 0 */10 2 FRI 2026", 0, "can never fire: no date"});
  CHECK(first("0 0 0 */10 2 FRI 2028", "2026-01-01T00:00:00Z") == "2028-02-11T00:00:00Z");
  // a special that never falls on a selected weekday in the only selected month
  check_error("0 0 0 L 2 */7 2026", {"cron expression", "0 0 0 L 2 */7 2026", 0, "can never fire: no date"});
  // OR keeps them possible: every Tuesday of February, or any day in 0-6
  CHECK(first("0 0 30 2 2", "2026-01-01T00:00:00Z") == "2026-02-03T00:00:00Z");
  CHECK(first("0 0 0 29 2 0-6/3 2028", "2026-01-01T00:00:00Z") == "2028-02-02T00:00:00Z");
}

// ---------------------------------------------------------------------------------------------
// errors

TEST_CASE("cron: out-of-range values name the field, the text and its column", "[cron][errors]") {
  check_error("61 * * * *", {"minute field", "61", 1, "61 is out of range 0-59"});
  check_error("0 24 * * *", {"hour field", "24", 3, "24 is out of range 0-23"});
  check_error("0 0 0 * *", {"day-of-month field", "0", 5, "0 is out of range 1-31"});
  check_error("0 0 32 * *", {"day-of-month field", "32", 5, "32 is out of range 1-31"});
  check_error("0 0 * 13 *", {"month field", "13", 7, "13 is out of range 1-12"});
  check_error("0 0 * 0 *", {"month field", "0", 7, "0 is out of range 1-12"});
  check_error("0 0 * * 8", {"day-of-week field", "8", 9, "8 is out of range 0-7"});
  check_error("60 0 0 * * *", {"second field", "60", 1, "60 is out of range 0-59"});
  check_error("0 0 1-70 * *", {"day-of-month field", "70", 7, "70 is out of range 1-31"});
  check_error("0 0 1 * * 99999999999999999999",
              {"day-of-week field", "99999999999999999999", 11, "99999999999999999999 is out of range 0-7"});
  // columns count from the start of the text, blanks included
  check_error("  0 \t 61 * * *", {"hour field", "61", 7, "61 is out of range 0-23"});
  check_error("0 0 1,2,40 * *", {"day-of-month field", "40", 9, "40 is out of range 1-31"});
}

TEST_CASE("cron: errors quote whole UTF-8 characters and count columns in characters", "[cron][errors]") {
  // U+FF13 FULLWIDTH DIGIT THREE is three bytes: quoted whole, never one byte of it
  check_error("0 0 \xEF\xBC\x93 * *", {"day-of-month field", "\xEF\xBC\x93", 5,
                                       "unexpected U+FF13 '\xEF\xBC\x93' (expected a number)"});
  check_error("0 0 1-\xEF\xBC\x93 * *", {"day-of-month field", "\xEF\xBC\x93", 7, "unexpected U+FF13"});
  check_error("0 0 * * MON\xC2\xA0",
              {"day-of-week field", "\xC2\xA0", 12, "unexpected U+00A0"});  // no-break space
  check_error("\xC3\xA9 * * * *", {"minute field", "\xC3\xA9", 1, "unexpected U+00E9 '\xC3\xA9'"});
  // a byte that is not UTF-8 is one character, described by its value
  check_error("0 0 * * \xFF", {"day-of-week field", "\xFF", 9, "unexpected byte 0xFF"});
  // in parse_canonical the options are read first: a later column counts the character before it once
  try {
    (void)cron_trigger::parse_canonical("\xEF\xBC\x90 0 * * * tz=Nowhere/Atlantis");
    FAIL("accepted");
  } catch (const parse_error& e) {
    CHECK(e.field() == "time zone");
    CHECK(e.column() == 14);  // 16 in bytes
  }
  try {
    (void)cron_trigger::parse_canonical("\xEF\xBC\x90 0 * * * gap=jump");
    FAIL("accepted");
  } catch (const parse_error& e) {
    CHECK(e.text() == "jump");
    CHECK(e.column() == 15);
  }
}

TEST_CASE("cron: bad steps, names, specials and lists are explained", "[cron][errors]") {
  check_error("*/0 * * * *", {"minute field", "*/0", 1, "step 0"});
  check_error("0 0 1-10/0 * *", {"day-of-month field", "1-10/0", 5, "step 0"});
  check_error("*/61 * * * *", {"minute field", "61", 3, "step 61 is larger than the field's range 0-59"});
  check_error("*/ * * * *", {"minute field", "*/", 1, "expected a step after '/'"});
  check_error("*/x * * * *", {"minute field", "x", 3, "unexpected 'x' in step"});
  check_error("0 0 * * 5#6", {"day-of-week field", "5#6", 9, "week number must be 1-5"});
  check_error("0 0 * * 5#0", {"day-of-week field", "5#0", 9, "week number must be 1-5"});
  check_error("0 0 * * 5#", {"day-of-week field", "5#", 9, "expected a week number 1-5"});
  check_error("0 0 * FOO *", {"month field", "FOO", 7, "unknown name FOO"});
  check_error("0 0 * * FOO", {"day-of-week field", "FOO", 9, "unknown name FOO"});
  check_error("0 0 * * MONDAY", {"day-of-week field", "MONDAY", 9, "unknown name MONDAY"});
  check_error("0 0 * JAN-FOO *", {"month field", "FOO", 11, "unknown name FOO"});
  check_error("0 MON * * *", {"hour field", "MON", 3, "unknown name MON (this field takes numbers only)"});
  check_error("0 L * * *",
              {"hour field", "L", 3, "L is only allowed in the day-of-month and day-of-week fields"});
  check_error("0 0 * L *", {"month field", "L", 7, "unknown name L"});
  check_error("0 0 W * *", {"day-of-month field", "W", 5, "W needs a day before it"});
  check_error("0 0 1-L * *", {"day-of-month field", "L", 7, "L cannot be part of a range or step"});
  check_error("0 0 * * 1-L", {"day-of-week field", "L", 11, "unknown name L"});
  check_error("0 0 0 * * * 2030/L", {"year field", "L", 18, "unexpected 'L' in step"});
  check_error("0 W * * *", {"hour field", "W", 3, "W is only allowed in the day-of-month field"});
  check_error("0 0 L-31 * *", {"day-of-month field", "31", 7, "31 is out of range 0-30"});
  check_error("0 0 L-x * *", {"day-of-month field", "L-x", 5, "expected L-n"});
  check_error("0 0 LX * *", {"day-of-month field", "LX", 5, "unexpected text after L"});
  check_error("0 0 5W/2 * *", {"day-of-month field", "W", 6, "unexpected 'W'"});
  check_error("0 0 * * 5W", {"day-of-week field", "W", 10, "unexpected 'W'"});
  check_error("0 0 5L * *", {"day-of-month field", "L", 6, "unexpected 'L'"});
  check_error("0 0 1,,2 * *", {"day-of-month field", "1,,2", 5, "empty list item"});
  check_error("0 0 ,1 * *", {"day-of-month field", ",1", 5, "empty list item"});
  check_error("0 0 1, * *", {"day-of-month field", "1,", 5, "trailing ','"});
  check_error("0 0 5- * *", {"day-of-month field", "5-", 5, "expected a value after '-'"});
  check_error("0 0 1-* * *", {"day-of-month field", "*", 7, "unexpected '*' (expected a number)"});
  check_error("0 0 1-5x * *", {"day-of-month field", "x", 8, "unexpected 'x' after a range"});
  check_error("0 0 *5 * *", {"day-of-month field", "5", 6, "unexpected '5' after '*'"});
  check_error("? 0 * * *",
              {"minute field", "?", 1, "'?' is only allowed in the day-of-month and day-of-week fields"});
  check_error("0 0 1,? * *", {"day-of-month field", "?", 7, "'?' must be the whole field"});
  check_error("0 0 -5 * *", {"day-of-month field", "-", 5, "unexpected '-'"});
  check_error("0 0 \x01 * *", {"day-of-month field", "\x01", 5, "unexpected byte 0x01"});
}

TEST_CASE("cron: a wrong number of fields is an error about the whole expression", "[cron][errors]") {
  check_error("0 0 * *", {"cron expression", "0 0 * *", 0, "expected 5, 6 or 7 fields, got 4"});
  check_error(" 0 0 0 0 * * * * ",
              {"cron expression", "0 0 0 0 * * * *", 0, "expected 5, 6 or 7 fields, got 8"});
  check_error("", {"cron expression", "", 0, "is empty"});
  check_error(" \t ", {"cron expression", "", 0, "is empty"});
}

TEST_CASE("cron: the error message says what, where and why", "[cron][errors]") {
  try {
    cron_trigger t("0 0 * * 5#6");
    FAIL("accepted");
  } catch (const parse_error& e) {
    CHECK(std::string(e.what()) ==
          "\"0 0 * * 5#6\": day-of-week field \"5#6\" at column 9: week number must be 1-5");
  }
  try {
    cron_trigger t("0 0 30 2 *");
    FAIL("accepted");
  } catch (const parse_error& e) {
    CHECK(std::string(e.what()) ==
          "cron expression \"0 0 30 2 *\": can never fire: day-of-month 30 does not occur in month 2");
  }
  CHECK_THROWS_AS(cron_trigger("0 0 * * *", "Mars/Olympus_Mons"), parse_error);
  try {
    cron_trigger t("0 0 * * *", "Mars/Olympus_Mons");
  } catch (const parse_error& e) {
    CHECK(e.field() == "time zone");
  }
}

// ---------------------------------------------------------------------------------------------
// canonical text

TEST_CASE("cron: to_string is canonical and round-trips through parse_canonical", "[cron][text]") {
  CHECK(cron_trigger("0 9 * * MON-FRI").to_string() == "cron:0 9 * * MON-FRI");
  CHECK(cron_trigger("  0\t9  *  * \t mon-fri ").expression() == "0 9 * * mon-fri");
  CHECK(cron_trigger("0 9 * * *", "Europe/Berlin").to_string() == "cron:0 9 * * * tz=Europe/Berlin");
  CHECK(cron_trigger("0 9 * * *", "UTC").to_string() == "cron:0 9 * * *");
  CHECK(cron_trigger("0 9 * * *", "Europe/Berlin", {dst_gap::skip, dst_overlap::twice}).to_string() ==
        "cron:0 9 * * * tz=Europe/Berlin gap=skip overlap=twice");
  CHECK(cron_trigger("0 9 * * *", "UTC", {dst_gap::shift, dst_overlap::once}).to_string() ==
        "cron:0 9 * * * overlap=once");
  CHECK(punctual::cron("@daily", "America/New_York").to_string() == "cron:@daily tz=America/New_York");

  const std::vector<cron_trigger> triggers = {
      cron_trigger("*/5 * * * *"),
      cron_trigger("30 0 9 ? * 5L 2030-2040", "Australia/Lord_Howe"),
      cron_trigger("0 0 L-3,15W * *", "Europe/Berlin", {dst_gap::skip, dst_overlap::automatic}),
      cron_trigger("@weekly", "America/New_York", {dst_gap::shift, dst_overlap::twice}),
      cron_trigger("0 0 1 1 * *", "UTC", {dst_gap::skip, dst_overlap::once}),
  };
  for (const auto& t : triggers) {
    const std::string text = t.to_string();
    INFO(text);
    REQUIRE(text.substr(0, 5) == "cron:");
    const cron_trigger back = cron_trigger::parse_canonical(text.substr(5));
    CHECK(back.to_string() == text);
    CHECK(back == t);
    CHECK(back.expression() == t.expression());
    CHECK(&back.zone() == &t.zone());
    CHECK(back.policy() == t.policy());
    CHECK(back.next(at("2026-03-01T00:00:00Z")) == t.next(at("2026-03-01T00:00:00Z")));
  }
}

TEST_CASE("cron: parse_canonical takes options after the fields, in any order", "[cron][text]") {
  const cron_trigger a = cron_trigger::parse_canonical("0 9 * * * overlap=twice tz=Europe/Berlin gap=skip");
  CHECK(a.expression() == "0 9 * * *");
  CHECK(a.zone().name() == "Europe/Berlin");
  CHECK(a.policy() == dst_policy{dst_gap::skip, dst_overlap::twice});
  // six and seven fields are told apart from options
  CHECK(cron_trigger::parse_canonical("0 0 9 * * * tz=Europe/Berlin").expression() == "0 0 9 * * *");
  CHECK(cron_trigger::parse_canonical("0 0 9 * * * 2030 gap=shift overlap=auto").to_string() ==
        "cron:0 0 9 * * * 2030");
  CHECK(cron_trigger::parse_canonical("  @hourly   tz=UTC ").to_string() == "cron:@hourly");
}

TEST_CASE("cron: parse_canonical errors point into the body", "[cron][text][errors]") {
  auto error = [](std::string_view body) -> expected_error {
    try {
      (void)cron_trigger::parse_canonical(body);
    } catch (const parse_error& e) {
      return {e.field(), e.text(), e.column(), e.reason()};
    }
    return {"(accepted)", "", 0, ""};
  };
  auto e = error("0 9 * * * tz=Nowhere/Atlantis");
  CHECK(e.field == "time zone");
  CHECK(e.column >= 14);
  e = error("0 9 * * * gap=jump");
  CHECK((e.field == "cron trigger" && e.text == "jump" && e.column == 15 &&
         e.reason == "gap must be shift or skip"));
  e = error("0 9 * * * overlap=thrice");
  CHECK((e.field == "cron trigger" && e.text == "thrice" && e.column == 19));
  e = error("0 9 * * * gap=skip gap=shift");
  CHECK((e.field == "cron trigger" && e.text == "gap=shift" && e.column == 20 &&
         e.reason == "gap given twice"));
  e = error("0 9 * * * zone=UTC");
  CHECK((e.field == "cron trigger" && e.text == "zone=UTC" && e.column == 11));
  e = error("0 61 * * * tz=Europe/Berlin");
  CHECK((e.field == "hour field" && e.text == "61" && e.column == 3));
  e = error("0 9 * * tz=UTC");
  CHECK((e.field == "cron expression" && e.text == "0 9 * *" &&
         e.reason == "expected 5, 6 or 7 fields, got 4"));
  // an option word in the middle is not an option: here it is the hour of six fields
  e = error("0 9 tz=UTC * * *");
  CHECK((e.field == "hour field" && e.text == "tz" && e.column == 5 &&
         e.reason.substr(0, 12) == "unknown name"));
  e = error("tz=UTC");
  CHECK((e.field == "cron expression" && e.reason.substr(0, 8) == "is empty"));
}

TEST_CASE("cron: works as a type-erased punctual::trigger", "[cron]") {
  const punctual::trigger t = punctual::cron("0 9 * * MON-FRI", "Europe/Berlin");
  CHECK(t.to_string() == "cron:0 9 * * MON-FRI tz=Europe/Berlin");
  CHECK(t.next(at("2026-01-02T09:00:00Z")) == at("2026-01-05T08:00:00Z"));
  REQUIRE(t.target<cron_trigger>() != nullptr);
  CHECK(t.target<cron_trigger>()->expression() == "0 9 * * MON-FRI");
  const cron_trigger copy = *t.target<cron_trigger>();
  CHECK(copy == *t.target<cron_trigger>());
  CHECK_FALSE(copy == cron_trigger("0 9 * * MON-FRI"));
}

// ---------------------------------------------------------------------------------------------
// time zones and DST (real zones)

TEST_CASE("cron: DST gap in Berlin: shift fires at the end of the gap, skip drops the day", "[cron][dst]") {
  // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00Z)
  const cron_trigger shift("30 2 * * *", "Europe/Berlin");
  CHECK(fires(shift, "2026-03-28T12:00:00Z", 3) == std::vector<std::string>{"2026-03-29T03:00:00+02:00",
                                                                            "2026-03-30T02:30:00+02:00",
                                                                            "2026-03-31T02:30:00+02:00"});
  const cron_trigger skip("30 2 * * *", "Europe/Berlin", {dst_gap::skip, dst_overlap::automatic});
  CHECK(fires(skip, "2026-03-28T12:00:00Z", 2) ==
        std::vector<std::string>{"2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"});
  // several times inside one gap collapse into one fire; 03:00 itself is that same instant
  const cron_trigger every15("*/15 * * * *", "Europe/Berlin");
  CHECK(fires(every15, "2026-03-29T01:40:00+01:00", 4) ==
        std::vector<std::string>{"2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00",
                                 "2026-03-29T03:15:00+02:00", "2026-03-29T03:30:00+02:00"});
  const cron_trigger every15_skip("*/15 * * * *", "Europe/Berlin", {dst_gap::skip, dst_overlap::automatic});
  CHECK(fires(every15_skip, "2026-03-29T01:40:00+01:00", 3) ==
        std::vector<std::string>{"2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00",
                                 "2026-03-29T03:15:00+02:00"});
  // times after the gap are not affected
  CHECK(fires(cron_trigger("30 3 * * *", "Europe/Berlin"), "2026-03-28T12:00:00Z", 1) ==
        std::vector<std::string>{"2026-03-29T03:30:00+02:00"});
}

TEST_CASE("cron: DST overlap in Berlin: once, twice, and auto by the hour field", "[cron][dst]") {
  // 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00Z); 02:xx happens twice
  const cron_trigger daily("30 2 * * *", "Europe/Berlin");
  CHECK(fires(daily, "2026-10-24T12:00:00Z", 3) == std::vector<std::string>{"2026-10-25T02:30:00+02:00",
                                                                            "2026-10-26T02:30:00+01:00",
                                                                            "2026-10-27T02:30:00+01:00"});
  const cron_trigger twice("30 2 * * *", "Europe/Berlin", {dst_gap::shift, dst_overlap::twice});
  CHECK(fires(twice, "2026-10-24T12:00:00Z", 3) == std::vector<std::string>{"2026-10-25T02:30:00+02:00",
                                                                            "2026-10-25T02:30:00+01:00",
                                                                            "2026-10-26T02:30:00+01:00"});
  // hour '*': both passes (auto), first pass only (once)
  const cron_trigger half("*/30 * * * *", "Europe/Berlin");
  CHECK(fires(half, "2026-10-25T01:50:00+02:00", 6) ==
        std::vector<std::string>{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
                                 "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
                                 "2026-10-25T03:00:00+01:00", "2026-10-25T03:30:00+01:00"});
  const cron_trigger half_once("*/30 * * * *", "Europe/Berlin", {dst_gap::shift, dst_overlap::once});
  CHECK(fires(half_once, "2026-10-25T01:50:00+02:00", 4) ==
        std::vector<std::string>{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
                                 "2026-10-25T03:00:00+01:00", "2026-10-25T03:30:00+01:00"});
  // starting inside the second pass continues there
  CHECK(fires(half, "2026-10-25T02:10:00+01:00", 2) ==
        std::vector<std::string>{"2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00"});
  CHECK(fires(daily, "2026-10-25T02:10:00+01:00", 1) ==
        std::vector<std::string>{"2026-10-26T02:30:00+01:00"});
  // an hour list that is not all 24 hours fires once under auto
  const cron_trigger some_hours("0,30 0-12 * * *", "Europe/Berlin");
  CHECK(fires(some_hours, "2026-10-25T01:50:00+02:00", 4) ==
        std::vector<std::string>{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
                                 "2026-10-25T03:00:00+01:00", "2026-10-25T03:30:00+01:00"});
}

TEST_CASE("cron: DST in New York", "[cron][dst]") {
  // 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST
  CHECK(fires(cron_trigger("30 2 * * *", "America/New_York"), "2026-03-07T12:00:00Z", 2) ==
        std::vector<std::string>{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"});
  CHECK(fires(cron_trigger("30 2 * * *", "America/New_York", {dst_gap::skip, dst_overlap::automatic}),
              "2026-03-07T12:00:00Z",
              2) == std::vector<std::string>{"2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"});
  CHECK(fires(cron_trigger("30 1 * * *", "America/New_York"), "2026-10-31T12:00:00Z", 2) ==
        std::vector<std::string>{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"});
  CHECK(fires(cron_trigger("30 1 * * *", "America/New_York", {dst_gap::shift, dst_overlap::twice}),
              "2026-10-31T12:00:00Z",
              3) == std::vector<std::string>{"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00",
                                             "2026-11-02T01:30:00-05:00"});
  CHECK(fires(cron_trigger("0 9 * * MON-FRI", "America/New_York"), "2026-03-06T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-03-06T09:00:00-05:00", "2026-03-09T09:00:00-04:00"});
}

TEST_CASE("cron: DST in Lord Howe shifts by 30 minutes", "[cron][dst]") {
  // 2026-04-05 02:00 +11:00 -> 01:30 +10:30; 2026-10-04 02:00 +10:30 -> 02:30 +11:00
  CHECK(fires(cron_trigger("15 2 * * *", "Australia/Lord_Howe"), "2026-10-03T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"});
  CHECK(fires(cron_trigger("15 2 * * *", "Australia/Lord_Howe", {dst_gap::skip, dst_overlap::automatic}),
              "2026-10-03T00:00:00Z", 1) == std::vector<std::string>{"2026-10-05T02:15:00+11:00"});
  CHECK(fires(cron_trigger("45 1 * * *", "Australia/Lord_Howe"), "2026-04-04T00:00:00Z", 2) ==
        std::vector<std::string>{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"});
  CHECK(fires(cron_trigger("45 1 * * *", "Australia/Lord_Howe", {dst_gap::shift, dst_overlap::twice}),
              "2026-04-04T00:00:00Z",
              3) == std::vector<std::string>{"2026-04-05T01:45:00+11:00", "2026-04-05T01:45:00+10:30",
                                             "2026-04-06T01:45:00+10:30"});
  // hour '*': the repeated half hour fires again; 02:00 +11:00 never exists
  CHECK(fires(cron_trigger("*/20 * * * *", "Australia/Lord_Howe"), "2026-04-05T01:10:00+11:00", 5) ==
        std::vector<std::string>{"2026-04-05T01:20:00+11:00", "2026-04-05T01:40:00+11:00",
                                 "2026-04-05T01:40:00+10:30", "2026-04-05T02:00:00+10:30",
                                 "2026-04-05T02:20:00+10:30"});
}

TEST_CASE("cron: far-future DST follows the zone's rule (Berlin 2100 and 2299)", "[cron][dst]") {
  // last Sundays: 2100-03-28, 2100-10-31, 2299-03-26, 2299-10-29
  CHECK(fires(cron_trigger("30 2 * * *", "Europe/Berlin"), "2100-03-27T12:00:00Z", 2) ==
        std::vector<std::string>{"2100-03-28T03:00:00+02:00", "2100-03-29T02:30:00+02:00"});
  CHECK(fires(cron_trigger("0 12 1 7 *", "Europe/Berlin"), "2100-01-01T00:00:00Z", 1) ==
        std::vector<std::string>{"2100-07-01T12:00:00+02:00"});
  CHECK(fires(cron_trigger("30 2 * * *", "Europe/Berlin", {dst_gap::shift, dst_overlap::twice}),
              "2100-10-30T12:00:00Z",
              3) == std::vector<std::string>{"2100-10-31T02:30:00+02:00", "2100-10-31T02:30:00+01:00",
                                             "2100-11-01T02:30:00+01:00"});
  CHECK(fires(cron_trigger("30 2 * * *", "Europe/Berlin"), "2299-03-25T12:00:00Z", 2) ==
        std::vector<std::string>{"2299-03-26T03:00:00+02:00", "2299-03-27T02:30:00+02:00"});
  CHECK(fires(cron_trigger("0 0 31 12 *", "Europe/Berlin"), "2299-01-01T00:00:00Z", 2) ==
        std::vector<std::string>{"2299-12-31T00:00:00+01:00", "never"});
}

TEST_CASE("cron: fires in a zone are exactly the wall-clock matches as resolve() maps them", "[cron][dst]") {
  // An independent statement of the policy: list every civil match, map it with
  // time_zone::resolve() (unique -> that instant; twice -> the first pass, and the second when
  // both passes fire; in a gap -> the transition under gap=shift, nothing under gap=skip),
  // and compare with the chain of next() calls over 2011 (Apia skips 2011-12-30 as well).
  using std::chrono::seconds;
  const time_point begin = at("2011-01-01T00:00:00Z"), end = at("2012-01-15T00:00:00Z");
  for (const char* zone_name : {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia"}) {
    const auto& zone = punctual::locate_zone(zone_name);
    for (const char* expr :
         {"30 2 * * *", "*/7 * * * *", "0 0 L * *", "0 1-3 * * 0", "45 1 * * *", "0 0 30 12 *"}) {
      for (const dst_policy p : {dst_policy{}, dst_policy{dst_gap::skip, dst_overlap::once},
                                 dst_policy{dst_gap::shift, dst_overlap::twice},
                                 dst_policy{dst_gap::skip, dst_overlap::automatic}}) {
        INFO(zone_name << " " << expr << " " << punctual::to_string(p));
        const cron_trigger t(expr, zone, p);
        const auto spec = spec_of(expr);
        const bool both =
            p.overlap == dst_overlap::twice || (p.overlap == dst_overlap::automatic && spec.all_hours());
        std::vector<time_point> want;
        const std::int64_t civil_end = (end.time_since_epoch() / 1s) + 86400;
        for (std::int64_t c = spec.first_at_or_after((begin.time_since_epoch() / 1s) - 86400); c < civil_end;
             c = spec.first_at_or_after(c + 1)) {
          const auto info = zone.resolve(punctual::local_time{seconds{c}});
          if (info.kind == punctual::local_info::nonexistent) {
            if (p.gap == dst_gap::shift) want.push_back(info.first);
          } else {
            want.push_back(info.first);
            if (info.kind == punctual::local_info::ambiguous && both) want.push_back(info.second);
          }
        }
        std::sort(want.begin(), want.end());
        want.erase(std::unique(want.begin(), want.end()), want.end());
        want.erase(
            std::remove_if(want.begin(), want.end(), [&](time_point x) { return x <= begin || x >= end; }),
            want.end());
        std::vector<time_point> got;
        for (auto n = t.next(begin); n && *n < end && got.size() <= want.size(); n = t.next(*n))
          got.push_back(*n);
        CHECK(got.size() == want.size());
        CHECK(got == want);
        // only Apia's 2011-12-30, which did not exist, leaves nothing to fire under gap=skip
        const bool apia_skip = std::string_view(zone_name) == "Pacific/Apia" &&
                               std::string_view(expr) == "0 0 30 12 *" && p.gap == dst_gap::skip;
        CHECK(want.empty() == apia_skip);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the DST walk with synthetic zones

namespace {

// A zone given by its offset changes, for driving the DST walk with any transitions.
struct fake_zone {
  std::chrono::seconds initial;
  std::vector<std::pair<time_point, std::chrono::seconds>> changes;  // at, offset from then on

  punctual::zone_segment segment(time_point t) const {
    time_point begin = time_point::min();
    std::chrono::seconds off = initial;
    for (const auto& [when, o] : changes) {
      if (when > t) return {begin, when, off};
      begin = when;
      off = o;
    }
    return {begin, time_point::max(), off};
  }
};

std::string walk(std::string_view expr, const fake_zone& z, dst_policy p, std::string_view from) {
  const auto r = punctual::detail::cron_next_in_zone(spec_of(expr), z, p, at(from));
  return r ? punctual::format_iso(*r) : "never";
}

}  // namespace

TEST_CASE("cron: DST walk over synthetic transitions", "[cron][dst]") {
  // +0 until 2030-01-01T01:00Z, then +2h (civil 01:00-03:00 missing), back to +0 at 2030-01-02T01:00Z
  // (civil 01:00-03:00 on Jan 2 happens twice)
  const fake_zone z{0s, {{at("2030-01-01T01:00:00Z"), 2h}, {at("2030-01-02T01:00:00Z"), 0s}}};
  const dst_policy shift{}, skip{dst_gap::skip, dst_overlap::automatic};
  const dst_policy once{dst_gap::shift, dst_overlap::once}, twice{dst_gap::shift, dst_overlap::twice};
  // gap
  CHECK(walk("30 1 * * *", z, shift, "2029-12-31T12:00:00Z") == "2030-01-01T01:00:00Z");
  CHECK(walk("30 2 * * *", z, shift, "2029-12-31T12:00:00Z") == "2030-01-01T01:00:00Z");
  // skip: the next civil 01:30 is Jan 2's first pass (+2h)
  CHECK(walk("30 1 * * *", z, skip, "2029-12-31T12:00:00Z") == "2030-01-01T23:30:00Z");
  CHECK(walk("30 3 * * *", z, shift, "2029-12-31T12:00:00Z") == "2030-01-01T01:30:00Z");  // 03:30 +2h
  // overlap: civil 01:30 Jan 2 is 23:30Z Jan 1 (+2h) and 01:30Z Jan 2 (+0)
  CHECK(walk("30 1 * * *", z, once, "2030-01-01T12:00:00Z") == "2030-01-01T23:30:00Z");
  CHECK(walk("30 1 * * *", z, once, "2030-01-01T23:30:00Z") == "2030-01-03T01:30:00Z");
  CHECK(walk("30 1 * * *", z, twice, "2030-01-01T23:30:00Z") == "2030-01-02T01:30:00Z");
  CHECK(walk("30 1 * * *", z, shift, "2030-01-01T23:30:00Z") == "2030-01-03T01:30:00Z");
  CHECK(walk("30 * * * *", z, shift, "2030-01-01T23:30:00Z") == "2030-01-02T00:30:00Z");  // 02:30 +2h
  CHECK(walk("30 * * * *", z, shift, "2030-01-02T00:30:00Z") ==
        "2030-01-02T01:30:00Z");                                                         // 01:30 +0, 2nd pass
  CHECK(walk("30 * * * *", z, once, "2030-01-02T00:30:00Z") == "2030-01-02T03:30:00Z");  // 03:30 +0
  // a whole civil day that does not exist (a +24h jump, as Samoa in 2011)
  const fake_zone dateline{-10h, {{at("2011-12-30T10:00:00Z"), 14h}}};
  CHECK(walk("0 12 * * *", dateline, shift, "2011-12-29T12:00:00Z") ==
        "2011-12-29T22:00:00Z");  // Dec 29 12:00 -10
  CHECK(walk("0 12 * * *", dateline, shift, "2011-12-29T22:00:00Z") ==
        "2011-12-30T10:00:00Z");  // Dec 30: shifted
  CHECK(walk("0 12 * * *", dateline, shift, "2011-12-30T10:00:00Z") ==
        "2011-12-30T22:00:00Z");  // Dec 31 12:00 +14
  CHECK(walk("0 12 * * *", dateline, skip, "2011-12-29T22:00:00Z") == "2011-12-30T22:00:00Z");
  CHECK(walk("0 12 30 12 *", dateline, skip, "2011-12-29T22:00:00Z") == "2012-12-29T22:00:00Z");
  // a zone that never changes: one segment
  const fake_zone fixed{5h + 30min, {}};
  CHECK(walk("0 9 * * *", fixed, shift, "2030-01-01T00:00:00Z") == "2030-01-01T03:30:00Z");
  // many transitions close together still terminate and move forward
  fake_zone busy{0s, {}};
  for (int i = 0; i < 200; ++i)
    busy.changes.emplace_back(at("2030-06-01T00:00:00Z") + std::chrono::minutes{7 * i}, (i % 2) ? 0s : 1h);
  for (const dst_policy p : {shift, skip, once, twice}) {
    std::optional<time_point> cur = at("2030-05-31T20:00:00Z");
    for (int i = 0; i < 300 && cur; ++i) {
      const auto n = punctual::detail::cron_next_in_zone(spec_of("* * * * * *"), busy, p, *cur);
      REQUIRE(n.has_value());
      CHECK(*n > *cur);
      cur = n;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// robustness (tests/fuzz/cron_fuzz.cpp does the same with libFuzzer's guidance)

TEST_CASE("cron: mutated expressions parse or throw parse_error, and next() always terminates",
          "[cron][fuzz]") {
  const std::vector<std::string> seeds = {"*/5 * * * *",      "0 9 * * MON-FRI",
                                          "0 0 1 * *",        "30 2 * * *",
                                          "0 0 L * *",        "0 0 LW * *",
                                          "0 0 15W * *",      "0 0 * * 5L",
                                          "0 0 * * MON#2",    "@daily",
                                          "0 0 L-3 2 ?",      "0 0 29 2 *",
                                          "1-5/2 22-2 * * *", "0 0 0 1 1 * 2030-2299",
                                          "59 59 23 31 12 *", "0 0 ? * FRI#5",
                                          "0 0 1W,LW * SAT",  "0 0 13 * FRIL",
                                          "* * * * * *",      "0 30 1 ? JAN-MAR/2 SUN-SAT"};
  const std::string alphabet = "0123456789012345*/-,?#LlWw@ \tMONFRIJANSUNDECxyz=.\x01\xff";
  std::uint64_t x = 0x243F6A8885A308D3ull;
  auto rnd = [&x](std::uint64_t n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return static_cast<std::size_t>(x % n);
  };
  const punctual::time_zone* zones[] = {&punctual::utc_zone(), &punctual::locate_zone("Europe/Berlin"),
                                        &punctual::locate_zone("Australia/Lord_Howe")};
  std::size_t parsed = 0, rejected = 0, fired = 0;
  std::string first_problem;
  for (int i = 0; i < 200'000; ++i) {
    std::string s = seeds[rnd(seeds.size())];
    for (std::size_t m = 1 + rnd(4); m > 0; --m) {
      const std::size_t pos = rnd(s.size() + 1);
      switch (rnd(4)) {
        case 0:
          if (pos < s.size()) s[pos] = alphabet[rnd(alphabet.size())];
          break;
        case 1: s.insert(pos, 1, alphabet[rnd(alphabet.size())]); break;
        case 2:
          if (pos < s.size()) s.erase(pos, 1 + rnd(3));
          break;
        default: {
          const std::string& other = seeds[rnd(seeds.size())];
          const std::size_t from = rnd(other.size());
          s.insert(pos, other.substr(from, 1 + rnd(6)));
        }
      }
    }
    const dst_policy p{rnd(2) ? dst_gap::skip : dst_gap::shift, static_cast<dst_overlap>(rnd(3))};
    try {
      const cron_trigger t(s, *zones[rnd(3)], p);
      ++parsed;
      // any instant from 1960 to 2320
      time_point after{punctual::duration{-315'619'200'000'000LL +
                                          static_cast<std::int64_t>(rnd(11'360'000'000ULL)) * 1'000'000}};
      for (int k = 0; k < 3; ++k) {
        const auto n = t.next(after);
        if (!n) break;
        ++fired;
        if (!(*n > after) && first_problem.empty()) first_problem = "next() did not move forward: " + s;
        after = *n;
      }
      if (cron_trigger::parse_canonical(t.to_string().substr(5)).to_string() != t.to_string() &&
          first_problem.empty())
        first_problem = "no round trip: " + s;
    } catch (const parse_error& e) {
      ++rejected;
      if ((e.column() > s.size() || e.reason().empty()) && first_problem.empty())
        first_problem = "bad error for: " + s + ": " + e.what();
    }
  }
  CHECK(first_problem == "");
  CHECK(parsed > 10'000);
  CHECK(rejected > 10'000);
  CHECK(fired > 10'000);
}
