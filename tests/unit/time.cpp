// Tests of punctual/time.hpp: ISO 8601 formatting and parsing, duration text, and the clocks.
#include "punctual/time.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "punctual/error.hpp"

using namespace std::chrono_literals;
namespace chr = std::chrono;
using punctual::duration;
using punctual::time_point;

namespace {

time_point utc(int y, unsigned m, unsigned d, chr::microseconds since_midnight = {}) {
  return time_point{chr::sys_days{chr::year{y} / chr::month{m} / chr::day{d}}} + since_midnight;
}

punctual::local_time civil(int y, unsigned m, unsigned d, chr::microseconds since_midnight = {}) {
  return punctual::local_time{chr::local_days{chr::year{y} / chr::month{m} / chr::day{d}}} + since_midnight;
}

// The parse_error `f` throws, or nullopt when it throws none.
template <class F>
std::optional<punctual::parse_error> error_of(F&& f) {
  try {
    f();
  } catch (const punctual::parse_error& e) {
    return e;
  }
  return std::nullopt;
}

struct bad_input {
  const char* text;
  std::size_t column;
  const char* reason;  // a part of parse_error::reason()
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// format_iso

TEST_CASE("format_iso writes a UTC instant with a Z suffix", "[time][iso]") {
  CHECK(punctual::format_iso(time_point{}) == "1970-01-01T00:00:00Z");
  CHECK(punctual::format_iso(utc(2026, 3, 29, 1h)) == "2026-03-29T01:00:00Z");
  CHECK(punctual::format_iso(utc(2024, 2, 29, 23h + 59min + 59s)) == "2024-02-29T23:59:59Z");
  CHECK(punctual::format_iso(utc(1, 1, 1)) == "0001-01-01T00:00:00Z");
  CHECK(punctual::format_iso(utc(9999, 12, 31, 24h - 1us)) == "9999-12-31T23:59:59.999999Z");
}

TEST_CASE("format_iso handles instants before the epoch", "[time][iso]") {
  CHECK(punctual::format_iso(time_point{} - 1us) == "1969-12-31T23:59:59.999999Z");
  CHECK(punctual::format_iso(utc(1969, 12, 31, 23h + 59min + 59s + 500ms)) == "1969-12-31T23:59:59.500Z");
  CHECK(punctual::format_iso(utc(1900, 3, 1, 12h)) == "1900-03-01T12:00:00Z");
}

TEST_CASE("format_iso writes the true year of every instant, past 9999 and 32767 too", "[time][iso]") {
  // std::chrono::year stops at 32767: these used to wrap (year 59145 came out as -6391).
  const auto at_days = [](std::int64_t days, chr::microseconds since_midnight = {}) {
    return time_point{duration{days * 86'400'000'000LL}} + since_midnight;
  };
  CHECK(punctual::format_iso(utc(9999, 12, 31, 24h)) == "+10000-01-01T00:00:00Z");
  CHECK(punctual::format_iso(time_point{902147483648s}) == "+30557-11-30T19:14:08Z");
  CHECK(punctual::format_iso(time_point{2 * 902147483648s}) == "+59145-10-31T14:28:16Z");
  CHECK(punctual::format_iso(time_point{3 * 902147483648s}) == "+87733-09-30T09:42:24Z");
  CHECK(punctual::format_iso(time_point::max()) == "+294247-01-10T04:00:54.775807Z");
  CHECK(punctual::format_iso(time_point::min()) == "-290308-12-21T19:59:05.224192Z");
  CHECK(punctual::format_iso(utc(-1, 12, 31, 12h)) == "-0001-12-31T12:00:00Z");
  // Day by day across 2000 years either side of 32767 (leap days included), the date written
  // is the one std::chrono computes for the same day 400-year cycles (146097 days) earlier.
  const std::int64_t cycles = 65;  // 26000 years: the earlier dates fall in years 5000..7000
  for (std::int64_t d = utc(31000, 1, 1).time_since_epoch().count() / 86'400'000'000LL, end = d + 365 * 2000;
       d < end; d += 37) {
    const auto shown = punctual::format_iso(at_days(d, 5h));
    const auto same_day_earlier = punctual::format_iso(at_days(d - cycles * 146097, 5h));
    REQUIRE(shown.size() == same_day_earlier.size() + 2);  // the sign and a fifth digit
    CHECK(shown.substr(0, 1) == "+");
    CHECK(std::stoll(shown.substr(1, 5)) == std::stoll(same_day_earlier.substr(0, 4)) + cycles * 400);
    CHECK(shown.substr(6) == same_day_earlier.substr(4));
  }
}

TEST_CASE("format_iso writes sub-second digits only when they are not zero", "[time][iso]") {
  const auto t = utc(2026, 1, 2, 3h + 4min + 5s);
  CHECK(punctual::format_iso(t) == "2026-01-02T03:04:05Z");
  CHECK(punctual::format_iso(t + 250ms) == "2026-01-02T03:04:05.250Z");
  CHECK(punctual::format_iso(t + 1ms) == "2026-01-02T03:04:05.001Z");
  CHECK(punctual::format_iso(t + 250us) == "2026-01-02T03:04:05.000250Z");
  CHECK(punctual::format_iso(t + 1us) == "2026-01-02T03:04:05.000001Z");
  CHECK(punctual::format_iso(t + 123456us) == "2026-01-02T03:04:05.123456Z");
}

TEST_CASE("format_iso writes a civil time with its UTC offset", "[time][iso]") {
  const auto lt = civil(2026, 3, 29, 3h);
  CHECK(punctual::format_iso(lt, 2h) == "2026-03-29T03:00:00+02:00");
  CHECK(punctual::format_iso(lt, -5h) == "2026-03-29T03:00:00-05:00");
  CHECK(punctual::format_iso(lt, 5h + 30min) == "2026-03-29T03:00:00+05:30");
  CHECK(punctual::format_iso(lt, -(9h + 30min)) == "2026-03-29T03:00:00-09:30");
  // Historic local mean time offsets have seconds.
  CHECK(punctual::format_iso(lt, 19min + 32s) == "2026-03-29T03:00:00+00:19:32");
  CHECK(punctual::format_iso(lt, -(25min + 21s)) == "2026-03-29T03:00:00-00:25:21");
}

TEST_CASE("format_iso writes a zero offset as +00:00 unless Z is asked for", "[time][iso]") {
  const auto lt = civil(2026, 7, 1, 12h + 30min);
  CHECK(punctual::format_iso(lt, 0s) == "2026-07-01T12:30:00+00:00");
  CHECK(punctual::format_iso(lt, 0s, false) == "2026-07-01T12:30:00+00:00");
  CHECK(punctual::format_iso(lt, 0s, true) == "2026-07-01T12:30:00Z");
  // z_for_utc only concerns a zero offset.
  CHECK(punctual::format_iso(lt, 1h, true) == "2026-07-01T12:30:00+01:00");
}

// ---------------------------------------------------------------------------------------------
// parse_iso / parse_iso_parts

TEST_CASE("parse_iso reads instants with Z and numeric offsets", "[time][iso]") {
  CHECK(punctual::parse_iso("2026-03-29T01:00:00Z") == utc(2026, 3, 29, 1h));
  CHECK(punctual::parse_iso("2026-03-29T03:00:00+02:00") == utc(2026, 3, 29, 1h));
  CHECK(punctual::parse_iso("2026-03-28T20:00:00-05:00") == utc(2026, 3, 29, 1h));
  CHECK(punctual::parse_iso("2026-03-29T06:30:00+0530") == utc(2026, 3, 29, 1h));
  CHECK(punctual::parse_iso("2026-03-29T03:00:00+02") == utc(2026, 3, 29, 1h));
  CHECK(punctual::parse_iso("2026-03-29T01:00:00-00:00") == utc(2026, 3, 29, 1h));
  CHECK(punctual::parse_iso("2026-03-29T01:00:00+00:00") == utc(2026, 3, 29, 1h));
}

TEST_CASE("parse_iso accepts the documented shorter and alternative forms", "[time][iso]") {
  CHECK(punctual::parse_iso("2026-03-29Z") == utc(2026, 3, 29));
  CHECK(punctual::parse_iso("2026-03-29T01:02Z") == utc(2026, 3, 29, 1h + 2min));
  CHECK(punctual::parse_iso("2026-03-29 01:02:03Z") == utc(2026, 3, 29, 1h + 2min + 3s));
  CHECK(punctual::parse_iso("2026-03-29t01:02:03z") == utc(2026, 3, 29, 1h + 2min + 3s));
  CHECK(punctual::parse_iso("2026-03-29T01:02+01:00") == utc(2026, 3, 29, 2min));
}

TEST_CASE("parse_iso reads fractions of a second to the microsecond", "[time][iso]") {
  const auto base = utc(2026, 1, 2, 3h + 4min + 5s);
  CHECK(punctual::parse_iso("2026-01-02T03:04:05.5Z") == base + 500ms);
  CHECK(punctual::parse_iso("2026-01-02T03:04:05.25Z") == base + 250ms);
  CHECK(punctual::parse_iso("2026-01-02T03:04:05.250Z") == base + 250ms);
  CHECK(punctual::parse_iso("2026-01-02T03:04:05.000250Z") == base + 250us);
  CHECK(punctual::parse_iso("2026-01-02T03:04:05.123456Z") == base + 123456us);
  CHECK(punctual::parse_iso("2026-01-02T03:04:05,75Z") == base + 750ms);
  // Digits past the sixth are dropped, not rounded.
  CHECK(punctual::parse_iso("2026-01-02T03:04:05.1234569Z") == base + 123456us);
  CHECK(punctual::parse_iso("2026-01-02T03:04:05.999999999Z") == base + 999999us);
}

TEST_CASE("parse_iso_parts keeps the civil time and reports the offset only when written", "[time][iso]") {
  const auto plain = punctual::parse_iso_parts("2026-10-25T02:30:00");
  CHECK(plain.local == civil(2026, 10, 25, 2h + 30min));
  CHECK_FALSE(plain.offset.has_value());

  const auto date_only = punctual::parse_iso_parts("2026-10-25");
  CHECK(date_only.local == civil(2026, 10, 25));
  CHECK_FALSE(date_only.offset.has_value());

  const auto with_offset = punctual::parse_iso_parts("2026-10-25T02:30:00+01:00");
  CHECK(with_offset.local == civil(2026, 10, 25, 2h + 30min));
  REQUIRE(with_offset.offset.has_value());
  CHECK(*with_offset.offset == 1h);

  const auto negative = punctual::parse_iso_parts("2026-10-25T02:30:00-03:30");
  REQUIRE(negative.offset.has_value());
  CHECK(*negative.offset == -(3h + 30min));

  const auto zulu = punctual::parse_iso_parts("2026-10-25T02:30:00Z");
  REQUIRE(zulu.offset.has_value());
  CHECK(*zulu.offset == 0s);
}

TEST_CASE("parse_iso accepts leap days only in leap years", "[time][iso]") {
  CHECK(punctual::parse_iso("2024-02-29T00:00:00Z") == utc(2024, 2, 29));
  CHECK(punctual::parse_iso("2000-02-29T00:00:00Z") == utc(2000, 2, 29));
  CHECK(error_of([] { (void)punctual::parse_iso("2100-02-29T00:00:00Z"); }).has_value());
  CHECK(error_of([] { (void)punctual::parse_iso("2026-02-29T00:00:00Z"); }).has_value());
}

TEST_CASE("parse_iso reads back what format_iso writes", "[time][iso]") {
  // Instants spread over 1901..2099 with varied sub-second parts (a prime step in microseconds).
  const auto first = utc(1901, 1, 1);
  const auto last = utc(2099, 12, 31);
  const duration step = 86'400'000'000us * 37 + 3'601'000'007us;
  int count = 0;
  for (auto t = first; t < last; t += step) {
    const auto text = punctual::format_iso(t);
    INFO(text);
    REQUIRE(punctual::parse_iso(text) == t);
    for (auto offset : {-(12h + 0min), -(3h + 30min), 0h + 0min, 5h + 45min, 14h + 0min}) {
      const auto local = punctual::local_time{t.time_since_epoch()} + offset;
      const auto zoned = punctual::format_iso(local, chr::duration_cast<chr::seconds>(offset));
      INFO(zoned);
      REQUIRE(punctual::parse_iso(zoned) == t);
      const auto parts = punctual::parse_iso_parts(zoned);
      REQUIRE(parts.local == local);
      REQUIRE(parts.offset == chr::duration_cast<chr::seconds>(offset));
    }
    ++count;
  }
  CHECK(count > 1000);
}

TEST_CASE("parse_iso without an offset is an error about the whole text", "[time][iso]") {
  for (const char* text : {"2026-03-29T01:00:00", "2026-03-29", "2026-03-29T01:00"}) {
    INFO(text);
    const auto e = error_of([&] { (void)punctual::parse_iso(text); });
    REQUIRE(e.has_value());
    CHECK(e->column() == 0);
    CHECK(e->field() == "ISO 8601 time");
    CHECK(e->text() == text);
    CHECK_THAT(e->reason(), Catch::Contains("UTC offset"));
  }
}

TEST_CASE("parse_iso_parts names the column of each kind of bad input", "[time][iso]") {
  // Columns are 1-based. For a number out of range the column is where the number starts.
  const bad_input cases[] = {
      {"", 1, "4-digit year"},
      {"202", 4, "4-digit year"},
      {"20x6-01-01", 3, "4-digit year"},
      {" 2026-01-01", 1, "4-digit year"},
      {"2026/01/01", 5, "-MM (month)"},
      {"2026", 5, "-MM (month)"},
      {"2026-1-01", 7, "-MM (month)"},
      {"2026-01", 8, "-DD (day)"},
      {"2026-01/01", 8, "-DD (day)"},
      {"2026-01-1", 10, "-DD (day)"},
      {"2026-13-01", 6, "no such month"},
      {"2026-00-10", 6, "no such month"},
      {"2026-02-29", 9, "no such day"},
      {"2026-04-31", 9, "no such day"},
      {"2026-01-00", 9, "no such day"},
      {"2026-01-32T00:00Z", 9, "no such day"},
      {"2026-01-01T", 12, "hour"},
      {"2026-01-01 ", 12, "hour"},
      {"2026-01-01Tx0:00", 12, "hour"},
      {"2026-01-01T1:00", 13, "hour"},
      {"2026-01-01T24:00Z", 12, "hour"},
      {"2026-01-01T99:00Z", 12, "hour"},
      {"2026-01-01T10", 14, ":MM (minute"},
      {"2026-01-01T10-30", 14, ":MM (minute"},
      {"2026-01-01T10:3", 16, ":MM (minute"},
      {"2026-01-01T10:60Z", 15, ":MM (minute"},
      {"2026-01-01T10:30:", 18, "second"},
      {"2026-01-01T10:30:5Z", 19, "second"},
      {"2026-01-01T10:30:60Z", 18, "second"},
      {"2026-01-01T10:30:00.Z", 21, "fraction digits"},
      {"2026-01-01T10:30:00,", 21, "fraction digits"},
      {"2026-01-01T10:30:00+", 21, "offset hour"},
      {"2026-01-01T10:30:00+2:00", 22, "offset hour"},
      {"2026-01-01T10:30:00+24:00", 21, "offset hour"},
      {"2026-01-01T10:30:00-x", 21, "offset hour"},
      {"2026-01-01T10:30:00+02:", 24, "offset minutes"},
      {"2026-01-01T10:30:00+02:60", 24, "offset minutes"},
      {"2026-01-01T10:30:00+02:6", 25, "offset minutes"},
      {"2026-01-01T10:30:00+023", 24, "offset minutes"},
      {"2026-01-01T10:30:00+02x", 23, "offset minutes"},
      {"2026-01-01T10:30:00Zjunk", 21, "unexpected text"},
      {"2026-01-01T10:30:00X", 20, "unexpected text"},
      {"2026-01-01T10:30:00 ", 20, "unexpected text"},
      {"2026-01-01T10:30:00+02:00:00", 26, "unexpected text"},
      {"2026-01-01T10:30.5Z", 17, "unexpected text"},
      {"2026-01-01x", 11, "unexpected text"},
      {"2026-01-011", 11, "unexpected text"},
  };
  for (const auto& c : cases) {
    INFO("input \"" << c.text << "\"");
    const auto e = error_of([&] { (void)punctual::parse_iso_parts(c.text); });
    REQUIRE(e.has_value());
    CHECK(e->column() == c.column);
    CHECK(e->field() == "ISO 8601 time");
    CHECK(e->text() == c.text);
    CHECK_THAT(e->reason(), Catch::Contains(c.reason));
    CHECK_THAT(std::string(e->what()), Catch::Contains("at column " + std::to_string(c.column)));
    // parse_iso reports the same error.
    const auto e2 = error_of([&] { (void)punctual::parse_iso(c.text); });
    REQUIRE(e2.has_value());
    CHECK(e2->column() == c.column);
  }
}

// ---------------------------------------------------------------------------------------------
// format_duration / parse_duration

TEST_CASE("format_duration writes compact unit sequences", "[time][duration]") {
  CHECK(punctual::format_duration(0us) == "0s");
  CHECK(punctual::format_duration(1us) == "1us");
  CHECK(punctual::format_duration(500ms) == "500ms");
  CHECK(punctual::format_duration(1s) == "1s");
  CHECK(punctual::format_duration(90s) == "1m30s");
  CHECK(punctual::format_duration(1h + 30min) == "1h30m");
  CHECK(punctual::format_duration(24h) == "1d");
  CHECK(punctual::format_duration(24h * 8) == "8d");
  CHECK(punctual::format_duration(1h + 1s) == "1h1s");
  CHECK(punctual::format_duration(24h + 1h + 1min + 1s + 1ms + 1us) == "1d1h1m1s1ms1us");
  CHECK(punctual::format_duration(1001us) == "1ms1us");
  CHECK(punctual::format_duration(-90s) == "-1m30s");
  CHECK(punctual::format_duration(-1us) == "-1us");
}

TEST_CASE("format_duration handles the extreme durations", "[time][duration]") {
  CHECK(punctual::format_duration(duration::max()) == "106751991d4h54s775ms807us");
  CHECK(punctual::format_duration(duration::min()) == "-106751991d4h54s775ms808us");
}

TEST_CASE("parse_duration reads numbers with units", "[time][duration]") {
  CHECK(punctual::parse_duration("0") == 0us);
  CHECK(punctual::parse_duration("0s") == 0us);
  CHECK(punctual::parse_duration("90s") == 90s);
  CHECK(punctual::parse_duration("1h30m") == 90min);
  CHECK(punctual::parse_duration("1min") == 1min);
  CHECK(punctual::parse_duration("250ms") == 250ms);
  CHECK(punctual::parse_duration("10us") == 10us);
  CHECK(punctual::parse_duration("2d") == 48h);
  CHECK(punctual::parse_duration("1w") == 24h * 7);
  CHECK(punctual::parse_duration("1w2d3h4m5s6ms7us") == 24h * 9 + 3h + 4min + 5s + 6ms + 7us);
  CHECK(punctual::parse_duration("1h1h") == 2h);
  CHECK(punctual::parse_duration("30m1h") == 90min);
  CHECK(punctual::parse_duration("-1m30s") == -90s);
  CHECK(punctual::parse_duration("-0s") == 0us);
}

TEST_CASE("parse_duration reads fractions and rounds them to the microsecond", "[time][duration]") {
  CHECK(punctual::parse_duration("1.5h") == 90min);
  CHECK(punctual::parse_duration(".5s") == 500ms);
  CHECK(punctual::parse_duration("0.25d") == 6h);
  CHECK(punctual::parse_duration("1.s") == 1s);
  CHECK(punctual::parse_duration("0.000001s") == 1us);
  CHECK(punctual::parse_duration("0.1s") == 100ms);
  CHECK(punctual::parse_duration("0.3s") == 300ms);
  CHECK(punctual::parse_duration("1.5us") == 2us);
  CHECK(punctual::parse_duration("1.4us") == 1us);
  CHECK(punctual::parse_duration("0.0000004s") == 0us);
  CHECK(punctual::parse_duration("-1.5s") == -1500ms);
  CHECK(punctual::parse_duration("2.0000001w") == 24h * 14 + 60480us);
}

TEST_CASE("parse_duration reaches exactly the limits of a duration", "[time][duration]") {
  CHECK(punctual::parse_duration("9223372036854775807us") == duration::max());
  CHECK(punctual::parse_duration("-9223372036854775808us") == duration::min());
  CHECK(punctual::parse_duration("106751991d4h54s775ms807us") == duration::max());
  CHECK(punctual::parse_duration("-106751991d4h54s775ms808us") == duration::min());
}

TEST_CASE("parse_duration reads back what format_duration writes", "[time][duration]") {
  std::vector<duration> values = {duration::max(), duration::min(), duration::max() - 1us,
                                  duration::min() + 1us};
  values.insert(values.end(), {0us, 1us, -1us, 999us, 1ms, 59s, 60s, 3599s, 24h, 24h * 7 + 1us});
  // A deterministic spread over the whole range, both signs.
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (int k = 0; k < 2000; ++k) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const auto magnitude = static_cast<std::int64_t>(x >> (1 + k % 63));
    values.push_back(duration{k % 2 ? -magnitude : magnitude});
  }
  for (const auto d : values) {
    const auto text = punctual::format_duration(d);
    INFO(d.count() << "us written as " << text);
    REQUIRE(punctual::parse_duration(text) == d);
  }
}

TEST_CASE("parse_duration names the column of each kind of bad input", "[time][duration]") {
  const bad_input cases[] = {
      {"-", 2, "expected a number"},
      {"s", 1, "expected a number"},
      {"--1s", 2, "expected a number"},
      {".", 1, "expected a number"},
      {"1h.", 3, "expected a number"},
      {"1h 30m", 3, "expected a number"},
      {"1h-5m", 3, "expected a number"},
      {" 1h", 1, "expected a number"},
      {"10", 3, "missing unit"},
      {"1.5", 4, "missing unit"},
      {"1h30", 5, "missing unit"},
      {"10x", 3, "unknown unit \"x\""},
      {"1H", 2, "unknown unit \"H\""},
      {"5mins", 2, "unknown unit \"mins\""},
      {"1h2hours", 4, "unknown unit \"hours\""},
      {"9223372036854775808us", 1, "is too long"},
      {"-9223372036854775809us", 2, "is too long"},
      {"99999999999999999999999s", 1, "is too long"},
      {"106751992d", 1, "is too long"},
      {"106751991d106751991d", 11, "is too long"},
      {"9223372036854775807us1us", 22, "is too long"},
  };
  for (const auto& c : cases) {
    INFO("input \"" << c.text << "\"");
    const auto e = error_of([&] { (void)punctual::parse_duration(c.text); });
    REQUIRE(e.has_value());
    CHECK(e->column() == c.column);
    CHECK(e->field() == "duration");
    CHECK(e->text() == c.text);
    CHECK_THAT(e->reason(), Catch::Contains(c.reason));
  }
}

TEST_CASE("parse_duration rejects empty text as a whole", "[time][duration]") {
  const auto e = error_of([] { (void)punctual::parse_duration(""); });
  REQUIRE(e.has_value());
  CHECK(e->column() == 0);
  CHECK(e->field() == "duration");
  CHECK_THAT(e->reason(), Catch::Contains("empty"));
}

// ---------------------------------------------------------------------------------------------
// clocks

TEST_CASE("manual_clock starts where it is told and only moves when told", "[time][clock]") {
  punctual::manual_clock epoch_clock;
  CHECK(epoch_clock.now() == time_point{});

  const auto start = utc(2026, 3, 29, 1h);
  punctual::manual_clock c{start};
  CHECK(c.now() == start);
  CHECK(c.now() == start);

  c.advance(90s);
  CHECK(c.now() == start + 90s);
  c.advance(1us);
  CHECK(c.now() == start + 90s + 1us);
  c.advance(0us);
  CHECK(c.now() == start + 90s + 1us);
  c.advance(-1us);
  CHECK(c.now() == start + 90s);

  c.set(utc(2030, 1, 1));
  CHECK(c.now() == utc(2030, 1, 1));
  // Backwards too: that is a clock step.
  c.set(utc(2020, 1, 1));
  CHECK(c.now() == utc(2020, 1, 1));
}

TEST_CASE("manual_clock is usable through the clock interface", "[time][clock]") {
  punctual::manual_clock mc{utc(2026, 1, 1)};
  punctual::clock& c = mc;
  int calls = 0;
  const auto handle = c.subscribe([&] { ++calls; });
  mc.advance(1s);
  CHECK(c.now() == utc(2026, 1, 1, 1s));
  CHECK(calls == 1);
  c.unsubscribe(handle);
  mc.advance(1s);
  CHECK(calls == 1);
}

TEST_CASE("manual_clock notifies every subscriber on set and advance", "[time][clock]") {
  punctual::manual_clock c{utc(2026, 1, 1)};
  int a = 0;
  int b = 0;
  const auto ha = c.subscribe([&] { ++a; });
  const auto hb = c.subscribe([&] { ++b; });
  CHECK(ha != 0);
  CHECK(hb != 0);
  CHECK(ha != hb);

  c.advance(1min);
  CHECK(a == 1);
  CHECK(b == 1);
  c.set(utc(2025, 1, 1));
  CHECK(a == 2);
  CHECK(b == 2);
  (void)c.now();
  CHECK(a == 2);  // reading the clock notifies nobody
}

TEST_CASE("manual_clock subscribers see the new time", "[time][clock]") {
  punctual::manual_clock c{utc(2026, 1, 1)};
  std::vector<time_point> seen;
  // Calling now() from the callback also proves the callback runs outside the clock's lock.
  c.subscribe([&] { seen.push_back(c.now()); });
  c.advance(1h);
  c.set(utc(2027, 6, 1));
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == utc(2026, 1, 1, 1h));
  CHECK(seen[1] == utc(2027, 6, 1));
}

TEST_CASE("manual_clock unsubscribe removes exactly one subscriber", "[time][clock]") {
  punctual::manual_clock c;
  int a = 0;
  int b = 0;
  const auto ha = c.subscribe([&] { ++a; });
  const auto hb = c.subscribe([&] { ++b; });
  c.unsubscribe(ha);
  c.advance(1s);
  CHECK(a == 0);
  CHECK(b == 1);
  c.unsubscribe(ha);     // twice: harmless
  c.unsubscribe(12345);  // unknown: harmless
  c.advance(1s);
  CHECK(b == 2);
  c.unsubscribe(hb);
  c.advance(1s);
  CHECK(b == 2);
  // Handles are not reused after unsubscribe.
  const auto hc = c.subscribe([] {});
  CHECK(hc != ha);
  CHECK(hc != hb);
}

TEST_CASE("manual_clock subscribers may subscribe and unsubscribe while being notified", "[time][clock]") {
  punctual::manual_clock c;
  int self_calls = 0;
  int late_calls = 0;
  std::uint64_t self = 0;
  self = c.subscribe([&] {
    ++self_calls;
    c.unsubscribe(self);
    c.subscribe([&] { ++late_calls; });
  });
  c.advance(1s);
  CHECK(self_calls == 1);
  CHECK(late_calls == 0);  // subscribed during this notification: called from the next one on
  c.advance(1s);
  CHECK(self_calls == 1);
  CHECK(late_calls == 1);
}

TEST_CASE("manual_clock may be moved and read from several threads", "[time][clock][threads]") {
  const auto start = utc(2026, 1, 1);
  punctual::manual_clock c{start};
  std::atomic<int> notified{0};
  c.subscribe([&] { notified.fetch_add(1, std::memory_order_relaxed); });
  constexpr int threads = 4;
  constexpr int steps = 500;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int k = 0; k < steps; ++k) {
        c.advance(1us);
        (void)c.now();
      }
    });
  }
  for (auto& t : pool) t.join();
  CHECK(c.now() == start + duration{threads * steps});
  CHECK(notified.load() == threads * steps);
}

TEST_CASE("system_clock reads the wall clock at microsecond resolution", "[time][clock]") {
  auto& c = punctual::system_clock::instance();
  CHECK(&c == &punctual::system_clock::instance());
  const auto before = chr::time_point_cast<duration>(chr::system_clock::now());
  const time_point now = c.now();
  const auto after = chr::system_clock::now();
  CHECK(before <= now);
  CHECK(now <= after);
  // The system clock never notifies: subscribe gives no handle.
  CHECK(c.subscribe([] {}) == 0);
  c.unsubscribe(0);
}
